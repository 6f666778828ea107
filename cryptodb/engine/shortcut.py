"""Answers that need no DuckDB pass: columns of spliced tables, picked and renamed in Arrow.

Every DuckDB pass over a spliced table copies each column it returns. When a query only picks
columns of one spliced table (the commonest final query) Arrow answers without copying; when a
scope's input rows are such a projection plus a few computed columns, only those few are
computed: arithmetic by formulas over the columns in place (engine.formula), anything else
through DuckDB (research's second step would otherwise re-export 53 columns of 10M rows, and a
live micro-batch paid 12 ms for DuckDB to bind the step's query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import duckdb
import pyarrow as pa
from sqlglot import exp

from cryptodb.engine.formula import Formula, compile_formula, evaluate

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
    that is output column i, or is None for a computed one. Computed column j is evaluated in
    Arrow by `formulas[j]` when it has one and its inputs are DOUBLE, else by DuckDB, which runs
    `computed[j]` (a projection) over `select` (the CTEs and the FROM)."""

    source: str
    names: list[str]
    picked: list[str | None]
    formulas: list[Formula | None]
    computed: list[exp.Expression]
    select: exp.Select
    to_sql: Callable[[exp.Expression], str]
    _sql: dict[tuple[int, ...], str] = field(default_factory=dict)

    def read(self, con: duckdb.DuckDBPyConnection, registered: dict[str, pa.Table], batch_rows: int) -> pa.Table:
        table = registered[self.source]
        in_arrow = [f is not None and all(pa.types.is_float64(table.schema.field(c).type) for c in f.inputs)
                    for f in self.formulas]
        values: dict[int, pa.Array | pa.ChunkedArray] = {}
        if any(in_arrow):
            where = [j for j, ok in enumerate(in_arrow) if ok]
            formulas = [self.formulas[j] for j in where]
            inputs = {c: table.column(c) for f in formulas for c in f.inputs}
            values.update(zip(where, evaluate(formulas, inputs, table.num_rows)))
        by_duckdb = tuple(j for j, ok in enumerate(in_arrow) if not ok)
        if by_duckdb:
            # A projection over an Arrow scan keeps the scan's order (preserve_insertion_order).
            query = con.sql(self._query(by_duckdb))
            values.update(zip(by_duckdb, query.to_arrow_table(batch_size=batch_rows).columns))
        fill = iter(values[j] for j in range(len(self.computed)))
        columns = [table.column(c) if c is not None else next(fill) for c in self.picked]
        return pa.table(columns, names=self.names)

    def _query(self, which: tuple[int, ...]) -> str:
        if which not in self._sql:
            select = self.select.copy()
            select.set("expressions", [self.computed[j].copy() for j in which])
            self._sql[which] = self.to_sql(select)
        return self._sql[which]


def inner_read(inner: exp.Select, registered: dict[str, pa.Table], to_sql) -> InnerRead | None:
    """A scope's input rows when they come from a CTE that reads one spliced table row for row:
    plain columns straight from that table, computed ones by formulas in Arrow or through DuckDB.
    None when the shape is any other (the caller then runs the whole query in DuckDB)."""
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
    by_output = {name.lower(): (col, projection) for name, col, projection in sources}
    table_columns = {c.lower(): c for c in registered[spliced].column_names}

    def in_body(name: str):  # a name in the CTE's select list: a column of the spliced table
        col = table_columns.get(name)
        return None if col is None else ("col", col)

    def in_scope(name: str):  # a name in the scope's select list: an output column of the CTE
        col, projection = by_output.get(name, (None, None))
        if projection is None:
            return None
        return ("col", col) if col is not None else ("expr", projection, in_body)

    picked: list[str | None] = []
    computed: list[exp.Expression] = []
    for projection in inner.expressions:
        target = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(target, exp.Column) and not isinstance(target.this, exp.Star):
            col = by_output.get(target.name.lower(), (None, None))[0]
            if col is not None:
                picked.append(col)
                continue
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column)
                                                and isinstance(projection.this, exp.Star)):
            return None
        picked.append(None)
        computed.append(projection)
    select = exp.Select().from_(source.copy())
    select.set("with_", with_.copy())
    return InnerRead(spliced, [p.alias_or_name for p in inner.expressions], picked,
                     [compile_formula(p, in_scope) for p in computed], computed, select, to_sql)
