"""Where collected rows go: the one interface every collector writes through.

A collector parses each frame into normalised Arrow rows (the tables of `cryptodb.ingest.schema`)
and hands them to a sink. Sinks buffer; `flush` makes everything handed over so far durable (a
store file renamed into place, or every Kafka delivery acknowledged) and raises if it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import pyarrow as pa


@dataclass
class SinkCounts:
    """What a sink has made durable so far, per table (rows) and in all (messages for Kafka)."""

    rows: dict[str, int] = field(default_factory=dict)
    failed: int = 0  # deliveries given up on after retries (reported, never silent)

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class Sink(Protocol):
    def write(self, table: str, rows: pa.Table) -> None:
        """Buffer normalised rows of `table` (ticks, trades, funding, book)."""

    def write_raw(self, table: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Buffer exchange envelopes unchanged as (symbol key, payload); sinks without a raw form ignore it."""

    def flush(self) -> None:
        """Make everything buffered durable; raise if that is impossible."""

    def close(self) -> None:
        """Flush, then release connections and files."""

    @property
    def counts(self) -> SinkCounts:
        """Rows made durable so far."""
