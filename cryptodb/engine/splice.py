"""Pass 4: put the computed columns back, so DuckDB finishes the query.

The scope's input rows (its FROM after WHERE) plus one column per kernel call are registered as
a table; the scope is rewritten to read from it under the same name its columns were qualified
with, its WHERE is dropped (already applied), each kernel call becomes a column reference, and
`*` excludes the added columns.
"""

from __future__ import annotations

import uuid

import duckdb
import pyarrow as pa
from sqlglot import exp

from cryptodb.engine.planner import PREFIX, ScopePlan


def output_column(i: int) -> str:
    return f"{PREFIX}k{i}"


def _name_unaliased_projections(plan: ScopePlan) -> None:
    """`SELECT rsi(price) OVER w FROM t` names its column after the expression, as DuckDB does,
    not after the internal column the call becomes."""
    nodes = {id(c.node) for c in plan.calls}
    for projection in list(plan.scope.expressions):
        if isinstance(projection, exp.Alias) or not any(id(n) in nodes for n in projection.walk()):
            continue
        text = projection.sql(dialect="duckdb", normalize_functions=False)
        alias = exp.Alias(alias=exp.to_identifier(text, quoted=True))
        projection.replace(alias)
        alias.set("this", projection)  # the same nodes: the calls still point into them


def spliced_table(plan: ScopePlan, table: pa.Table, outputs: list[pa.Array]) -> pa.Table:
    """The scope's input rows without the planner's helper columns, plus one column per call."""
    result = table.select([name for name in table.column_names if not name.startswith(PREFIX)])
    for i, values in enumerate(outputs):
        result = result.append_column(output_column(i), values)
    return result


def splice(con: duckdb.DuckDBPyConnection, plan: ScopePlan, table: pa.Table,
           outputs: list[pa.Array]) -> tuple[str, pa.Table]:
    """Register the scope's rows with kernel outputs; rewrite the scope; return name and table."""
    _name_unaliased_projections(plan)
    result = spliced_table(plan, table, outputs)
    added = [output_column(i) for i in range(len(plan.calls))]
    for call, name in zip(plan.calls, added):
        call.node.replace(exp.column(name, quoted=True))
    registered = f"{PREFIX}t{uuid.uuid4().hex[:12]}"
    con.register(registered, result)

    scope = plan.scope
    scope.set("from_", exp.From(this=exp.Table(this=exp.to_identifier(registered),
                                                alias=exp.TableAlias(this=exp.to_identifier(plan.alias)))))
    scope.set("where", None)
    for projection in scope.expressions:
        star = projection if isinstance(projection, exp.Star) else (
            projection.this if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star) else None)
        if star is not None:
            excluded = list(star.args.get("except_") or [])
            star.set("except_", excluded + [exp.column(n, quoted=True) for n in added])
    return registered, result
