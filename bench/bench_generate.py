"""How fast the synthetic market is made: ticks per second of generate(), Arrow tables included.

    .venv/bin/python bench/bench_generate.py [--ticks N ...] [--exchanges]

Each size is timed on a second call, after a first one that compiles (or loads) the numba
kernels, and prints one Markdown table row.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from cryptodb.ingest.generator import generate, generate_exchanges


def drain(chunks) -> tuple[int, int]:
    counts = {"ticks": 0, "trades": 0}
    for kind, table in chunks:
        counts[kind] += table.num_rows
    return counts["ticks"], counts["trades"]


def timed(make, ticks: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    rows, trades = drain(make(ticks=ticks))
    return time.perf_counter() - started, rows, trades


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--exchanges", action="store_true",
                        help="also time generate_exchanges (coinbase, binance, kraken)")
    args = parser.parse_args()

    makers = [("generate", generate)]
    if args.exchanges:
        makers.append(("generate_exchanges", generate_exchanges))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| function | ticks | trades | seconds | ticks/s |")
    print("|---|---:|---:|---:|---:|")
    for name, make in makers:
        warm, _, _ = timed(make, min(args.ticks))  # compiles or loads the kernels
        for ticks in args.ticks:
            seconds, rows, trades = timed(make, ticks)
            assert rows == ticks, (rows, ticks)
            print(f"| {name} | {ticks:,} | {trades:,} | {seconds:.2f} | {ticks / seconds:,.0f} |", flush=True)
        print(f"<!-- {name}: first call (with kernel compile/load) {warm:.2f} s -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
