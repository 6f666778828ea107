"""Replay stored rows in event-time order to a sink: the demo's and the live tests' market feed.

Rows go out ordered by (ts, symbol, then the table's own order: seq for ticks) across all symbols,
as one message per row through the same sink a collector writes to (`KafkaSink`), so a consumer
sees what a live feed would have sent: normalised JSON keyed by symbol, or with `format="raw"`
Coinbase ticker envelopes (ticks only). Sources stream in Arrow batches, so replaying ten million
rows never holds them as Python objects at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa

from .schema import TABLES, TableSpec
from .ticker_envelope import encode_ticker_envelopes

FORMATS = ("json", "raw")
BATCH_ROWS = 65_536
Progress = Callable[[int, int], None]


def replay_order(table: str) -> list[str]:
    spec = TABLES[table]
    return ["ts", "symbol", *(spec.order_extra or spec.key_extra)]


def ordered_query(source: str, table: str, symbols: list[str] | None = None) -> tuple[str, list]:
    """SQL (and its parameters) reading `table`'s columns from `source` (a table, view or
    table function) in replay order, optionally for some symbols only."""
    spec = TABLES[table]
    where, params = "", []
    if symbols:
        where = f" WHERE symbol IN ({', '.join('?' for _ in symbols)})"
        params = list(symbols)
    return (f"SELECT {', '.join(spec.names)} FROM {source}{where} "
            f"ORDER BY {', '.join(replay_order(table))}", params)


def relation_batches(relation, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream a DuckDB relation (already in replay order) as record batches."""
    yield from relation.to_arrow_reader(batch_rows)


def file_batches(path: str | Path, table: str = "ticks", symbols: list[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> tuple[int, Iterator[pa.RecordBatch]]:
    """(row count, batches in replay order) of a Parquet or CSV file with `table`'s columns (or any
    format `cryptodb import` reads). The file is read and sorted in Arrow, not as Python rows."""
    from .files import read_file

    chunks = [chunk for name, chunk in read_file(path, format="auto", table=table) if name == table]
    spec = TABLES[table]
    rows = pa.concat_tables(chunks) if chunks else spec.arrow_schema.empty_table()
    if symbols:
        import pyarrow.compute as pc

        rows = rows.filter(pc.is_in(rows.column("symbol"), value_set=pa.array(symbols, pa.string())))
    rows = rows.sort_by([(name, "ascending") for name in replay_order(table)])
    return rows.num_rows, iter(rows.to_batches(max_chunksize=batch_rows))


@dataclass
class ReplayResult:
    messages: int  # acknowledged by the sink
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def _slices(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def _check(spec: TableSpec, format: str, rate: float | None) -> None:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format == "raw" and spec.name != "ticks":
        raise ValueError("raw format replays ticks as Coinbase ticker envelopes: use --table ticks")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive (or None for as fast as possible), not {rate}")


def replay(batches: Iterable[pa.RecordBatch], sink, table: str = "ticks", format: str = "json",
           rate: float | None = None, progress: Progress | None = None, total: int = 0) -> ReplayResult:
    """Send every row of `batches` (already in replay order) to `sink`, at `rate` messages per
    second or as fast as the sink takes them (rate=None), then flush it (raising on lost messages)."""
    spec = TABLES[table]
    _check(spec, format, rate)
    # Paced replays go out in slices of about 20 ms worth of messages, so the rate holds smoothly.
    slice_rows = BATCH_ROWS if rate is None else max(1, min(BATCH_ROWS, int(rate / 50)))
    already = sink.counts.rows.get(table, 0)
    started = time.perf_counter()
    sent = 0
    for part in _slices(batches, slice_rows):
        if rate is not None:
            wait = started + sent / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        if format == "raw":
            sink.write_raw(table, list(zip(part.column("symbol").to_pylist(), encode_ticker_envelopes(part))))
        else:
            sink.write(table, pa.Table.from_batches([part]))
        sent += part.num_rows
        if progress:
            progress(sent, total or sent)
    sink.flush()
    return ReplayResult(messages=sink.counts.rows.get(table, 0) - already, seconds=time.perf_counter() - started)


def replay_to_kafka(batches: Iterable[pa.RecordBatch], bootstrap: str, topic: str, table: str = "ticks",
                    format: str = "json", rate: float | None = None, progress: Progress | None = None,
                    total: int = 0, config: dict | None = None) -> ReplayResult:
    """`replay` into a fresh KafkaSink (messages keyed by symbol), closed afterwards. A message not
    acknowledged within 30 s fails the replay (librdkafka would wait 5 minutes): a replay is run by
    hand or by a test, and an unreachable broker should say so soon."""
    from .kafka_sink import KafkaSink

    _check(TABLES[table], format, rate)
    config = {"message.timeout.ms": 30_000, **(config or {})}
    with KafkaSink(bootstrap, topic, format=format, config=config) as sink:
        return replay(batches, sink, table=table, format=format, rate=rate, progress=progress, total=total)
