"""The contract every registered kernel keeps (KERNELS.md, "Conventions for every window kernel"):
splitting a partition into consecutive batches gives the same output as one pass; NULL input
leaves the state alone and gives NULL; no NaN ever comes out; bad parameters name the kernel."""

import numpy as np
import pytest
from cryptodb.udfs import registry
from cryptodb.udfs.kernel import REQUIRED, KernelParamError, Window
from hypothesis import given, settings
from hypothesis import strategies as st

KERNELS = registry.kernels()
SECOND = 1_000_000_000


def market(n: int, groups: int, seed: int):
    """Interleaved partitions of OHLC-like inputs with NULL gaps, flat stretches and ties in ts."""
    rng = np.random.default_rng(seed)
    gid = rng.integers(0, groups, n).astype(np.int64)
    ts = np.cumsum(rng.integers(0, 3, n)).astype(np.int64) * SECOND  # 0 steps make ties
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    close[n // 3: n // 3 + 12] = close[n // 3]
    high = close * (1 + rng.uniform(0, 0.01, n))
    low = close * (1 - rng.uniform(0, 0.01, n))
    cols = {"x": close, "p": close, "price": close, "close": close, "high": high, "low": low,
            "open": close * (1 + rng.normal(0, 0.002, n)), "r": rng.normal(0, 0.01, n),
            "volume": rng.uniform(0.1, 10, n), "v": rng.uniform(0.1, 10, n)}
    nulls = rng.random(n) < 0.05
    return gid, ts, cols, nulls


def inputs_for(spec, cols, nulls, n):
    out = []
    for i, name in enumerate(spec.inputs):
        base = cols.get(name)
        if base is None:  # any other input: a positive, varying series
            base = cols["volume"] * (1 + i) + np.arange(n) * 1e-3
        col = base.copy()
        col[nulls] = np.nan
        out.append(col)
    return out


def param_sets(spec) -> list[dict]:
    """Required windows get 20 rows and required numbers 5; kernels whose parameters depend on
    each other declare `examples`."""
    if spec.examples:
        return list(spec.examples)
    filled = {p.name: {"window": 20, "int": 5, "float": 0.5}.get(p.kind) for p in spec.params
              if p.default is REQUIRED}
    spec.bind([], filled)  # a kernel that fails here must declare examples
    return [filled]


def params_for(spec, interval: bool, example: dict):
    given = dict(example)
    for p in spec.params:
        if p.kind == "window" and interval:
            given[p.name] = Window(span_ns=7 * SECOND)
    return spec.bind([], given)


def one_pass(spec, params, cols, ts, gid, groups):
    state = spec.new_state(params, groups)
    return spec.run(state, cols, ts, gid, np.arange(len(gid)), params)


CASES = [(name, interval, i) for name, spec in KERNELS.items()
         for interval in ((False, True) if any(p.kind == "window" for p in spec.params) else (False,))
         for i in range(len(param_sets(spec)))]


@pytest.mark.parametrize("name,interval,example", CASES,
                         ids=[f"{n}{'-interval' if i else ''}{'-' + str(e) if e else ''}" for n, i, e in CASES])
@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, 599), max_size=6), seed=st.integers(0, 3))
def test_batches_equal_one_pass(name, interval, example, cuts, seed):
    spec = KERNELS[name]
    n, groups = 600, 3
    gid, ts, base, nulls = market(n, groups, seed)
    cols = inputs_for(spec, base, nulls, n)
    params = params_for(spec, interval, param_sets(spec)[example])
    whole = one_pass(spec, params, cols, ts, gid, groups)
    state = spec.new_state(params, groups)
    pieces = np.full_like(whole, np.nan)
    bounds = [0, *sorted(set(cuts)), n]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out = spec.run(state, cols, ts, gid, np.arange(lo, hi), params)
        pieces[lo:hi] = out[lo:hi]
    np.testing.assert_allclose(pieces, whole, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_null_rows_give_null_and_leave_state(name):
    spec = KERNELS[name]
    n, groups = 400, 2
    gid, ts, base, nulls = market(n, groups, 7)
    cols = inputs_for(spec, base, nulls, n)
    params = params_for(spec, False, param_sets(spec)[0])
    out = one_pass(spec, params, cols, ts, gid, groups)
    null_rows = np.zeros(n, bool)
    for c in cols:
        null_rows |= np.isnan(c)
    assert np.isnan(out[null_rows]).all(), "a NULL input row must give NULL"
    # Dropping the NULL rows changes nothing for the others: the state never saw them.
    keep = ~null_rows
    dense = one_pass(spec, params, [c[keep] for c in cols], ts[keep], gid[keep], groups)
    np.testing.assert_allclose(out[keep], dense, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_bad_parameters_name_the_kernel(name):
    spec = KERNELS[name]
    checked = [p for p in spec.params if p.kind == "window" or p.check]
    if not checked:
        pytest.skip("no checked parameters")
    p = checked[0]
    bad = -5 if p.kind in ("window", "int") else -5.0
    with pytest.raises(KernelParamError) as e:
        spec.bind([], {p.name: bad})
    assert name in str(e.value) and p.name in str(e.value)
    with pytest.raises(KernelParamError, match=name):
        spec.bind([], {"no_such_parameter": 1})


def test_every_kernel_is_documented():
    for name, spec in KERNELS.items():
        assert spec.doc.strip() and "\n" not in spec.doc, name
        assert spec.reference in ("T", "P", "L"), name
        assert spec.signature().startswith(f"{name}("), name
    for alias, (kernel, field) in registry.aliases().items():
        assert field in {o.name for o in KERNELS[kernel].outputs}, alias
