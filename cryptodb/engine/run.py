"""Running a statement that calls kernels (or names a kernel view) through the passes."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from cryptodb.catalog import derived_view_sql
from cryptodb.engine import views
from cryptodb.engine.calls import KernelShapeError, find_calls
from cryptodb.engine.dialect import parse, to_sql
from cryptodb.engine.gate import STORE_SCHEME, Engine, defined
from cryptodb.engine.prepared import PreparedStatement
from cryptodb.engine.resume import statement_id
from cryptodb.kafka_out import KAFKA_SCHEME, copy_to_kafka


def _substitute_params(tree: exp.Expression, params) -> None:
    """Kernel statements are split across several DuckDB queries, so bind parameters up front."""
    if params is None:
        return
    positional = iter(params) if isinstance(params, (list, tuple)) else None
    for ph in list(tree.find_all(exp.Placeholder, bfs=False)):  # document order, for `?`
        name = ph.args.get("this")
        if not name:
            if positional is None:
                raise KernelShapeError("the statement uses ? but the parameters are named")
            value = next(positional)
        elif name.isdigit():
            value = params[int(name) - 1]
        else:
            value = params[name]
        ph.replace(exp.convert(value))


def _scopes_in_order(calls) -> list[tuple[exp.Select, list]]:
    """Innermost scopes first; among equals, document order (a CTE may use an earlier one)."""
    by_scope: dict[int, tuple[exp.Select, list]] = {}
    for c in calls:
        by_scope.setdefault(id(c.scope), (c.scope, []))[1].append(c)
    position = {id(node): i for i, node in enumerate(calls[0].scope.root().walk())}
    return sorted(by_scope.values(), key=lambda item: (-item[0].depth, position[id(item[0])]))


def _check_nesting(calls) -> None:
    nodes = {id(c.node) for c in calls}
    for c in calls:
        for arg in c.inputs:
            for inner in arg.find_all(exp.Window):
                if id(inner) in nodes:
                    raise KernelShapeError(
                        f"{c.name}: give the inner kernel an alias and pass that: SELECT inner(...) OVER w AS v, "
                        f"{c.name}(v, ...) OVER w (an expression over it: compute v in a CTE first)")


def run_statement(engine: Engine, sql: str, params=None, kernel_views: dict[str, str] | None = None):
    """Run one statement through the kernel passes (the gate in `cryptodb.engine` sends only
    statements that call kernels or name kernel views here)."""
    con = engine.con
    kernel_views = defined(con) if kernel_views is None else kernel_views
    plan_key = (sql, repr(params), tuple(sorted(kernel_views.items())))
    if engine.plans is not None and plan_key in engine.plans:
        return engine.plans[plan_key].run(con, engine.kernel_states)
    try:
        tree = parse(sql)
    except sqlglot.errors.ParseError:
        # The text only looked like it calls kernels (a kernel name used as an aggregate, say) and
        # uses syntax sqlglot does not know: DuckDB runs it as it is.
        return con.sql(sql, params=params)
    _substitute_params(tree, params)
    dropped = views.dropped_view(tree, kernel_views)
    if dropped:
        engine.views_changed()
        views.forget(con, dropped, engine.views_dir)
        return con.sql(to_sql(tree))
    target = _copy_target(tree, STORE_SCHEME)
    if target is not None:
        return _copy_to_store(engine, tree, target, kernel_views)
    target = _copy_target(tree, KAFKA_SCHEME)
    if target is not None:
        rows = run_statement(engine, to_sql(_copy_source(tree)), None, kernel_views).to_arrow_table()
        copy_to_kafka(con, rows, KAFKA_SCHEME + target)
        return None
    created = views.created_view(tree)
    definition = to_sql(tree.expression) if created else None
    if kernel_views:
        views.expand(tree, kernel_views)
    calls = find_calls(tree)
    if created and calls:
        engine.views_changed()
        return _create_kernel_view(engine, definition, created)
    if not calls:
        return con.sql(to_sql(tree))
    _check_nesting(calls)
    prepared = PreparedStatement(tree, calls, statement_id(sql), _scopes_in_order(calls))
    result = prepared.run(con, engine.kernel_states)
    if engine.plans is not None:
        engine.plans[plan_key] = prepared
    return result


def _copy_target(tree: exp.Expression, scheme: str) -> str | None:
    """The rest of a COPY target that starts with `scheme` (store://, kafka://)."""
    if isinstance(tree, exp.Copy):
        files = tree.args.get("files") or []
        if files and isinstance(files[0], exp.Literal) and files[0].this.startswith(scheme):
            return files[0].this[len(scheme):]
    return None


def _copy_source(tree: exp.Copy) -> exp.Query:
    source = tree.this
    return source.this if isinstance(source, exp.Subquery) else exp.select("*").from_(source)


def _copy_to_store(engine: Engine, tree: exp.Copy, name: str, kernel_views: dict[str, str]):
    """COPY (query) TO 'store://name': the result becomes table `name` of the store, and a view of
    that name in the catalog reads it (BI tools included)."""
    rows = run_statement(engine, to_sql(_copy_source(tree)), None, kernel_views).to_arrow_table()
    engine.store.replace_table(name, rows)
    engine.con.execute(derived_view_sql(engine.store, name))
    return None


def _create_kernel_view(engine: Engine, definition: str, created: tuple[str, bool]):
    name, replace = created
    previous = defined(engine.con).get(name)
    views.save(engine.con, name, definition, replace)
    try:
        refresh_view(engine, name)
    except Exception:
        if previous is None:
            views.forget(engine.con, name, engine.views_dir)
        else:
            views.save(engine.con, name, previous, replace=True)
        raise
    return None


def refresh_view(engine: Engine, name: str) -> None:
    """Recompute a kernel view's stored rows (what plain DuckDB clients read)."""
    relation = run_statement(engine, f"SELECT * FROM {exp.to_identifier(name).sql(dialect='duckdb')}")
    views.store_rows(engine.con, name, relation, engine.views_dir)


def refresh_views(engine: Engine) -> list[str]:
    names = sorted(defined(engine.con))
    for name in names:
        refresh_view(engine, name)
    return names
