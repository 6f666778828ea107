"""A Sink over a Parquet store: `--to db` (the database's store) and `--to parquet --out DIR`.

The store is passed in (anything with `append(table, arrow_table)`, such as cryptodb's
ParquetStore), so this module needs nothing of cryptodb's core. Rows are buffered per table and
appended on flush: one atomic, time-sorted, de-duplicated file per symbol and day, never a rewrite
of an earlier file. A table whose append fails keeps its rows for the next flush.
"""

from __future__ import annotations

import threading
from typing import Protocol, Sequence

import pyarrow as pa

from .sink import SinkCounts


class AppendsTables(Protocol):
    def append(self, table: str, data: pa.Table): ...


class StoreSink:
    def __init__(self, store: AppendsTables):
        self.store = store
        self._pending: dict[str, list[pa.Table]] = {}
        self._counts = SinkCounts()
        self._lock = threading.Lock()

    def write(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows:
            with self._lock:
                self._pending.setdefault(table, []).append(rows)

    def write_raw(self, table: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """A store keeps normalised rows only; raw envelopes are for Kafka."""

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        failed = None
        for table, parts in pending.items():
            data = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            try:
                result = self.store.append(table, data)
            except Exception as e:  # keep the rows: the next flush tries again
                with self._lock:
                    self._pending.setdefault(table, []).insert(0, data)
                failed = failed or e
                continue
            self._counts.add(table, getattr(result, "rows_written", data.num_rows))
        if failed is not None:
            raise failed

    def close(self) -> None:
        self.flush()

    @property
    def counts(self) -> SinkCounts:
        return self._counts

    @property
    def pending_rows(self) -> int:
        with self._lock:
            return sum(t.num_rows for parts in self._pending.values() for t in parts)
