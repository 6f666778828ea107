"""Rolling extremes over long runs of one partition's rows (the store's order) go by blocks, the
rest through the deques (udfs.extremes). Both must give the same rows, bit for bit, whatever the
order the rows come in and however a partition is split into batches: checked against pandas,
against the same rows in batches too short to go by blocks (the deques only), and against them
interleaved."""

import numpy as np
import pandas as pd
import pytest
from cryptodb.udfs import registry
from cryptodb.udfs.extremes import BLOCK_RUN_ROWS
from cryptodb.udfs.state import assemble, extract, from_bytes, to_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

KERNELS = registry.kernels()
# (kernel, parameters): INTEGER windows below, at and far above the run length that goes by blocks.
CASES = [("rolling_max", {"n": 1}), ("rolling_max", {"n": 20}), ("rolling_min", {"n": 20}),
         ("rolling_min", {"n": 300}), ("rolling_max", {"n": 2000}), ("donchian", {"n": 50}),
         ("willr", {"n": 14}), ("stoch", {})]
SIZES = (3 * BLOCK_RUN_ROWS + 77, 9000, 1, 40)  # rows per partition: long runs, a one-row one, a short one


def contiguous_market(seed: int):
    """Partitions one after another (as the store keeps them) with NULL gaps, a flat stretch, ties
    and signed zeros."""
    rng = np.random.default_rng(seed)
    gid = np.repeat(np.arange(len(SIZES)), SIZES).astype(np.int64)
    n = len(gid)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    close[500:700] = close[500]
    close[1200:1300] = np.where(rng.random(100) < 0.5, 0.0, -0.0)  # equal values, different results
    close[rng.random(n) < 0.03] = np.nan
    high = close * (1 + rng.uniform(0, 0.01, n))
    low = close * (1 - rng.uniform(0, 0.01, n))
    low[2000:2100] = np.nan  # a gap in one input only: the row is skipped whole
    cols = {"x": close, "close": close, "high": high, "low": low}
    return gid, np.arange(n, dtype=np.int64) * 1_000_000_000, cols


def run(spec, params, cols, ts, gid, order, batch_rows=None):
    """The kernel over the rows in `order`, in one call or in calls of `batch_rows` rows."""
    state = spec.new_state(params, int(gid.max()) + 1)
    inputs = [cols[c] for c in spec.inputs]
    if batch_rows is None:
        return spec.run(state, inputs, ts, gid, order, params)
    out = np.full((len(gid), len(spec.outputs)), np.nan)
    for at in range(0, len(order), batch_rows):
        rows = order[at:at + batch_rows]
        out[rows] = spec.run(state, inputs, ts, gid, rows, params)[rows]
    return out


def round_robin(gid: np.ndarray) -> np.ndarray:
    """Every partition's rows in their order, taken one row of each partition in turn."""
    rows = [np.flatnonzero(gid == g) for g in range(int(gid.max()) + 1)]
    rank = np.concatenate([np.arange(len(r)) for r in rows])
    return np.concatenate(rows)[np.argsort(rank, kind="stable")]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((a.view(np.int64) == b.view(np.int64)).all())


@pytest.mark.parametrize("name,given", CASES, ids=[f"{k}-{v.get('n', 'default')}" for k, v in CASES])
def test_runs_by_blocks_equal_the_deques_and_pandas(name, given):
    spec = KERNELS[name]
    params = spec.bind([], given)
    gid, ts, cols = contiguous_market(1)
    storage = np.arange(len(gid))
    by_blocks = run(spec, params, cols, ts, gid, storage)
    assert same_bits(by_blocks, run(spec, params, cols, ts, gid, storage, batch_rows=BLOCK_RUN_ROWS - 1))
    assert same_bits(by_blocks, run(spec, params, cols, ts, gid, round_robin(gid)))
    if name not in ("rolling_min", "rolling_max", "donchian"):
        return  # willr and stoch are checked against TA-Lib in test_kernels_talib
    n = params["n"].rows
    hi, lo = (cols["x"], cols["x"]) if name != "donchian" else (cols["high"], cols["low"])
    ref = np.full_like(by_blocks, np.nan)
    for g in range(len(SIZES)):
        rows = np.flatnonzero(gid == g)
        rows = rows[~np.isnan(hi[rows]) & ~np.isnan(lo[rows])]
        upper = pd.Series(hi[rows]).rolling(n, min_periods=n).max().to_numpy()
        lower = pd.Series(lo[rows]).rolling(n, min_periods=n).min().to_numpy()
        if name == "rolling_max":
            ref[rows, 0] = upper
        elif name == "rolling_min":
            ref[rows, 0] = lower
        else:
            ref[rows, 0], ref[rows, 1], ref[rows, 2] = upper, lower, (upper + lower) / 2.0
    np.testing.assert_array_equal(by_blocks, ref)
    assert (~np.isnan(by_blocks)).sum() > 0.8 * len(gid) * by_blocks.shape[1] - n * len(SIZES) * 3


@pytest.mark.parametrize("name,given", CASES[1:], ids=[f"{k}-{v.get('n', 'default')}" for k, v in CASES[1:]])
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, sum(SIZES) - 1), max_size=8), seed=st.integers(0, 3))
def test_batches_of_long_and_short_runs_equal_one_pass(name, given, cuts, seed):
    """Consecutive batches, some long enough to go by blocks and some not (which rebuild the deques
    a run by blocks left behind), the state saved and restored between them as live mode does."""
    spec = KERNELS[name]
    params = spec.bind([], given)
    gid, ts, cols = contiguous_market(seed)
    groups = len(SIZES)
    whole = run(spec, params, cols, ts, gid, np.arange(len(gid)))
    inputs = [cols[c] for c in spec.inputs]
    state, pieces = spec.new_state(params, groups), np.full_like(whole, np.nan)
    bounds = [0, *sorted(set(cuts)), len(gid)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out = spec.run(state, inputs, ts, gid, np.arange(lo, hi), params)
        pieces[lo:hi] = out[lo:hi]
        state = assemble(spec, params, [from_bytes(to_bytes(extract(spec, state, g))) for g in range(groups)])
    assert same_bits(pieces, whole)
