"""Live mode's ordering policy: which ticks of a micro-batch are new, repeated or late.

Each stream, an (exchange, symbol) pair, has a watermark: the (ts, seq) of its last tick a batch
committed. A tick of a stream at or before its watermark is a duplicate when its key (exchange,
symbol, ts, seq) is already stored, else it is late: kernels are causal, so a tick cannot be
inserted into a past they have moved beyond. Streams are judged apart because sequence numbers
belong to one exchange's feed, and because the exchanges of one symbol reach Kafka in their own
order: a Binance tick is not late for arriving after a later Coinbase one. (Scripts keep their
kernels per stream accordingly, or, like sql/arbitrage.sql, evaluate instants across exchanges
from the books; see cryptodb.live.books.)

A watermark whose exchange is None was committed before watermarks were kept per exchange: it
stands for every exchange of its symbol that has no watermark of its own yet.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Stream = tuple[str | None, str]  # (exchange, symbol); exchange None: any exchange (an older state)
Watermarks = dict[Stream, tuple[int, int]]  # stream -> (ts ns, seq) of its last committed tick
StoredKeys = Callable[[pa.Table], set[tuple[str, str, int, int]]]  # rows -> keys of theirs stored

_LOWEST = (np.iinfo(np.int64).min, np.iinfo(np.int64).min)
SORT_KEYS = [("exchange", "ascending"), ("symbol", "ascending"), ("ts", "ascending"), ("seq", "ascending")]


def mark_of(watermarks: Watermarks, exchange: str, symbol: str) -> tuple[int, int] | None:
    return watermarks.get((exchange, symbol), watermarks.get((None, symbol)))


def frontiers(watermarks: Watermarks) -> dict[str, int]:
    """Per symbol, the time of its newest committed tick on any exchange."""
    out: dict[str, int] = {}
    for (_, symbol), (ts, _) in watermarks.items():
        out[symbol] = max(ts, out.get(symbol, ts))
    return out


def _stream_codes(ticks: pa.Table) -> tuple[np.ndarray, list[Stream]]:
    """A dense code per row for its (exchange, symbol), and the stream of each code."""
    ex = pc.dictionary_encode(ticks.column("exchange").combine_chunks())
    sym = pc.dictionary_encode(ticks.column("symbol").combine_chunks())
    ex_codes = ex.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    sym_codes = sym.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pair = ex_codes * len(sym.dictionary) + sym_codes
    unique, codes = np.unique(pair, return_inverse=True)
    exchanges, symbols = ex.dictionary.to_pylist(), sym.dictionary.to_pylist()
    streams = [(exchanges[int(p) // len(symbols)], symbols[int(p) % len(symbols)]) for p in unique]
    return codes.reshape(-1), streams


def apply_order_policy(ticks: pa.Table, watermarks: Watermarks, stored_keys: StoredKeys
                       ) -> tuple[pa.Table, list[dict], int]:
    """(the new ticks sorted by exchange, symbol, ts, seq; late ticks as dead letters; duplicates).
    Vectorised: a batch holds up to tens of thousands of ticks."""
    ticks = ticks.sort_by(SORT_KEYS)
    n = ticks.num_rows
    codes, streams = _stream_codes(ticks)
    ts = ticks.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    seq = ticks.column("seq").fill_null(-1).to_numpy(zero_copy_only=False)
    repeated = np.zeros(n, bool)
    repeated[1:] = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1]) & (seq[1:] == seq[:-1])
    marks = [mark_of(watermarks, e, s) or _LOWEST for e, s in streams]
    mark_ts = np.array([m[0] for m in marks], np.int64)[codes]
    mark_seq = np.array([m[1] for m in marks], np.int64)[codes]
    behind = ~repeated & ((ts < mark_ts) | ((ts == mark_ts) & (seq <= mark_seq)))
    duplicates = int(repeated.sum())
    late = []
    if behind.any():
        rows = np.flatnonzero(behind)
        stored = stored_keys(ticks.take(pa.array(rows)))
        for i in rows:
            exchange, symbol = streams[codes[i]]
            if (exchange, symbol, int(ts[i]), int(seq[i])) in stored:
                duplicates += 1
            else:
                late.append(_late_letter(ticks.slice(int(i), 1), mark_of(watermarks, exchange, symbol)))
    return ticks.filter(pa.array(~(repeated | behind))), late, duplicates


def new_watermarks(ticks: pa.Table | None) -> Watermarks:
    """Each stream's last (ts, seq) in `ticks`, sorted as apply_order_policy leaves them."""
    if ticks is None or not ticks.num_rows:
        return {}
    codes, streams = _stream_codes(ticks)
    last = np.append(np.flatnonzero(codes[1:] != codes[:-1]), len(codes) - 1)
    ts = ticks.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    seq = ticks.column("seq").fill_null(-1).to_numpy(zero_copy_only=False)
    return {streams[codes[i]]: (int(ts[i]), int(seq[i])) for i in last}


def _late_letter(tick: pa.Table, mark: tuple[int, int]) -> dict:
    """A late tick as a dead letter: its own event time and row, so that consuming its batch
    again after a crash stores the same letter, not a second one."""
    from cryptodb.ingest.messages import encode_rows

    row = tick.to_pylist()[0]
    return {"exchange": row["exchange"] or "kafka", "symbol": row["symbol"],
            "ts": int(tick.column("ts").cast(pa.int64())[0].as_py()), "recv_ts": time.time_ns(),
            "source": "live:order-policy",
            "reason": f"late tick: at or before the last stored tick of {row['exchange']} {row['symbol']} "
                      f"(ts {mark[0]}, seq {mark[1]})",
            "payload": encode_rows("ticks", tick.drop_columns(["recv_ts"]))[0].decode()}
