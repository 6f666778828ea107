import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, settings
from kafka import kafka_broker  # noqa: F401  (tests/kafka.py: the broker fixture for every test)

import cryptodb

# The suite runs on 2 shared cores: slow example generation is load, not a bug in a test.
settings.register_profile("cryptodb", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cryptodb")

ROOT = Path(__file__).resolve().parent.parent
BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def make_ticks(n: int, symbol: str = "BTC-USD", start_ns: int = BASE_NS, seed: int = 0,
               step_ns: int = 1_000_003, seq_start: int = 1) -> pa.Table:
    """A small, fully known ticks table: odd nanosecond steps so that precision loss would show."""
    rng = np.random.default_rng(seed)
    ts = start_ns + np.arange(n, dtype=np.int64) * step_ns
    mid = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    return pa.table({
        "exchange": pa.array(["coinbase"] * n),
        "symbol": pa.array([symbol] * n),
        "ts": pa.array(ts, pa.timestamp("ns")),
        "seq": pa.array(np.arange(seq_start, seq_start + n), pa.int64()),
        "price": mid,
        "size": rng.uniform(0.01, 2, n),
        "bid": mid - 0.01,
        "ask": mid + 0.01,
        "bid_size": rng.uniform(0.1, 5, n),
        "ask_size": rng.uniform(0.1, 5, n),
    })


@pytest.fixture
def db():
    with cryptodb.connect() as d:
        yield d


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "crypto.duckdb"


def run_cli(*args: str, env: dict | None = None, check: bool = False, timeout: float = 120
            ) -> subprocess.CompletedProcess:
    """The real command in a child process, as a user runs it."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "cryptodb", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"cryptodb {' '.join(args)} failed: {proc.stderr}")
    return proc
