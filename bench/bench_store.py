"""End-to-end data in: `db.generate` and `db.import_file` into a real database (store writes,
sorting, de-duplication and Parquet encoding included), and `compact`.

    .venv/bin/python bench/bench_store.py [--ticks N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cryptodb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with cryptodb.connect(Path(tmp) / "warm.duckdb") as db:
            db.generate(ticks=10_000)  # compile the generator's kernels outside the timing
        src = Path(tmp) / "src.duckdb"
        with cryptodb.connect(src) as db:
            started = time.perf_counter()
            db.generate(ticks=args.ticks, seed=1)
            gen = time.perf_counter() - started
            export = Path(tmp) / "ticks.parquet"
            db.sql(f"COPY (SELECT * FROM ticks) TO '{export}'")
            started = time.perf_counter()
            db.compact()
            compact = time.perf_counter() - started
        with cryptodb.connect(Path(tmp) / "dst.duckdb") as db:
            started = time.perf_counter()
            db.import_file(export)
            imp = time.perf_counter() - started
            started = time.perf_counter()
            again = db.import_file(export)["ticks"]
            dup = time.perf_counter() - started
            assert again.rows_written == 0
    n = args.ticks
    print("| operation | rows | seconds | rows/s |")
    print("|---|---:|---:|---:|")
    print(f"| `db.generate` into the store (ticks + trades written) | {n:,} | {gen:.2f} | {n / gen:,.0f} |")
    print(f"| `db.compact` (all tables) | {n:,} | {compact:.2f} | {n / compact:,.0f} |")
    print(f"| `db.import_file` of a `COPY ... TO` Parquet | {n:,} | {imp:.2f} | {n / imp:,.0f} |")
    print(f"| same file again (every row a duplicate) | {n:,} | {dup:.2f} | {n / dup:,.0f} |")


if __name__ == "__main__":
    main()
