"""Pass 2: the query that yields a scope's input rows, with the kernels' arguments and keys.

A SELECT scope that calls kernels is evaluated in SQL order: FROM and WHERE first, then window
functions, then the select list, DISTINCT, ORDER BY and LIMIT. So the input of its kernels is
exactly `SELECT *, <arguments>, <partition keys>, <order keys> FROM <its FROM> WHERE <its WHERE>`,
run in DuckDB with the CTEs it can see.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from cryptodb.engine.calls import KernelCall, KernelShapeError

PREFIX = "__cdb_"
_DEPENDENCY = f"{PREFIX}dep"


def dependency_column(producer: int) -> str:
    """The name standing for call `producer`'s output among another call's inputs."""
    return f"{_DEPENDENCY}{producer}"


def dependency_of(column: str) -> int | None:
    return int(column[len(_DEPENDENCY):]) if column.startswith(_DEPENDENCY) else None


@dataclass
class ScopePlan:
    scope: exp.Select
    calls: list[KernelCall]
    inner: exp.Expression  # the input query, CTEs included
    alias: str  # the name the scope's columns are qualified with after the rewrite
    arg_columns: list[list[str]]  # per call: its input columns in the inner result
    key_columns: dict[tuple, tuple[list[str], list[tuple[str, bool, bool]]]]  # window -> (partition, order)


def _has_aggregate(scope: exp.Select) -> bool:
    """An aggregate of this SELECT's own (not a window function, not inside a subquery)."""
    for projection in scope.expressions:
        for agg in projection.find_all(exp.AggFunc):
            if agg.find_ancestor(exp.Select) is scope and not isinstance(agg.parent, exp.Window):
                return True
    return False


def check_scope(scope: exp.Select, calls: list[KernelCall]) -> None:
    name = calls[0].name
    if scope.args.get("group") or scope.args.get("having") or _has_aggregate(scope):
        raise KernelShapeError(
            f"{name}: kernels run over rows, and this SELECT aggregates them (GROUP BY or an aggregate); "
            f"compute {name} in a subquery or CTE, then aggregate outside it")
    if scope.args.get("joins"):
        raise KernelShapeError(
            f"{name}: call kernels over one source: put the JOIN in a CTE or subquery "
            f"(WITH j AS (SELECT ... JOIN ...)) and call {name} over j")
    if not scope.args.get("from_"):
        raise KernelShapeError(f"{name}: a kernel needs rows: add a FROM clause")


def visible_ctes(scope: exp.Expression) -> list[exp.CTE]:
    """The CTEs a scope can reference, outermost WITH first."""
    chain = []
    node = scope
    while node is not None:
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        if with_ is not None:
            chain.append(list(with_.expressions))
        node = node.parent
    return [cte for level in reversed(chain) for cte in level]


def _referenced(tree: exp.Expression) -> set[str]:
    return {t.name.lower() for t in tree.find_all(exp.Table) if not t.args.get("db")}


def needed_ctes(query: exp.Expression, ctes: list[exp.CTE]) -> list[exp.CTE]:
    """Only the CTEs the query uses, transitively: another CTE may still hold unrewritten kernels."""
    by_name = {c.alias_or_name.lower(): c for c in ctes}
    need, todo = set(), _referenced(query)
    while todo:
        name = todo.pop()
        if name in by_name and name not in need:
            need.add(name)
            todo |= _referenced(by_name[name].this)
    return [c for c in ctes if c.alias_or_name.lower() in need]


def columns_used(scope: exp.Select, calls: list[KernelCall]) -> set[str] | None:
    """Column names the scope reads after its kernels run (None: all of them, for `*`).

    Only these are carried from the input query to the registered table: reading 13 columns of
    10M ticks to keep 3 was most of a kernel query's time.
    """
    kernel_nodes = {id(c.node) for c in calls}
    used: set[str] = set()
    for key, value in scope.args.items():
        if key in ("from_", "where", "with_", "joins") or value is None:
            continue
        for node in value if isinstance(value, list) else [value]:
            if not isinstance(node, exp.Expression):
                continue
            for item in node.walk(prune=lambda n: id(n) in kernel_nodes):
                if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
                    return None
                if isinstance(item, exp.Column):
                    used.add(item.name.lower())
    return used


