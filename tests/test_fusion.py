"""Kernels of one family over one input and window share a pass (cryptodb.engine.fusion): each
call's column equals that kernel computed alone, in its own query (itself checked against TA-Lib
and numpy references in the kernel tests)."""

import pytest
from conftest import make_ticks

import cryptodb
from cryptodb.engine import compute

W = "WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq)"
# Calls that fuse (five of the moments family: more than one pass holds), calls that must not
# (another window, another input, realized_var's squared input), field aliases, and the sequence
# kernels of one price with lags of several lengths.
CALLS = {
    "sma20": "sma(price, 20)",
    "std20": "rolling_std(price, 20)",
    "var20": "rolling_var(price, 20, 0)",
    "z20": "zscore(price, 20)",
    "bb_up": "bbands_upper(price, 20, 1.5, 2.5)",
    "bb_lo": "bbands_lower(price, 20, 1.5, 2.5)",
    "mean30": "rolling_mean(price, 30)",
    "std_bid": "rolling_std(bid, 20)",
    "mean_1s": "rolling_mean(price, INTERVAL 1 SECOND)",
    "sd_1s": "rolling_std(price, INTERVAL 1 SECOND)",
    "low": "rolling_min(price, 50)",
    "high": "rolling_max(price, 50)",
    "high_other": "rolling_max(price, 40)",
    "var95": "historical_var(ret, 0.05, 100)",
    "cvar95": "historical_cvar(ret, 0.05, 100)",
    "cvar99": "historical_cvar(ret, 0.01, 100)",
    "rv": "realized_var(ret, 20)",
    "ofi": "ofi(bid, ask, bid_size, ask_size)",
    "ofi_100": "ofi_sum(bid, ask, bid_size, ask_size, 100)",
    "ofi_1s": "ofi_sum(bid, ask, bid_size, ask_size, INTERVAL 1 SECOND)",
    "lag1": "prev(price)",
    "lag3": "prev(price, 3)",
    "d1": "diff(price)",
    "d5": "diff(price, 5)",
    "first": "first_seen(price)",
    "n": "running_count(price)",
    "cum": "cumsum(price)",
    "cum_ret": "cumsum(ret)",
}


@pytest.fixture(scope="module")
def db():
    with cryptodb.connect() as db:
        for i, symbol in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"]):
            db.insert_ticks(make_ticks(4000, symbol, seed=i, step_ns=7_000_003 * (i + 1)))
        db.sql("CREATE TABLE r AS SELECT symbol, ts, seq, price, bid, ask, bid_size, ask_size, "
               f"log_return(price) OVER w AS ret FROM ticks {W}")
        yield db


@pytest.fixture
def passes(monkeypatch):
    """The fused groups of each scope the engine computes, as `fuse` returned them."""
    found = []
    real = compute.fuse
    monkeypatch.setattr(compute, "fuse", lambda *a: found.append(real(*a)) or found[-1])
    return found


def test_fused_calls_equal_each_kernel_alone(db, passes):
    columns = ", ".join(f"{sql} OVER w AS {name}" for name, sql in CALLS.items())
    together = db.sql(f"SELECT {columns} FROM r {W} ORDER BY symbol, ts, seq").to_arrow_table()
    groups = {id(f): sorted(f.name.split("+")) for f in passes[0].values()}
    assert sorted(groups.values()) == sorted([
        ["rolling_std", "rolling_var", "sma", "zscore"],  # 4 a pass: bbands (upper and lower: one
        ["rolling_mean", "rolling_std"],                  # computation) runs alone; the INTERVAL window
        ["rolling_max", "rolling_min"],
        ["historical_cvar", "historical_var"],
        ["ofi", "ofi_sum", "ofi_sum"],  # e_t once, summed over each window
        ["cumsum", "diff", "diff", "first_seen", "prev", "prev", "running_count"],  # one ring of 5
    ])
    for name, sql in CALLS.items():
        alone = db.sql(f"SELECT {sql} OVER w AS v FROM r {W} ORDER BY symbol, ts, seq").to_arrow_table()
        assert together.column(name).equals(alone.column("v")), name


def test_ofi_sums_fused_without_ofi_equal_each_alone(db, passes):
    calls = {"a": "ofi_sum(bid, ask, bid_size, ask_size, 20)", "b": "ofi_sum(bid, ask, bid_size, ask_size, 7)"}
    columns = ", ".join(f"{sql} OVER w AS {name}" for name, sql in calls.items())
    together = db.sql(f"SELECT {columns} FROM r {W} ORDER BY symbol, ts, seq").to_arrow_table()
    assert [f.name for f in passes[0].values()] == ["ofi_sum+ofi_sum"] * 2
    for name, sql in calls.items():
        alone = db.sql(f"SELECT {sql} OVER w AS v FROM r {W} ORDER BY symbol, ts, seq").to_arrow_table()
        assert together.column(name).equals(alone.column("v")), name
