"""The cost of one small live micro-batch, without a broker: what bounds live latency.

    .venv/bin/python bench/bench_live_batch.py [--per-batch 5] [--commit-ms 1000] [--batches 600]

Generated ticks of 20 symbols, encoded as the JSON messages `cryptodb replay` produces, go
through `LiveRunner.process` a few at a time (5 ticks = 5 ms of a 1,000 ticks/s feed) with the
shipped sql/live.sql and the DuckDB state backend. Prints the median and p99 of the batches that do
not commit and of those that do, the first 50 (or, of a few large batches, the first) left out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from cryptodb.ingest.messages import encode_rows
from cryptodb.ingest.schema import TICKS

import cryptodb
from cryptodb.live.offline import OfflineMessage
from cryptodb.live.runner import LiveOptions, LiveRunner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-batch", type=int, default=5)
    parser.add_argument("--commit-ms", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=600)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cryptodb-bench-"))
    n = args.per_batch * args.batches
    with cryptodb.connect(folder / "source.duckdb") as db:
        db.generate(symbols=20, ticks=n, seed=4)
        ticks = db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, symbol, seq").to_arrow_table()
    messages = [OfflineMessage(p, i, topic="bench") for i, p in enumerate(encode_rows("ticks", ticks))]
    plain, committing = [], []
    warm_up = 50 if args.batches > 100 else 1  # numba loads its kernels, plans are made
    with cryptodb.connect(folder / "live.duckdb") as db:
        runner = LiveRunner(db, LiveOptions(topic="bench", commit_ms=args.commit_ms, print_signals=False))
        runner.open()
        try:
            for number, start in enumerate(range(0, len(messages), args.per_batch), 1):
                started = time.perf_counter()
                report = runner.process(messages[start:start + args.per_batch], number)
                ms = (time.perf_counter() - started) * 1e3
                if number > warm_up:
                    (committing if report.committed_ms is not None else plain).append(ms)
        finally:
            runner.close()
    print(f"{args.per_batch} ticks a batch, --commit-ms {args.commit_ms}, after {warm_up} batch(es): "
          f"{_summary(plain)} without a commit; {_summary(committing)} with one")


def _summary(ms: list[float]) -> str:
    if not ms:
        return "no batch"
    return f"{len(ms)} batches, median {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms"


if __name__ == "__main__":
    main()
