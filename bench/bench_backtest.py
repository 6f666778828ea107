"""The backtest mode end to end: `cryptodb run backtest` over 10M generated ticks.

    .venv/bin/python bench/bench_backtest.py [--ticks 10000000] [--symbols 100] [--repeat 2]

Builds (once, cached under build/bench/) a store of generated ticks of its own (the run writes
backtest_* tables into it), then runs sql/backtest.sql with short=true, reports on: whole-script
wall time (signals, fills, trades, equity, metrics, store writes and the HTML/PNG report) in
ticks/s, best of --repeat after one warm-up, and each statement's share of one run.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from pathlib import Path

import cryptodb
from cryptodb.scripts import fill_placeholders, find_script

ROOT = Path(__file__).resolve().parent.parent
PARAMS = {"short": True}


def build_store(path: Path, ticks: int, symbols: int) -> None:
    if path.exists():
        return
    with cryptodb.connect(path) as db:
        db.generate(symbols=symbols, ticks=ticks, seed=42)
        db.compact()


def statement_times(db, params: dict) -> list[tuple[str, float]]:
    """Each statement of the script on its own, in order (the same work as run_script)."""
    where, text = find_script("backtest")
    db.set_params(**params)
    out = []
    for stmt in db.con.extract_statements(fill_placeholders(text, params, where)):
        sql = stmt.query.strip().rstrip(";").strip()
        started = time.perf_counter()
        db.execute(sql)
        out.append((" ".join(sql.split())[:70], time.perf_counter() - started))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    path = ROOT / "build" / "bench" / f"backtest-{args.ticks}-{args.symbols}.duckdb"
    build_store(path, args.ticks, args.symbols)
    report = path.with_suffix(".html")
    params = {**PARAMS, "report": str(report)}
    with cryptodb.connect(path) as db:
        n = db.sql("SELECT count(*) FROM ticks").fetchall()[0][0]
        db.run_script("backtest", **params)  # warm-up: numba, file caches
        times = []
        for _ in range(args.repeat):
            gc.collect()
            started = time.perf_counter()
            results = db.run_script("backtest", **params)
            times.append(time.perf_counter() - started)
        steps = statement_times(db, params)
        trades = db.sql("SELECT count(*) FROM backtest_trades").fetchall()[0][0]
    best = min(times)
    overall = [r.table for r in results if r.table is not None and "trades" in r.table.column_names][0]
    print(f"{n:,} ticks, {args.symbols} symbols, {trades:,} trades, params {PARAMS}\n")
    print("| backtest (sql/backtest.sql, end to end) | seconds | ticks/s |")
    print("|---|---:|---:|")
    print(f"| best of {args.repeat} | {best:.2f} | {n / best:,.0f} |")
    print("\n| statement | seconds |\n|---|---:|")
    for sql, secs in sorted(steps, key=lambda s: -s[1])[:8]:
        print(f"| `{sql.replace('|', '/')}` | {secs:.2f} |")
    last = overall.slice(overall.num_rows - 1).to_pylist()[0]
    print(f"\noverall: {last}")
    print(f"\nreport: {report}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
