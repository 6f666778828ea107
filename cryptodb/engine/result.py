"""What a query with kernels returns: a relation-like result over its Arrow rows.

The final query (DuckDB finishing the statement over the spliced tables) runs once, on first
use, straight to Arrow; the spliced tables stay registered until then. `.to_arrow_table()`,
`.df()`, `.pl()`, `.fetchall()` and `.show()` read those rows; anything else a DuckDB relation
offers (`.filter`, `.aggregate`, `.types` ...) is answered by a relation over them.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa


class KernelResult:
    def __init__(self, con: duckdb.DuckDBPyConnection, table: pa.Table | None = None,
                 query: str | None = None, registered: tuple[str, ...] = ()):
        self._con = con
        self._table = table
        self._query = query
        self._registered = list(registered)
        self._relation = None

    def _release(self) -> None:
        for name in self._registered:
            try:
                self._con.unregister(name)
            except duckdb.Error:
                pass  # the connection is closed: nothing left to release
        self._registered = []

    def to_arrow_table(self) -> pa.Table:
        if self._table is None:
            try:
                self._table = self._con.sql(self._query).to_arrow_table()
            finally:
                self._release()
        return self._table

    @property
    def relation(self) -> duckdb.DuckDBPyRelation:
        if self._relation is None:
            self._relation = self._con.from_arrow(self.to_arrow_table())
        return self._relation

    def df(self):
        return self.to_arrow_table().to_pandas()

    def pl(self):
        import polars

        return polars.from_arrow(self.to_arrow_table())

    def fetchall(self) -> list[tuple]:
        table = self.to_arrow_table()
        columns = [c.to_pylist() for c in table.columns]
        return list(zip(*columns)) if columns else []

    def show(self, **kwargs) -> None:
        self.relation.show(**kwargs)

    @property
    def columns(self) -> list[str]:
        return self.to_arrow_table().column_names

    def __len__(self) -> int:
        return self.to_arrow_table().num_rows

    def __getattr__(self, name: str):
        return getattr(self.relation, name)

    def __repr__(self) -> str:
        return repr(self.relation)

    def __del__(self) -> None:
        self._release()
