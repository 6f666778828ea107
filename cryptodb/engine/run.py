"""Running a statement that calls kernels (or names a kernel view) through the passes."""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import sqlglot
from sqlglot import exp

from cryptodb.catalog import derived_view_sql
from cryptodb.engine import views
from cryptodb.engine.calls import KernelShapeError, bind_params, find_calls
from cryptodb.engine.compute import compute
from cryptodb.engine.dialect import parse, to_sql
from cryptodb.engine.gate import STORE_SCHEME, Engine, defined
from cryptodb.engine.planner import plan_scope
from cryptodb.engine.result import KernelResult
from cryptodb.engine.resume import statement_id
from cryptodb.engine.shortcut import projection_of, read_inner
from cryptodb.engine.splice import splice
from cryptodb.kafka_out import KAFKA_SCHEME, copy_to_kafka

log = logging.getLogger("cryptodb")
# Fewer, larger Arrow chunks from DuckDB: every chunk costs a little in each kernel-side pass.
READ_BATCH_ROWS = 1 << 24


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
    try:
        tree = parse(sql)
    except sqlglot.errors.ParseError:
        # The text only looked like it calls kernels (a kernel name used as an aggregate, say) and
        # uses syntax sqlglot does not know: DuckDB runs it as it is.
        return con.sql(sql, params=params)
    _substitute_params(tree, params)
    dropped = views.dropped_view(tree, kernel_views)
    if dropped:
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
        return _create_kernel_view(engine, definition, created)
    if not calls:
        return con.sql(to_sql(tree))
    _check_nesting(calls)
    bind_params(con, calls)
    registered: dict[str, pa.Table] = {}
    handed_over = False
    try:
        for number, (scope, scope_calls) in enumerate(_scopes_in_order(calls)):
            plan = plan_scope(scope, scope_calls, number,
                              lambda q: con.sql(to_sql(q) + " LIMIT 0").columns)
            started = time.perf_counter()
            rows = read_inner(con, plan.inner, registered, to_sql, READ_BATCH_ROWS)
            if rows is None:
                rows = con.sql(to_sql(plan.inner)).to_arrow_table(batch_size=READ_BATCH_ROWS)
            read = time.perf_counter()
            outputs = compute(rows, plan, engine.kernel_states, f"{statement_id(sql)}/{number}")
            log.debug("scope %d: %d rows x %d columns read in %.3f s, %d kernel(s) in %.3f s", number,
                      rows.num_rows, rows.num_columns, read - started, len(scope_calls), time.perf_counter() - read)
            name, table = splice(con, plan, rows, outputs)
            del rows
            registered[name] = table
            _release_unused(con, tree, registered)
        if isinstance(tree, exp.Query):
            direct = projection_of(tree, registered)
            if direct is not None:
                return KernelResult(con, table=direct)
            handed_over = True
            return KernelResult(con, query=to_sql(tree), registered=tuple(registered))
        con.execute(to_sql(tree)).fetchall()
        return None
    finally:
        if not handed_over:
            for name in registered:
                con.unregister(name)


def _inside(node: exp.Expression, ancestor: exp.Expression) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def _prune_ctes(tree: exp.Expression) -> None:
    """Drop CTEs nothing refers to any more (a spliced scope no longer reads the CTEs it read)."""
    changed = True
    while changed:
        changed = False
        for with_ in list(tree.find_all(exp.With)):
            for cte in list(with_.expressions):
                name = cte.alias_or_name.lower()
                users = [t for t in tree.find_all(exp.Table)
                         if t.name.lower() == name and not t.args.get("db") and not _inside(t, cte)]
                if not users:
                    cte.pop()
                    changed = True
            if not with_.expressions:
                with_.pop()


def _release_unused(con, tree: exp.Expression, registered: dict[str, pa.Table]) -> None:
    """Free spliced tables the rest of the statement no longer reads: a chain of CTEs with kernels
    (research's features) would otherwise keep every level's columns in memory at once."""
    _prune_ctes(tree)
    names = {t.name for t in tree.find_all(exp.Table)}
    for name in [n for n in registered if n not in names]:
        con.unregister(name)
        del registered[name]


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
