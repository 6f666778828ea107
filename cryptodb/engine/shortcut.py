"""Answers that need no DuckDB pass: columns of spliced tables, picked and renamed in Arrow.

Every DuckDB pass over a spliced table copies each column it returns. When a query only picks
columns of one spliced table (the commonest final query) Arrow answers without copying; when a
scope's input rows are such a projection plus a few computed columns, only those few go through
DuckDB (research's second step would otherwise re-export 53 columns of 10M rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
from sqlglot import exp

_CLAUSES = ("with_", "where", "group", "having", "qualify", "order", "limit", "offset", "distinct", "joins",
            "sample", "settings")


def _sources(select: exp.Select, registered: dict[str, pa.Table]) -> list[tuple[str, str | None,
                                                                             exp.Expression]] | None:
    """(output name, the spliced column it is, or None when it is computed, projection) for a
    SELECT reading one spliced table row for row; None when the SELECT does anything else."""
    if not isinstance(select, exp.Select) or any(select.args.get(k) for k in _CLAUSES if k != "with_"):
        return None
    source = select.args["from_"].this if select.args.get("from_") else None
    if not isinstance(source, exp.Table) or source.name not in registered:
        return None
    # A WINDOW clause left behind by spliced kernels defines nothing the projections still use.
    if any(p.find(exp.Window, exp.Subquery, exp.AggFunc) is not None for p in select.expressions):
        return None
    table = registered[source.name]
    by_name = {c.lower(): c for c in table.column_names}
    out: list[tuple[str, str | None, exp.Expression]] = []
    for projection in select.expressions:
        star = projection if isinstance(projection, exp.Star) else (
            projection.this if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star) else None)
        if star is not None:
            if star.args.get("replace") or star.args.get("rename"):
                return None
            excluded = {e.name.lower() for e in star.args.get("except_") or []}
            out += [(c, c, exp.column(c, quoted=True)) for c in table.column_names if c.lower() not in excluded]
            continue
        target = projection.this if isinstance(projection, exp.Alias) else projection
        found = by_name.get(target.name.lower()) if isinstance(target, exp.Column) else None
        out.append((projection.alias_or_name, found, projection))
    if len({name.lower() for name, _, _ in out}) != len(out):
        return None
    return out


def projection_of(tree: exp.Query, registered: dict[str, pa.Table]) -> "Projection | None":
    """How to build the whole result in Arrow, when the statement only picks and renames spliced
    columns; None when DuckDB must run it."""
    if isinstance(tree, exp.Select) and tree.args.get("with_"):
        return None
    sources = _sources(tree, registered) if isinstance(tree, exp.Select) else None
    if sources is None or any(col is None for _, col, _ in sources):
        return None
    return Projection(tree.args["from_"].this.name, [name for name, _, _ in sources], [col for _, col, _ in sources])


@dataclass
class Projection:
    source: str
    names: list[str]
    columns: list[str]

    def table(self, registered: dict[str, pa.Table]) -> pa.Table:
        table = registered[self.source]
        return pa.table([table.column(c) for c in self.columns], names=self.names)


@dataclass
class InnerRead:
    """How to read a scope's input rows from a spliced table: `picked[i]` names the spliced column
    that is output column i, or is None for one that `computed` (a query) yields, in order."""

    source: str
    names: list[str]
    picked: list[str | None]
    computed: str | None

    def read(self, con: duckdb.DuckDBPyConnection, registered: dict[str, pa.Table], batch_rows: int) -> pa.Table:
        table = registered[self.source]
        columns = [table.column(c) if c is not None else None for c in self.picked]
        if self.computed is not None:
            # A projection over an Arrow scan keeps the scan's order (preserve_insertion_order).
            fill = iter(con.sql(self.computed).to_arrow_table(batch_size=batch_rows).columns)
            columns = [col if col is not None else next(fill) for col in columns]
        return pa.table(columns, names=self.names)


def inner_read(inner: exp.Select, registered: dict[str, pa.Table], to_sql) -> InnerRead | None:
    """A scope's input rows when they come from a CTE that reads one spliced table row for row:
    plain columns straight from that table, only the computed ones through DuckDB. None when
    the shape is any other (the caller then runs the whole query in DuckDB)."""
    with_ = inner.args.get("with_")
    source = inner.args["from_"].this if inner.args.get("from_") else None
    if with_ is None or inner.args.get("where") is not None or not isinstance(source, exp.Table):
        return None
    if any(inner.args.get(k) for k in _CLAUSES if k not in ("with_",)):
        return None
    ctes = {c.alias_or_name.lower(): c.this for c in with_.expressions}
    body = ctes.get(source.name.lower())
    sources = _sources(body, registered) if body is not None else None
    if sources is None:
        return None
    spliced = body.args["from_"].this.name
    by_output = {name.lower(): col for name, col, _ in sources}
    picked: list[str | None] = []
    computed: list[exp.Expression] = []
    for projection in inner.expressions:
        target = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(target, exp.Column) and not isinstance(target.this, exp.Star):
            col = by_output.get(target.name.lower())
            if col is not None:
                picked.append(col)
                continue
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column)
                                                and isinstance(projection.this, exp.Star)):
            return None
        picked.append(None)
        computed.append(projection)
    query = None
    if computed:
        select = exp.Select(expressions=[p.copy() for p in computed]).from_(source.copy())
        select.set("with_", with_.copy())
        query = to_sql(select)
    return InnerRead(spliced, [p.alias_or_name for p in inner.expressions], picked, query)
