"""The normalised tables cryptodb keeps, declared once at the edge.

Every collector, importer and the generator produce Arrow tables in these shapes; the store
writes them, the catalog exposes them as views. Event time is UTC at nanosecond precision
(`timestamp[ns]`, no zone), because Coinbase sends nanoseconds and none may be lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("ns")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


@dataclass(frozen=True)
class TableSpec:
    """One stored table: its columns, the key that identifies a duplicate, what must be present."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    # (exchange, symbol, ts) plus these columns identify a row; equal keys are duplicates.
    key_extra: tuple[str, ...]
    # Each entry is a set of alternatives: at least one of them must be present.
    required: tuple[tuple[str, ...], ...] = (("symbol",), ("ts",))
    # Order inside each Parquet file (after ts).
    order_extra: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def key(self) -> tuple[str, ...]:
        return ("exchange", "symbol", "ts", *self.key_extra)

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.type) for c in self.columns])

    @property
    def file_columns(self) -> list[str]:
        """Columns stored inside Parquet files: the partition column symbol lives in the path."""
        return [c.name for c in self.columns if c.name not in PARTITION_COLUMNS]


PARTITION_COLUMNS = ("symbol",)  # plus `date`, derived from ts, which is not a stored column

_COMMON = (
    Column("exchange", pa.string(), "venue, lower case: coinbase, binance, kraken, ..."),
    Column("symbol", pa.string(), "instrument normalised to BASE-QUOTE, e.g. BTC-USD"),
    Column("ts", TS, "event time (exchange clock), UTC, nanoseconds"),
    Column("recv_ts", TS, "local receive time, UTC, nanoseconds"),
)

TICKS = TableSpec(
    name="ticks",
    doc="Top-of-book quotes with the last trade (one row per ticker update).",
    columns=_COMMON
    + (
        Column("seq", pa.int64(), "exchange sequence number (or the order of rows sharing a ts)"),
        Column("price", pa.float64(), "last trade price"),
        Column("size", pa.float64(), "last trade size"),
        Column("bid", pa.float64(), "best bid"),
        Column("ask", pa.float64(), "best ask"),
        Column("bid_size", pa.float64(), "size at the best bid"),
        Column("ask_size", pa.float64(), "size at the best ask"),
    ),
    key_extra=("seq",),
    required=(("symbol",), ("ts",), ("price", "bid", "ask")),
    order_extra=("seq",),
)

TRADES = TableSpec(
    name="trades",
    doc="Individual trades.",
    columns=_COMMON
    + (
        Column("trade_id", pa.string(), "exchange trade id"),
        Column("price", pa.float64(), "trade price"),
        Column("size", pa.float64(), "trade size (base units)"),
        Column("side", pa.int8(), "aggressor side: +1 buy, -1 sell, NULL unknown"),
    ),
    key_extra=("trade_id",),
    required=(("symbol",), ("ts",), ("price",)),
    order_extra=("trade_id",),
)

FUNDING = TableSpec(
    name="funding",
    doc="Perpetual funding and mark/index prices.",
    columns=_COMMON
    + (
        Column("mark_price", pa.float64(), "mark price"),
        Column("index_price", pa.float64(), "index (spot) price"),
        Column("funding_rate", pa.float64(), "current funding rate per period"),
        Column("predicted_rate", pa.float64(), "predicted next funding rate"),
        Column("next_funding_ts", TS, "time of the next funding event, UTC"),
        Column("open_interest", pa.float64(), "open interest"),
    ),
    key_extra=(),
    required=(("symbol",), ("ts",), ("mark_price", "funding_rate", "index_price")),
)

BOOK = TableSpec(
    name="book",
    doc="Level-2 book updates: absolute size per price level, 0 removes the level.",
    columns=_COMMON
    + (
        Column("seq", pa.int64(), "exchange sequence number (or the order of rows sharing a ts)"),
        Column("side", pa.int8(), "+1 bid, -1 ask"),
        Column("price", pa.float64(), "price level"),
        Column("size", pa.float64(), "new absolute size at the level (0 deletes)"),
        Column("is_snapshot", pa.bool_(), "true for rows of a full-book snapshot"),
    ),
    key_extra=("seq", "side", "price"),
    required=(("symbol",), ("ts",), ("side",), ("price",), ("size",)),
    order_extra=("seq",),
)

# A symbol the message did not reveal (malformed JSON, an exchange error): the store partitions
# by symbol, so dead letters need one; the underscore keeps it apart from every real instrument.
UNKNOWN_SYMBOL = "_unknown"

DEAD_LETTERS = TableSpec(
    name="dead_letters",
    doc="Feed messages a collector could not use (malformed, unexpected, exchange errors), kept verbatim.",
    columns=(
        Column("exchange", pa.string(), "venue, lower case: coinbase, binance, kraken, ..."),
        Column("symbol", pa.string(), f"instrument if the message named one, else {UNKNOWN_SYMBOL}"),
        Column("ts", TS, "receive time (a bad message has no trustworthy event time), UTC, nanoseconds"),
        Column("recv_ts", TS, "local receive time, UTC, nanoseconds"),
        Column("source", pa.string(), "connection or channel the message came on"),
        Column("reason", pa.string(), "why it was not used"),
        Column("payload", pa.string(), "the message as received"),
    ),
    key_extra=("source", "payload"),
    required=(("symbol",), ("ts",), ("reason",), ("payload",)),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (TICKS, TRADES, FUNDING, BOOK, DEAD_LETTERS)}
