"""Import throughput: a 2M-row tardis quotes .csv.gz and a 2M-row sabot Parquet through read_file.

    python bench/bench_import.py [--rows N] [--repeat R]

Writes the fixtures into a temporary directory (deleted afterwards) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from cryptodb.ingest.files import read_file

START_US = 1_700_000_000_000_000
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]


def tardis_quotes(path: Path, n: int, rng: np.random.Generator) -> None:
    ts = START_US + np.cumsum(rng.integers(0, 2_000, n))
    mid = 37_000 + np.cumsum(rng.normal(0, 0.5, n))
    table = pa.table({
        "exchange": pa.array(["binance"] * n),
        "symbol": pa.array(np.array(SYMBOLS)[rng.integers(0, len(SYMBOLS), n)]),
        "timestamp": ts,
        "local_timestamp": ts + rng.integers(100, 5_000, n),
        "ask_amount": np.round(rng.exponential(2, n), 5),
        "ask_price": np.round(mid + 0.05, 2),
        "bid_price": np.round(mid - 0.05, 2),
        "bid_amount": np.round(rng.exponential(2, n), 5),
    })
    # gzip -6 like the command-line default (pyarrow's and Python's level 9 takes ~30 s here)
    with gzip.open(path, "wb", compresslevel=6) as out:
        pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="none"))


def sabot_parquet(path: Path, n: int, rng: np.random.Generator) -> None:
    ns = pa.array(START_US * 1_000 + np.cumsum(rng.integers(0, 2_000_000, n)), pa.timestamp("ns"))
    text = pc.replace_substring(pc.cast(ns, pa.string()), " ", "T")
    stamp = pc.binary_join_element_wise(text, pa.scalar("Z"), "")  # RFC3339, 9 fractional digits
    mid = 37_000 + np.cumsum(rng.normal(0, 0.5, n))

    def dec(values):  # the collector stored every number as a decimal string
        return pc.cast(pa.array(np.round(values, 5)), pa.string())

    stats = dec(rng.uniform(1, 2, n))
    table = pa.table({
        "type": pa.array(np.where(rng.random(n) < 0.02, "ticker_batch", "ticker")),
        "product_id": pa.array(np.array(["BTC-USD", "ETH-USD", "SOL-USD"])[rng.integers(0, 3, n)]),
        "price": dec(mid),
        **{c: stats for c in ("volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
                              "price_percent_chg_24_h", "volume_3d", "open_24h")},
        "best_bid": dec(mid - 0.01), "best_ask": dec(mid + 0.01),
        "best_bid_quantity": dec(rng.exponential(1, n)), "best_ask_quantity": dec(rng.exponential(1, n)),
        "last_size": dec(rng.exponential(0.1, n)),
        "parent_timestamp": stamp,
        "parent_sequence_num": np.arange(n, dtype=np.int64),
    })
    pq.write_table(table, path, row_group_size=250_000)


def timed(path: Path, repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = sum(chunk.num_rows for _, chunk in read_file(path))
        best = min(best, time.perf_counter() - t0)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="cryptodb-bench-") as tmp:
        files = [("tardis-quotes", Path(tmp) / "binance_quotes.csv.gz", tardis_quotes),
                 ("sabot-parquet", Path(tmp) / "sabot.parquet", sabot_parquet)]
        print(f"rows per file: {args.rows:,}; best of {args.repeat}\n")
        print("| format | file | size (MB) | rows in | rows out | seconds | rows/s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, path, make in files:
            make(path, args.rows, rng)
            seconds, rows = timed(path, args.repeat)
            mb = path.stat().st_size / 1e6
            print(f"| {name} | {path.name} | {mb:.1f} | {args.rows:,} | {rows:,} | {seconds:.2f} "
                  f"| {args.rows / seconds:,.0f} |")


if __name__ == "__main__":
    main()
