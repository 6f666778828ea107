"""Rows parsed from feed messages, held as tuples until a flush turns them into one Arrow table.

A parser appends one tuple per row (one list append is the cheapest thing Python can do per row)
in the table's column order without `exchange`, which is the same for every row of a feed. A
message that fails half way is rolled back to the mark taken before it, so a table never holds
part of a message.
"""

from __future__ import annotations

import pyarrow as pa

from .schema import TableSpec


class TableBuffer:
    def __init__(self, spec: TableSpec, exchange: str):
        if spec.names[0] != "exchange":
            raise ValueError(f"{spec.name}: a buffered table starts with the exchange column")
        self.spec = spec
        self.exchange = exchange
        self.rows: list[tuple] = []
        fields = list(spec.arrow_schema)[1:]
        # The tuples are converted in one call, as a struct array: pyarrow walks them in C, some
        # five times faster than transposing in Python. Times arrive as integer nanoseconds, which
        # pyarrow reads much faster as int64 than as a timestamp, so they are cast afterwards.
        self._row_type = pa.struct([(f.name, pa.int64() if pa.types.is_timestamp(f.type) else f.type)
                                    for f in fields])
        self._final_types = [f.type for f in fields]

    def __len__(self) -> int:
        return len(self.rows)

    def rollback(self, mark: int) -> None:
        """Forget the rows appended since len() was `mark`."""
        del self.rows[mark:]

    def take(self) -> pa.Table | None:
        """Every buffered row as a table in the spec's exact schema (None if empty); the buffer empties."""
        rows = self.rows
        if not rows:
            return None
        self.rows = []
        columns = pa.array(rows, self._row_type).flatten()
        arrays = [pa.array([self.exchange] * len(rows), pa.string())]
        arrays += [col if col.type == t else col.cast(t) for col, t in zip(columns, self._final_types)]
        return pa.Table.from_arrays(arrays, schema=self.spec.arrow_schema)