def plan_scope(scope: exp.Select, calls: list[KernelCall], number: int,
               source_columns) -> ScopePlan:
    """`source_columns(query)` names the columns a query yields (the planner never reads data)."""
    check_scope(scope, calls)
    source = scope.args["from_"].this
    alias = source.alias_or_name or f"{PREFIX}src{number}"
    probe = exp.Select(expressions=[exp.Star()]).from_(source.copy())
    ctes = needed_ctes(probe, visible_ctes(scope))
    with_ = exp.With(expressions=[c.copy() for c in ctes]) if ctes else None
    if with_ is not None:
        probe.set("with_", with_.copy())
    available = {c.lower(): c for c in source_columns(probe)}
    used = columns_used(scope, calls)
    carried = list(available.values()) if used is None else [c for k, c in available.items() if k in used]
    extra: list[exp.Expression] = []
    computed: dict[str, str] = {}  # expression SQL -> the column that carries it

    def column_for(expression: exp.Expression, name: str) -> str:
        """A plain column of the source is read once, not copied under another name: exporting
        a string column to Arrow costs more than the kernel itself. An expression given to
        several calls (cusum_stat and cusum_alarm of one input) is computed once, so those calls
        are one computation too."""
        if isinstance(expression, exp.Column) and expression.table.lower() in ("", alias.lower()):
            own = available.get(expression.name.lower())
            if own is not None:
                if own not in carried:
                    carried.append(own)
                return own
        text = expression.sql()
        if text not in computed:
            extra.append(exp.alias_(expression.copy(), name, quoted=True))
            computed[text] = name
        return computed[text]

    # DuckDB lets a SELECT reuse its own aliases (`log_return(p) OVER w AS ret, realized_var(ret, 100)
    # OVER w`); a kernel input naming another kernel's alias reads that kernel's output directly.
    aliases = {call.node.parent.alias.lower(): i for i, call in enumerate(calls)
               if isinstance(call.node.parent, exp.Alias)}

    def input_for(i: int, j: int, arg: exp.Expression) -> str:
        if isinstance(arg, exp.Column) and not arg.table and arg.name.lower() not in available:
            producer = aliases.get(arg.name.lower())
            if producer is not None and producer != i:
                return dependency_column(producer)
        return column_for(arg, f"{PREFIX}a{i}_{j}")

    arg_columns = [[input_for(i, j, arg) for j, arg in enumerate(call.inputs)] for i, call in enumerate(calls)]
    keys: dict[tuple, tuple[list[str], list[tuple[str, bool, bool]]]] = {}
    for call in calls:
        key = call.window_key()
        if key in keys:
            continue
        w = len(keys)
        part_cols = [column_for(p, f"{PREFIX}p{w}_{j}") for j, p in enumerate(call.partition)]
        order_cols = []
        for j, o in enumerate(call.order):
            desc = bool(o.args.get("desc"))
            nulls_first = o.args.get("nulls_first")
            order_cols.append((column_for(o.this, f"{PREFIX}o{w}_{j}"), desc,
                               bool(nulls_first) if nulls_first is not None else desc))
        keys[key] = (part_cols, order_cols)

    projection = [exp.column(c, quoted=True) for c in carried] + extra
    inner = exp.Select(expressions=projection or [exp.Star()]).from_(source.copy())
    where = scope.args.get("where")
    if where is not None:
        inner.set("where", where.copy())
    if with_ is not None:
        inner.set("with_", with_)
    return ScopePlan(scope, calls, inner, alias, arg_columns, keys)
