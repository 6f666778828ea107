"""Rows parsed from feed messages, held as tuples until a flush turns them into one Arrow table.

A parser appends one tuple per row (one list append is the cheapest thing Python can do per row)
in the table's column order without `exchange`, which is the same for every row of a feed. A
message that fails half way is rolled back to the mark taken before it, so a table never holds
part of a message.

A buffer with `times_as_text` also takes event times as the RFC3339 text the exchange sent: the
row ends with that text (its ts slot is then None; a row whose ts is already in nanoseconds ends
with None instead), and `origins` holds the frame of each row. The texts are read all at once when
the table is taken (rfc3339_ns_array: 0.12-0.25 µs a text against 1.4 µs one message at a time,
the largest single cost of a ticker message). A text that cannot be read takes its whole message
out of the table, into `rejected`, for the parser to turn into a dead letter with the message's
own payload. The source (connection) of the frames is noted only when it changes, with
`source_from`: building a (frame, source) pair per row cost 5 % of the whole parse. The frames
are referenced, not copied, until the flush (some 25 MB for 50,000 Coinbase tickers).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .rfc3339 import rfc3339_ns_array
from .schema import TableSpec


class TableBuffer:
    def __init__(self, spec: TableSpec, exchange: str, times_as_text: bool = False):
        if spec.names[0] != "exchange":
            raise ValueError(f"{spec.name}: a buffered table starts with the exchange column")
        self.spec = spec
        self.exchange = exchange
        self.times_as_text = times_as_text
        self.rows: list[tuple] = []
        self.origins: list[str | bytes] = []  # times_as_text: the frame of each row
        self._sources: list[tuple[int, str]] = []  # (first row, source) each time the source changed
        self.source: str | None = None  # the source of the rows from the last of those on
        # From the last take(): (frame, source, recv_ns, why) per message whose time could not be read.
        self.rejected: list[tuple] = []
        fields = list(spec.arrow_schema)[1:]
        # The tuples are converted in one call, as a struct array: pyarrow walks them in C, some
        # five times faster than transposing in Python. Times arrive as integer nanoseconds, which
        # pyarrow reads much faster as int64 than as a timestamp, so they are cast afterwards.
        row_fields = [(f.name, pa.int64() if pa.types.is_timestamp(f.type) else f.type) for f in fields]
        if times_as_text:
            row_fields.append(("ts_text", pa.string()))
        self._row_type = pa.struct(row_fields)
        self._final_types = [f.type for f in fields]
        self._ts = [f.name for f in fields].index("ts")
        self._recv_ts = [f.name for f in fields].index("recv_ts") if "recv_ts" in spec.names else None

    def __len__(self) -> int:
        return len(self.rows)

    def rollback(self, mark: int) -> None:
        """Forget the rows appended since len() was `mark`."""
        del self.rows[mark:]
        del self.origins[mark:]
        while self._sources and self._sources[-1][0] >= len(self.rows):
            self._sources.pop()
        self.source = self._sources[-1][1] if self._sources else None

    def source_from(self, mark: int, source: str) -> None:
        """The rows from `mark` on came from `source` (call when it differs from `self.source`)."""
        self._sources.append((mark, source))
        self.source = source

    def _source_of(self, row: int) -> str | None:
        return next((source for start, source in reversed(self._sources) if start <= row), None)

    def take(self) -> pa.Table | None:
        """Every buffered row as a table in the spec's exact schema (None if empty); the buffer empties.
        With times_as_text, messages whose time cannot be read are left out and listed in `rejected`."""
        rows, origins = self.rows, self.origins
        self.rejected = []
        if not rows:
            return None
        self.rows, self.origins = [], []
        columns = pa.array(rows, self._row_type).flatten()
        if self.times_as_text:
            columns, keep = self._read_times(columns, origins)
            self._sources, self.source = [], None
            if keep is not None:
                columns = [c.filter(keep) for c in columns]
        arrays = [pa.repeat(pa.scalar(self.exchange, pa.string()), len(columns[0]))]
        arrays += [col if col.type == t else col.cast(t) for col, t in zip(columns, self._final_types)]
        return pa.Table.from_arrays(arrays, schema=self.spec.arrow_schema)

    def _read_times(self, columns: list[pa.Array], origins: list) -> tuple[list[pa.Array], pa.Array | None]:
        """The ts column from the texts; a mask of the rows to keep when some message must go."""
        *columns, texts = columns
        ns, errors = rfc3339_ns_array(texts)
        ts = pa.array(ns)
        columns[self._ts] = ts if texts.null_count == 0 else pc.if_else(texts.is_valid(), ts, columns[self._ts])
        if not errors:
            return columns, None
        # A message is stored whole or not at all: every row of a message with an unreadable
        # time goes, whichever of its rows carried that time.
        bad = {}
        for i, why in errors.items():
            bad.setdefault(id(origins[i]), (i, why))
        keep = np.fromiter((id(frame) not in bad for frame in origins), bool, len(origins))
        recv = columns[self._recv_ts] if self._recv_ts is not None else None
        for i, why in bad.values():
            recv_ns = recv[i].as_py() if recv is not None else None
            self.rejected.append((origins[i], self._source_of(i), recv_ns, why))
        return columns, pa.array(keep)
