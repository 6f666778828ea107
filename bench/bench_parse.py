"""Collector parse throughput: exchange ticker messages -> normalised Arrow batches, on one core.

    python bench/bench_parse.py [--messages N] [--repeat R] [--batch B] [--exchanges coinbase,kraken]

Builds N realistic frames per exchange (14 products, prices moving, nanosecond timestamps rising,
sequence numbers counting) as the WebSocket delivers them (text), then times `parser.parse` on
every frame plus `parser.take()` (the Arrow tables handed to a sink) every B frames. No network:
this is the per-message cost the connection loop adds, measured in CPU seconds of the one thread
(other work on the machine does not count), with the garbage collector set as the collector sets
it while it runs (`collecting_gc`; `--default-gc` leaves Python's default). Best of R runs; prints
a Markdown table.
The goal is 200,000 Coinbase ticker messages/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
from cryptodb.ingest.collection_gc import collecting_gc
from cryptodb.ingest.feed import DATA, get_feed
from cryptodb.ingest.generator import SEED_PRODUCTS

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _rfc3339(ns: int) -> str:
    secs, frac = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _walk(n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    products = rng.integers(0, len(SEED_PRODUCTS), n)
    ts = START_NS + np.cumsum(rng.integers(1, 2_000_000, n))  # ~1000 messages a second
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    return products, ts, mid


def coinbase_frames(n: int, rng) -> list[str]:
    products, ts, mid = _walk(n, rng)
    frames = []
    for i in range(n):
        p, m = SEED_PRODUCTS[products[i]], mid[i]
        ticker = {"type": "ticker", "product_id": p, "price": f"{m:.2f}", "volume_24_h": "16038.28770938",
                  "low_24_h": f"{m * 0.97:.2f}", "high_24_h": f"{m * 1.03:.2f}", "low_52_w": "15460",
                  "high_52_w": "48240", "price_percent_chg_24_h": "-4.15775596190603",
                  "best_bid": f"{m - 0.01:.2f}", "best_bid_quantity": f"{rng.exponential(2):.8f}",
                  "best_ask": f"{m + 0.01:.2f}", "best_ask_quantity": f"{rng.exponential(2):.8f}"}
        frames.append(json.dumps({"channel": "ticker", "client_id": "", "timestamp": _rfc3339(ts[i]),
                                  "sequence_num": i, "events": [{"type": "update", "tickers": [ticker]}]}))
    return frames


def binance_frames(n: int, rng) -> list[str]:
    products, _, mid = _walk(n, rng)
    frames = []
    for i in range(n):
        s, m = SEED_PRODUCTS[products[i]].replace("-USD", "USDT"), mid[i]
        data = {"u": 400900217 + i, "s": s, "b": f"{m - 0.01:.8f}", "B": f"{rng.exponential(2):.8f}",
                "a": f"{m + 0.01:.8f}", "A": f"{rng.exponential(2):.8f}"}
        frames.append(json.dumps({"stream": f"{s.lower()}@bookTicker", "data": data}))
    return frames


def kraken_frames(n: int, rng) -> list[str]:
    products, ts, mid = _walk(n, rng)
    frames = []
    for i in range(n):
        m = round(float(mid[i]), 2)
        data = {"symbol": SEED_PRODUCTS[products[i]].replace("-", "/"), "bid": m - 0.01,
                "bid_qty": round(float(rng.exponential(2)), 8), "ask": m + 0.01,
                "ask_qty": round(float(rng.exponential(2)), 8), "last": m, "volume": 1234.5, "vwap": m,
                "low": m * 0.97, "high": m * 1.03, "change": 1.5, "change_pct": 0.4,
                "timestamp": _rfc3339(ts[i])[:-4] + "Z"}  # Kraken sends microseconds
        frames.append(json.dumps({"channel": "ticker", "type": "update", "data": [data]}))
    return frames


def run(exchange: str, frames: list[str], batch: int) -> tuple[float, int]:
    parser = get_feed(exchange).parser()
    parse, take = parser.parse, parser.take
    recv = time.time_ns()
    rows = 0
    started = time.thread_time()  # CPU time of this thread: "on one core", whatever else runs
    for i, frame in enumerate(frames, 1):
        if parse(frame, recv, exchange)[0] is not DATA:
            raise AssertionError(f"{exchange}: not a data frame: {frame}")
        if i % batch == 0:
            rows += sum(t.num_rows for t in take().values())
    rows += sum(t.num_rows for t in take().values())
    return time.thread_time() - started, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50_000, help="frames between take() (the collector's flush)")
    ap.add_argument("--exchanges", default="coinbase,binance,kraken", help="comma-separated, default all three")
    ap.add_argument("--default-gc", action="store_true", help="Python's default GC thresholds, not the collector's")
    args = ap.parse_args()
    with contextlib.nullcontext() if args.default_gc else collecting_gc():
        _table(args)


def _table(args) -> None:
    rng = np.random.default_rng(0)
    cases = [("coinbase", "ticker", coinbase_frames), ("binance", "bookTicker", binance_frames),
             ("kraken", "ticker", kraken_frames)]
    print("| exchange | channel | messages | bytes/msg | CPU seconds | messages/s |")
    print("|---|---|---:|---:|---:|---:|")
    for exchange, channel, make in cases:
        if exchange not in args.exchanges.split(","):
            continue
        frames = make(args.messages, rng)
        size = sum(map(len, frames)) / len(frames)
        run(exchange, frames[:10_000], args.batch)  # warm the caches (symbols, seconds)
        best, rows = min(run(exchange, frames, args.batch) for _ in range(args.repeat))
        assert rows == len(frames), (rows, len(frames))
        print(f"| {exchange} | {channel} | {len(frames):,} | {size:.0f} | {best:.2f} | {len(frames) / best:,.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
