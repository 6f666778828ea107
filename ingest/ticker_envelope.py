"""Stored ticks as Coinbase `ticker` envelopes, the seed platform's Kafka format.

The seed's producer sent each raw WebSocket envelope (`{"channel": "ticker", "timestamp",
"sequence_num", "events": [{"type", "tickers": [{...decimal strings...}]}]}`) to Kafka;
`cryptodb replay --format raw` writes the same from stored ticks, so live mode and the seed's
consumers can be fed and tested with it. Only what a ticks row holds is written: the envelope
`timestamp` is the event time (Coinbase has no per-ticker time), `sequence_num` the seq and
`last_size` the size, exactly what the Coinbase parser (`cryptodb.ingest.coinbase`) reads back.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# ticks column -> ticker field, as the seed's collector mapped them (see the sabot-parquet importer).
TICKER_FIELDS = {
    "price": "price",
    "size": "last_size",
    "bid": "best_bid",
    "bid_size": "best_bid_quantity",
    "ask": "best_ask",
    "ask_size": "best_ask_quantity",
}


def _quoted_field(name: str, values: pa.Array) -> pa.Array:
    """`,"name":"<decimal string>"` per row, or "" where the value is NULL (the field is left out,
    as Coinbase leaves out fields it has no value for)."""
    text = pc.cast(values, pa.string())  # shortest text that parses back to the same double
    return pc.fill_null(pc.binary_join_element_wise(f',"{name}":"', text, '"', ""), "")


def encode_ticker_envelopes(ticks: pa.Table | pa.RecordBatch) -> list[bytes]:
    """One ticker envelope per ticks row, as the seed's producer wrote them (decimal strings)."""
    n = ticks.num_rows
    if n == 0:
        return []

    def column(name: str) -> pa.Array:
        arr = ticks.column(name)
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr

    names = ticks.schema.names
    seq = pc.fill_null(pc.cast(column("seq"), pa.string()), "0") if "seq" in names else pa.array(["0"] * n)
    stamp = pc.strftime(pc.cast(column("ts"), pa.timestamp("ns")), format="%Y-%m-%dT%H:%M:%SZ")
    parts = ['{"channel":"ticker","client_id":"","timestamp":"', stamp, '","sequence_num":', seq,
             ',"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"', column("symbol"), '"']
    for col, field in TICKER_FIELDS.items():
        if col in names:
            parts.append(_quoted_field(field, column(col)))
    parts.append("}]}]}")
    return pc.binary_join_element_wise(*parts, "").cast(pa.binary()).to_pylist()
