"""rolling_cov / rolling_corr / rolling_beta / autocorr against two-pass numpy over each window.

(pandas' rolling cov/corr use online updates whose error reaches 1e-10 relative here, so the
reference is computed plainly, window by window.)"""

import numpy as np
import pytest
from cryptodb.udfs import registry
from cryptodb.udfs.kernel import Window

SECOND = 1_000_000_000
KERNELS = registry.kernels()


def data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n).cumsum() + 100
    y = 0.5 * x + rng.normal(0, 1, n)
    y[200:230] = y[200]  # a flat stretch: correlation undefined there
    ts = np.cumsum(rng.integers(0, 3, n)).astype(np.int64) * SECOND  # ties included
    x[rng.random(n) < 0.03] = np.nan
    return ts, y, x


def run(name, cols, ts, *params):
    spec = KERNELS[name]
    p = spec.bind(list(params), {})
    return spec.run(spec.new_state(p, 1), cols, ts, np.zeros(len(ts), np.int64), np.arange(len(ts)), p)[:, 0]


def windows(ts, ok, size):
    """Index sets of each row's window over the usable rows (INTEGER count or INTERVAL ns)."""
    idx = np.flatnonzero(ok)
    for k, i in enumerate(idx):
        if isinstance(size, int):
            yield i, (idx[k - size + 1: k + 1] if k + 1 >= size else None)
        else:
            w = idx[: k + 1]
            yield i, w[ts[w] > ts[i] - size.span_ns]


def two_pass(y, x, w, what):
    a, b = y[w], x[w]
    da, db = a - a.mean(), b - b.mean()
    if what == "cov":
        return (da * db).sum() / (len(w) - 1) if len(w) > 1 else np.nan
    saa, sbb = (da * da).sum(), (db * db).sum()
    if what == "corr":
        return (da * db).sum() / np.sqrt(saa * sbb) if saa > 1e-20 and sbb > 1e-20 else np.nan
    return (da * db).sum() / sbb if sbb > 1e-20 else np.nan


@pytest.mark.parametrize("name,what", [("rolling_cov", "cov"), ("rolling_corr", "corr"), ("rolling_beta", "beta")])
@pytest.mark.parametrize("size", [25, Window(span_ns=15 * SECOND)], ids=["rows", "interval"])
def test_pairs_against_two_pass(name, what, size):
    ts, y, x = data()
    got = run(name, [y, x], ts, size)
    ok = ~np.isnan(y) & ~np.isnan(x)
    want = np.full(len(ts), np.nan)
    for i, w in windows(ts, ok, size):
        if w is not None:
            want[i] = two_pass(y, x, w, what)
    assert (np.isnan(got) == np.isnan(want)).all()
    m = ~np.isnan(want)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-9, atol=1e-12)


def test_autocorr_matches_pairs_inside_the_window():
    ts, _, x = data(seed=3)
    r = np.diff(np.log(np.nan_to_num(x, nan=100.0)), prepend=np.nan)
    got = run("autocorr", [r], ts, 5, 60)
    ok = np.flatnonzero(~np.isnan(r))
    want = np.full(len(r), np.nan)
    for k in range(59, len(ok)):
        w = r[ok[k - 59: k + 1]]
        want[ok[k]] = np.corrcoef(w[5:], w[:-5])[0, 1]
    assert (np.isnan(got) == np.isnan(want)).all()
    m = ~np.isnan(want)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-9)


def test_autocorr_needs_n_above_lag():
    from cryptodb.udfs.kernel import KernelParamError

    with pytest.raises(KernelParamError, match="autocorr: parameter 'n'"):
        KERNELS["autocorr"].bind([10, 10], {})
