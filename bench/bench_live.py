"""Live mode from a real broker (tansu on loopback): sustained ticks/s, latency, memory.

    .venv/bin/python bench/bench_live.py [--ticks 200000] [--rate 1000] [--seconds 20]

1. Throughput: N generated ticks (20 symbols) are replayed into a topic first, then `live`
   consumes them in micro-batches of 50,000 messages: ticks/s from the first to the last batch;
   each batch committed alone (the default), and with batches committed together (--commit-ms).
2. Latency at a steady rate: ticks are replayed at --rate messages/s while live runs. Per message,
   from its Kafka timestamp (produced): with the default (50 ms batches, each committed before its
   signals go out) to its batch's commit; with 5 ms batches and --commit-ms 1000, to the moment its
   batch's signals and features went out. p50 / p99 of the messages after the first second.
3. Memory: 1,000 symbols x 50 ticks through `cryptodb live` in a child process: peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from cryptodb.ingest.replay import replay_to_kafka
from cryptodb.ingest.schema import TICKS

import cryptodb
from cryptodb.broker import start_broker
from cryptodb.live.runner import LiveOptions, LiveRunner

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored_ticks(folder: Path, symbols: int, ticks: int, seed: int = 3):
    with cryptodb.connect(folder / f"source-{symbols}-{ticks}.duckdb") as db:
        db.generate(symbols=symbols, ticks=ticks, seed=seed)
        return db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, symbol, seq").to_arrow_table()


def throughput(folder: Path, bootstrap: str, n: int, commit_ms: int = 0) -> tuple[float, int]:
    ticks = stored_ticks(folder, 20, n)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    replay_to_kafka(ticks.to_batches(50_000), bootstrap, topic)
    reports = []
    with cryptodb.connect(folder / f"throughput-{commit_ms}.duckdb") as db:
        options = LiveOptions(bootstrap=bootstrap, topic=topic, group=topic, batch_rows=50_000, batch_ms=2_000,
                              commit_ms=commit_ms, idle_exit=3, print_signals=False)
        LiveRunner(db, options, status=lambda line: reports.append((time.perf_counter(), line))).run()
    first_batch_rows = int(reports[0][1].split(": ")[1].split(" msgs")[0])
    seconds = reports[-1][0] - reports[0][0]
    return (ticks.num_rows - first_batch_rows) / seconds, len(reports)


def latency(folder: Path, bootstrap: str, rate: int, seconds: int, batch_ms: int = 50,
            commit_ms: int = 0) -> np.ndarray:
    ticks = stored_ticks(folder, 20, rate * seconds, seed=4)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    latencies = []
    with cryptodb.connect(folder / f"latency-{commit_ms}.duckdb") as db:
        options = LiveOptions(bootstrap=bootstrap, topic=topic, group=topic, batch_rows=10_000, batch_ms=batch_ms,
                              commit_ms=commit_ms, idle_exit=6, print_signals=False)
        runner = LiveRunner(db, options, status=lambda line: None)
        original = runner.process

        paced = {"from_ms": np.inf}

        def process(messages, number, producer=None):
            report = original(messages, number, producer)
            values = report.latencies_ms if commit_ms else report.committed_ms  # per message, in order
            produced = np.array([m.timestamp()[1] for m in messages], np.float64)
            latencies.append(values[produced >= paced["from_ms"]])
            return report

        def send():
            time.sleep(3)
            # The replay's producer connects first, and what it was given meanwhile waits, with
            # its timestamp: that second measures the producer, not live mode.
            paced["from_ms"] = time.time() * 1e3 + 1_000
            replay_to_kafka(ticks.to_batches(1_000), bootstrap, topic, rate=rate)

        runner.process = process
        # Warm the kernels (numba loads its cache on first use) before the paced replay starts.
        sender = threading.Thread(target=send)
        replay_to_kafka(ticks.slice(0, 100).to_batches(), bootstrap, topic)
        sender.start()
        runner.run()
        sender.join()
    return np.concatenate(latencies)


def memory(folder: Path, bootstrap: str) -> float:
    ticks = stored_ticks(folder, 1000, 50_000, seed=5)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    replay_to_kafka(ticks.to_batches(50_000), bootstrap, topic)
    subprocess.run([sys.executable, "-m", "cryptodb", "--db", str(folder / "memory.duckdb"), "live", "--bootstrap",
                    bootstrap, "--topic", topic, "--batch-rows", "10000", "--idle-exit", "3", "--quiet"],
                   check=True, capture_output=True, cwd=ROOT)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_broker(free_port()) as broker:
        folder = Path(tmp)
        rate, batches = throughput(folder, broker.bootstrap, args.ticks)
        grouped, _ = throughput(folder, broker.bootstrap, args.ticks, commit_ms=2_000)
        lat = latency(folder, broker.bootstrap, args.rate, args.seconds)
        early = latency(folder, broker.bootstrap, args.rate, args.seconds, batch_ms=5, commit_ms=1_000)
        rss = memory(folder, broker.bootstrap)
    print("| measure | value |")
    print("|---|---:|")
    print(f"| sustained ticks/s from Kafka (JSON, {args.ticks:,} ticks, {batches} batches) | {rate:,.0f} |")
    print(f"| the same, batches committed together (--commit-ms 2000) | {grouped:,.0f} |")
    for name, values in (("produced -> committed", lat), ("produced -> emitted, --commit-ms 1000", early)):
        for q in (50, 99):
            print(f"| {name} latency at {args.rate:,} ticks/s, p{q} | {np.percentile(values, q):.0f} ms |")
    print(f"| peak RSS of `cryptodb live`, 1,000 symbols | {rss:,.0f} MB |")


if __name__ == "__main__":
    main()
