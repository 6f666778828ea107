"""Every registered kernel alone: nanoseconds per row over 1M rows in one partition.

    .venv/bin/python bench/bench_each_kernel.py [--rows N] [KERNEL ...]

Inputs are a random-walk price (and high/low/volume around it); parameters are each kernel's
defaults (or its first declared example), with 20-row windows where a size is required.
Best of 3 after a warm-up call that compiles or loads the kernel.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cryptodb.udfs import registry
from cryptodb.udfs.kernel import REQUIRED


def inputs(n: int, names: tuple[str, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    series = {"high": close * 1.001, "low": close * 0.999, "close": close, "open": close,
              "r": np.diff(np.log(close), prepend=close[0]), "volume": rng.uniform(1, 10, n)}
    return [series.get(name, close if i == 0 else rng.uniform(1, 10, n)) for i, name in enumerate(names)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("names", nargs="*", help="only these kernels (default: every kernel)")
    args = parser.parse_args()
    n = args.rows
    ts = np.arange(n, dtype=np.int64) * 1_000_000_000
    gid = np.zeros(n, np.int64)
    rows = np.arange(n, dtype=np.int64)
    print("| kernel | ns/row |")
    print("|---|---:|")
    for name, spec in registry.kernels().items():
        if args.names and name not in args.names:
            continue
        given = dict(spec.examples[0]) if spec.examples else {
            p.name: {"window": 20, "int": 5, "float": 0.5}[p.kind] for p in spec.params
            if p.default is REQUIRED and p.kind in ("window", "int", "float")}
        params = spec.bind([], given)
        cols = inputs(n, spec.inputs)
        spec.run(spec.new_state(params, 1), cols, ts, gid, rows[:1000], params)
        best = min(_timed(spec, params, cols, ts, gid, rows) for _ in range(3))
        print(f"| {name} | {best * 1e9 / n:.1f} |")


def _timed(spec, params, cols, ts, gid, rows) -> float:
    state = spec.new_state(params, 1)
    started = time.perf_counter()
    spec.run(state, cols, ts, gid, rows, params)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
