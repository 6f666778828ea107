"""prev / diff / cumsum / first_seen / running_count against pandas over the non-NULL rows."""

import numpy as np
import pandas as pd
import pytest
from cryptodb.udfs import registry

KERNELS = registry.kernels()


def run(name, x, gid, **params):
    spec = KERNELS[name]
    p = spec.bind([], params)
    n = len(x)
    return spec.run(spec.new_state(p, int(gid.max()) + 1), [x], np.zeros(n, np.int64), gid, np.arange(n), p)[:, 0]


def data(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n).cumsum()
    x[rng.random(n) < 0.1] = np.nan
    return x, rng.integers(0, 4, n).astype(np.int64)


def reference(x, gid, fn):
    """Per partition over the non-NULL rows, NULL at the NULL rows."""
    out = np.full(len(x), np.nan)
    for g in np.unique(gid):
        idx = np.flatnonzero((gid == g) & ~np.isnan(x))
        out[idx] = fn(pd.Series(x[idx])).to_numpy(dtype=float)
    return out


@pytest.mark.parametrize("name,params,fn", [
    ("prev", {}, lambda s: s.shift(1)),
    ("prev", {"k": 3}, lambda s: s.shift(3)),
    ("diff", {}, lambda s: s.diff(1)),
    ("diff", {"k": 5}, lambda s: s.diff(5)),
    ("first_seen", {}, lambda s: pd.Series(np.full(len(s), s.iloc[0]))),
    ("running_count", {}, lambda s: pd.Series(np.arange(1, len(s) + 1))),
], ids=["prev", "prev-3", "diff", "diff-5", "first_seen", "running_count"])
def test_against_pandas(name, params, fn):
    x, gid = data()
    np.testing.assert_allclose(run(name, x, gid, **params), reference(x, gid, fn), rtol=0, atol=0, equal_nan=True)


def test_cumsum_is_compensated():
    """10^6 steps of 0.1 after a large value: a plain running sum loses digits, ours does not."""
    x = np.r_[1e8, np.full(1_000_000, 0.1)]
    got = run("cumsum", x, np.zeros(len(x), np.int64))
    exact = 1e8 + 0.1 * np.arange(1, 1_000_001)  # each value rounded once
    assert np.max(np.abs(got[1:] - exact) / exact) < 1e-15
    x, gid = data(3)
    np.testing.assert_allclose(run("cumsum", x, gid), reference(x, gid, lambda s: s.cumsum()), rtol=1e-12,
                               equal_nan=True)
