"""Golden references for the P and L window kernels (KERNELS.md): one table row per kernel call,
checked against an independent reference written here plainly (numpy/pandas two-pass formulas,
or the paper's formula), never against numbers taken from the kernels' own output.

Data: four interleaved partitions (one of them a single row), irregular timestamps with ties,
NULL gaps (each input its own), flat stretches, jumps, exact zeros and tied values. The
reference of a partition is computed over its rows where every input is non-NULL and re-aligned,
NULL at the skipped rows, exactly as the contract says a kernel must behave.
"""

import datetime
import math

import numpy as np
import pandas as pd
import pytest
from cryptodb.udfs import registry

SECOND = 1_000_000_000
SEVEN_S = datetime.timedelta(seconds=7)
GROUPS = 4  # partition 3 has a single row
RTOL = 1e-9


# -- data -------------------------------------------------------------------------------------------
def make_data(n: int = 2400, seed: int = 11):
    rng = np.random.default_rng(seed)
    gid = rng.integers(0, 3, n).astype(np.int64)
    gid[n // 2] = 3
    # Irregular steps (odd nanoseconds) with zero steps: ties in ts inside a partition. A partition
    # gets a row every ~0.9 s: ~8 rows in a 7 s window, ~65 in a 60 s one.
    steps = rng.choice([0, 50_000_001, 100_000_003, 250_000_007, 400_000_011, 1_000_000_013], n)
    ts = np.cumsum(steps).astype(np.int64) + 1_700_000_000 * SECOND
    cols = {k: np.empty(n) for k in ("price", "open", "high", "low", "r", "x", "tied", "bid", "ask",
                                     "bid_size", "ask_size", "volume", "signed_volume", "equity", "mostly_zero")}
    for g in range(GROUPS):
        idx = np.flatnonzero(gid == g)
        m = len(idx)
        steps = rng.normal(0, 0.002, m)
        steps[rng.random(m) < 0.01] += rng.choice([-0.04, 0.05], 1)  # jumps
        price = np.round(100 * (1 + g) * np.exp(np.cumsum(steps)), 2)
        flat = slice(m // 4, m // 4 + 30)
        price[flat] = price[m // 4]
        close = price
        open_ = close * (1 + rng.normal(0, 0.001, m))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, m))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, m))
        open_[flat] = high[flat] = low[flat] = close[flat]  # flat bars: every range term is 0
        r = rng.normal(0, 0.01, m)
        r[rng.random(m) < 0.01] = 0.08  # jumps
        r[m // 2: m // 2 + 30] = 0.0
        bid = np.round(price - 0.01 * rng.integers(0, 2, m), 2)
        ask = np.round(bid + 0.01 * rng.integers(1, 3, m), 2)
        volume = rng.uniform(0, 5, m)
        volume[rng.random(m) < 0.05] = 0.0
        volume[m // 3: m // 3 + 30] = 0.0  # windows with no volume at all
        signed = np.where(rng.random(m) < 0.5, -1, 1) * volume
        signed[2 * m // 3: 2 * m // 3 + 30] = 1.5  # a flat signed volume: var(q) = 0
        values = {"price": price, "open": open_, "high": high, "low": low, "r": r,
                  "x": 50 + 10 * np.cumsum(rng.normal(0, 0.1, m)) + np.where(np.arange(m) > m // 2, 3.0, 0.0),
                  "tied": np.round(rng.normal(0, 2, m)),  # many ties, also at the quantile
                  "bid": bid, "ask": ask, "bid_size": np.round(rng.uniform(0.1, 5, m), 1),
                  "ask_size": np.round(rng.uniform(0.1, 5, m), 1), "volume": volume, "signed_volume": signed,
                  "equity": 1000 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, m))),
                  "mostly_zero": np.round(rng.normal(0, 0.3, m))}  # ~90 % zeros: ties far past any tail
        for k, v in values.items():
            cols[k][idx] = v
    cols["dollar_volume"] = cols["price"] * cols["volume"]
    for k in cols:
        cols[k][rng.random(n) < 0.04] = np.nan  # each input its own NULLs
    gap = slice(n // 5, n // 5 + 12)  # a run of NULL rows
    for k in ("price", "r", "x", "bid", "equity", "high"):
        cols[k][gap] = np.nan
    return gid, ts, cols


GID, TS, COLS = make_data()


# -- windows ----------------------------------------------------------------------------------------
def window_starts(ts: np.ndarray, win) -> np.ndarray:
    """First row of each row's window; -1 while an INTEGER window is not full yet.
    INTEGER n: the last n rows; INTERVAL: rows with ts in (t - n, t]."""
    m = len(ts)
    if isinstance(win, int):
        lo = np.arange(m) - win + 1
        return np.where(lo >= 0, lo, -1)
    span = int(win.total_seconds() * SECOND)
    return np.searchsorted(ts, ts - span, side="right")


def rolling(fn, names, min_rows=1):
    """Reference of a window kernel: fn(*window slices) for each row's window."""
    def ref(d, ts, p):
        lo = window_starts(ts, p["n"])
        out = np.full(len(ts), np.nan)
        for i in range(len(ts)):
            if lo[i] >= 0 and i + 1 - lo[i] >= min_rows:
                out[i] = fn(*(d[k][lo[i]: i + 1] for k in names), **{k: v for k, v in p.items() if k != "n"})
        return out
    return ref


def on_defined(make_series, inner):
    """A window over a derived series that is NULL on some rows (ofi's e_t, Roll's price-change pairs):
    those rows are not window rows, as for any NULL input."""
    def ref(d, ts, p):
        derived = make_series(d)
        keep = ~np.any([np.isnan(v) for v in derived.values()], axis=0)
        out = np.full(len(ts), np.nan)
        out[keep] = inner({k: v[keep] for k, v in derived.items()}, ts[keep], p)
        return out
    return ref


# -- references, written from the definitions ----------------------------------------------------------
def var_ref(w, ddof=1):
    return np.var(w, ddof=ddof) if len(w) > ddof else np.nan


def zscore_ref(w):
    if np.ptp(w) == 0:
        return np.nan  # std = 0 exactly (a two-pass mean of equal values can be off by an ulp)
    return (w[-1] - w.mean()) / w.std()


def bipower_ref(w):
    a, c = np.abs(w), len(w)
    return math.pi / 2 * c / (c - 1) * np.sum(a[1:] * a[:-1]) if c >= 2 else np.nan


def medrv_ref(w):
    a, c = np.abs(w), len(w)
    if c < 3:
        return np.nan
    med = np.median(np.stack([a[:-2], a[1:-1], a[2:]]), axis=0)
    return math.pi / (6 - 4 * math.sqrt(3) + math.pi) * c / (c - 2) * np.sum(med ** 2)


def parkinson_ref(h, low):
    return math.sqrt(np.mean(np.log(h / low) ** 2) / (4 * math.log(2)))


def sqrt_or_null(m):
    return math.sqrt(m) if m >= 0 else np.nan


def garman_klass_ref(o, h, low, c):
    return sqrt_or_null(np.mean(0.5 * np.log(h / low) ** 2 - (2 * math.log(2) - 1) * np.log(c / o) ** 2))


def rogers_satchell_ref(o, h, low, c):
    return sqrt_or_null(np.mean(np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o)))


def vwap_window_ref(p, v):
    return np.sum(p * v) / np.sum(v) if np.any(v != 0) else np.nan


def amihud_ref(r, dv):
    traded = dv > 0
    return np.mean(np.abs(r[traded]) / dv[traded]) if traded.any() else np.nan


def kyle_ref(r, q):
    if len(r) < 2 or np.ptp(q) == 0:
        return np.nan
    c = np.cov(r, q)
    return c[0, 1] / c[1, 1]


def roll_ref(dp, lag):
    if len(dp) < 2:
        return np.nan
    c = np.cov(dp, lag)[0, 1]
    return 2 * math.sqrt(-c) if c < 0 else 0.0


def cvar_ref(w, alpha):
    return -w[w <= np.quantile(w, alpha)].mean()


def ofi_series(d):
    b, a, bs, az = d["bid"], d["ask"], d["bid_size"], d["ask_size"]
    e = np.full(len(b), np.nan)
    e[1:] = ((b[1:] >= b[:-1]) * bs[1:] - (b[1:] <= b[:-1]) * bs[:-1]
             - (a[1:] <= a[:-1]) * az[1:] + (a[1:] >= a[:-1]) * az[:-1])
    return {"e": e}


def roll_pairs(d):
    dp = np.full(len(d["price"]), np.nan)
    dp[1:] = np.diff(d["price"])
    lag = np.full_like(dp, np.nan)
    lag[1:] = dp[:-1]
    return {"dp": dp, "lag": lag}


def returns_ref(kind):
    def ref(d, ts, p):
        x = d["p"]
        out = np.full(len(x), np.nan)
        out[1:] = np.log(x[1:] / x[:-1]) if kind == "log" else x[1:] / x[:-1] - 1
        return out
    return ref


def ewma_ref(d, ts, p):
    x = d["x"]
    y = np.empty(len(x))
    for i in range(len(x)):
        if i == 0:
            y[i] = x[0]
            continue
        if p.get("halflife") is not None:
            dt = (ts[i] - ts[i - 1]) / p["halflife"].total_seconds() / SECOND
            a = 1 - math.exp(-math.log(2) * dt)
        else:
            a = p["alpha"]
        y[i] = a * x[i] + (1 - a) * y[i - 1]
    return y


def riskmetrics_ref(d, ts, p):
    r, lam = d["r"], p.get("lambda", 0.94)
    s2 = np.empty(len(r))
    for i in range(len(r)):
        s2[i] = r[i] ** 2 if i == 0 else lam * s2[i - 1] + (1 - lam) * r[i] ** 2
    return np.sqrt(s2)


def ofi_ref(d, ts, p):
    return ofi_series(d)["e"]


def trade_sign_ref(d, ts, p):
    x = d["price"]
    out = np.full(len(x), np.nan)
    sign = np.nan
    for i in range(1, len(x)):
        if x[i] != x[i - 1]:
            sign = 1.0 if x[i] > x[i - 1] else -1.0
        out[i] = sign
    return out


def vwap_expanding_ref(d, ts, p):
    pv, v = np.cumsum(d["price"] * d["volume"]), np.cumsum(d["volume"])
    nonzero = np.cumsum(d["volume"] != 0) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(nonzero, pv / v, np.nan)


def cusum_ref(d, ts, p):
    """Page's two-sided CUSUM written plainly; m = target or the two-pass mean of the previous values."""
    x, k, h, target = d["x"], p["k"], p["h"], p.get("target")
    out = np.full((len(x), 2), np.nan)
    sp = sn = 0.0
    for i in range(len(x)):
        if target is None and i == 0:
            continue
        m = target if target is not None else np.mean(x[:i])
        sp, sn = max(0.0, sp + x[i] - m - k), max(0.0, sn - (x[i] - m) - k)
        alarm = 1 if sp > h else -1 if sn > h else 0
        out[i] = max(sp, sn), alarm
        if alarm:
            sp = sn = 0.0
    return out


def drawdown_ref(d, ts, p):
    e = d["equity"]
    return e / np.maximum.accumulate(e) - 1


def max_drawdown_ref(d, ts, p):
    return np.minimum.accumulate(drawdown_ref(d, ts, p))


def expanding_ref(fn):
    def ref(d, ts, p):
        x = d["x"]
        return np.array([fn(x[: i + 1], **p) for i in range(len(x))])
    return ref


def std_ref(w, ddof=1):
    return math.sqrt(var_ref(w, ddof))


# -- the table ---------------------------------------------------------------------------------------
# (kernel, input columns in the kernel's order -> names the reference reads, params, reference, atol)
# atol is 0 unless a value can be ~0 by cancellation; each floor is justified where it is set.
VAR_FLAT_ATOL = 1e-20  # a flat window of prices ~1e2: two-pass deviations are off by ~1e-14, squared 1e-28
STD_FLAT_ATOL = 1e-12  # sqrt of the above residue, ~1e-14
ZSCORE_ATOL = 1e-11  # z ~ (x - mean)/sd: mean error ~1e-16*|x| ~ 1e-14 over sd >= ~0.01
SUM_SIGNED_ATOL = 1e-10  # ofi_sum: e_t ~ 10 summed over <= ~30 rows in a running sum: residue ~1e-13
KYLE_ATOL = 1e-12  # r ~ 1e-2 against q ~ 1: slopes ~1e-3, cov residue ~1e-18 / var(q) ~ 1
# Roll: 2 sqrt(-cov). A window whose covariance cancels to ~0 leaves a rounding residue of up to
# ~1e-14 (eps * sum of dp^2, dp ~ 0.1..1, ~20 pairs) in either code; its square root is up to ~2e-7.
# 1e-6 price units is 1/10000 of a tick.
ROLL_ATOL = 1e-6



CASES = []


def case(kernel, inputs, params, ref, atol=0.0, windows=(20, SEVEN_S)):
    """One table row per window kind (INTEGER rows and INTERVAL) when the kernel has a window."""
    if windows and any(p.kind == "window" for p in registry.kernels()[kernel].params) and "n" not in params:
        for w in windows:
            CASES.append((kernel, inputs, {**params, "n": w}, ref, atol))
    else:
        CASES.append((kernel, inputs, params, ref, atol))


# existing P kernels
case("rolling_mean", ("price",), {}, rolling(np.mean, ["price"]))
case("rolling_var", ("price",), {}, rolling(var_ref, ["price"]), VAR_FLAT_ATOL)
case("rolling_var", ("price",), {"ddof": 0}, rolling(var_ref, ["price"]), VAR_FLAT_ATOL)
case("rolling_std", ("price",), {}, rolling(std_ref, ["price"]), STD_FLAT_ATOL)
case("rolling_std", ("price",), {"ddof": 0}, rolling(std_ref, ["price"]), STD_FLAT_ATOL)
case("zscore", ("price",), {}, rolling(zscore_ref, ["price"]), ZSCORE_ATOL)
case("realized_var", ("r",), {}, rolling(lambda w: np.sum(w ** 2), ["r"]))
case("log_return", ("price",), {}, returns_ref("log"))
case("simple_return", ("price",), {}, returns_ref("simple"))
case("ewma", ("x",), {"alpha": 0.1}, ewma_ref)
case("ewma", ("x",), {"halflife": datetime.timedelta(seconds=5)}, ewma_ref)
# volatility
case("bipower_var", ("r",), {}, rolling(bipower_ref, ["r"]))
case("medrv", ("r",), {}, rolling(medrv_ref, ["r"]))
case("riskmetrics_vol", ("r",), {}, riskmetrics_ref)
case("riskmetrics_vol", ("r",), {"lambda": 0.8}, riskmetrics_ref)
case("parkinson", ("high", "low"), {}, rolling(parkinson_ref, ["high", "low"]))
case("garman_klass", ("open", "high", "low", "price"), {}, rolling(garman_klass_ref, ["open", "high", "low", "price"]))
case("rogers_satchell", ("open", "high", "low", "price"), {},
     rolling(rogers_satchell_ref, ["open", "high", "low", "price"]))
# microstructure
case("ofi", ("bid", "ask", "bid_size", "ask_size"), {}, ofi_ref, SUM_SIGNED_ATOL)
case("ofi_sum", ("bid", "ask", "bid_size", "ask_size"), {}, on_defined(ofi_series, rolling(np.sum, ["e"])),
     SUM_SIGNED_ATOL)
case("vwap", ("price", "volume"), {}, vwap_expanding_ref, windows=())
case("vwap", ("price", "volume"), {}, rolling(vwap_window_ref, ["price", "volume"]))
case("trade_sign", ("price",), {}, trade_sign_ref)
case("amihud", ("r", "dollar_volume"), {}, rolling(amihud_ref, ["r", "dollar_volume"]))
case("roll_spread", ("price",), {}, on_defined(roll_pairs, rolling(roll_ref, ["dp", "lag"])), ROLL_ATOL)
case("kyle_lambda", ("r", "signed_volume"), {}, rolling(kyle_ref, ["r", "signed_volume"]), KYLE_ATOL)
# risk
case("cusum", ("x",), {"k": 0.5, "h": 4.0}, cusum_ref)
case("cusum", ("x",), {"k": 0.2, "h": 3.0, "target": 50.0}, cusum_ref)
case("historical_var", ("r",), {"alpha": 0.05, "n": 60}, rolling(lambda w, alpha: -np.quantile(w, alpha), ["r"]))
case("historical_var", ("r",), {"alpha": 0.05, "n": SEVEN_S}, rolling(lambda w, alpha: -np.quantile(w, alpha), ["r"]))
case("historical_cvar", ("r",), {"alpha": 0.05, "n": 60}, rolling(cvar_ref, ["r"]))
case("historical_cvar", ("r",), {"alpha": 0.1, "n": SEVEN_S}, rolling(cvar_ref, ["r"]))
case("historical_cvar", ("tied",), {"alpha": 0.25, "n": 40}, rolling(cvar_ref, ["tied"]))
case("historical_cvar", ("tied",), {"alpha": 0.3, "n": SEVEN_S}, rolling(cvar_ref, ["tied"]))
# Windows much longer than the tail the quantile reads: only part of each window is kept sorted.
case("historical_var", ("r",), {"alpha": 0.05, "n": 250}, rolling(lambda w, alpha: -np.quantile(w, alpha), ["r"]))
case("historical_var", ("price",), {"alpha": 0.05, "n": 250},  # trending: the low tail keeps leaving
     rolling(lambda w, alpha: -np.quantile(w, alpha), ["price"]))
case("historical_cvar", ("r",), {"alpha": 0.05, "n": 250}, rolling(cvar_ref, ["r"]))
case("historical_cvar", ("mostly_zero",), {"alpha": 0.1, "n": 200}, rolling(cvar_ref, ["mostly_zero"]))
# 60 s windows hold ~65 rows: the INTERVAL buffers grow past their initial 16 slots mid-run.
SIXTY_S = datetime.timedelta(seconds=60)
case("historical_cvar", ("r",), {"alpha": 0.05, "n": SIXTY_S}, rolling(cvar_ref, ["r"]))
case("rolling_median", ("tied",), {"n": SIXTY_S}, rolling(np.median, ["tied"]))
case("bipower_var", ("r",), {"n": SIXTY_S}, rolling(bipower_ref, ["r"]))
case("kyle_lambda", ("r", "signed_volume"), {"n": SIXTY_S}, rolling(kyle_ref, ["r", "signed_volume"]), KYLE_ATOL)
case("vwap", ("price", "volume"), {"n": SIXTY_S}, rolling(vwap_window_ref, ["price", "volume"]))
case("rolling_quantile", ("x",), {"q": 0.37}, rolling(lambda w, q: np.quantile(w, q), ["x"]))
case("rolling_quantile", ("tied",), {"q": 0.9}, rolling(lambda w, q: np.quantile(w, q), ["tied"]))
case("rolling_median", ("x",), {}, rolling(np.median, ["x"]))
case("rolling_median", ("tied",), {}, rolling(np.median, ["tied"]))
case("drawdown", ("equity",), {}, drawdown_ref)
case("max_drawdown", ("equity",), {}, max_drawdown_ref)
case("expanding_mean", ("x",), {}, expanding_ref(np.mean))
case("expanding_var", ("x",), {}, expanding_ref(var_ref))
case("expanding_var", ("x",), {"ddof": 0}, expanding_ref(var_ref))
case("expanding_std", ("x",), {}, expanding_ref(std_ref))


def case_id(c):
    kernel, inputs, params, _, _ = c
    shown = ",".join(f"{k}={v.total_seconds():g}s" if isinstance(v, datetime.timedelta) else f"{k}={v}"
                     for k, v in params.items())
    return f"{kernel}({','.join(inputs)}{';' + shown if shown else ''})"


def expected_output(spec, inputs, params, ref):
    """The reference per partition over its rows with every input non-NULL, re-aligned."""
    names = list(spec.inputs)
    out = np.full((len(GID), len(spec.outputs)), np.nan)
    for g in range(GROUPS):
        idx = np.flatnonzero(GID == g)
        idx = idx[~np.any([np.isnan(COLS[c][idx]) for c in inputs], axis=0)]
        dense = {}
        for name, col in zip(names, inputs):
            dense[name] = dense[col] = COLS[col][idx]
        if len(idx):
            out[idx] = np.asarray(ref(dense, TS[idx], params), dtype=float).reshape(len(idx), -1)
    return out


@pytest.mark.parametrize("kernel,inputs,params,ref,atol", CASES, ids=[case_id(c) for c in CASES])
def test_kernel_matches_reference(kernel, inputs, params, ref, atol):
    spec = registry.kernels()[kernel]
    bound = spec.bind([], params)
    got = spec.run(spec.new_state(bound, GROUPS), [COLS[c] for c in inputs], TS, GID, np.arange(len(GID)), bound)
    want = expected_output(spec, inputs, params, ref)
    differ = np.flatnonzero(np.isnan(got).any(axis=1) != np.isnan(want).any(axis=1))
    assert len(differ) == 0, f"NULL rows differ at rows {differ[:10]}"
    assert (~np.isnan(want)).sum() > 0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, equal_nan=True)


def test_interval_windows_are_pandas_time_windows():
    """The reference's INTERVAL window is pandas' rolling('7s') on a DatetimeIndex: (t - 7 s, t]."""
    idx = np.flatnonzero(GID == 0)
    ts = TS[idx]
    counts = pd.Series(1.0, index=pd.DatetimeIndex(ts)).rolling("7s").count().to_numpy()
    np.testing.assert_array_equal(np.arange(len(ts)) + 1 - window_starts(ts, SEVEN_S), counts)


def test_table_covers_the_new_kernels():
    covered = {c[0] for c in CASES}
    for module in ("volatility", "microstructure", "risk"):
        for name, spec in registry.kernels().items():
            if spec.step.__module__.endswith(module) or spec.state.__module__.endswith(module):
                assert name in covered, name


@pytest.mark.parametrize("kernel,params", [
    ("historical_cvar", {"alpha": 0.1}), ("rolling_quantile", {"q": 0.25}), ("vwap", {}), ("bipower_var", {})])
def test_grown_windows_survive_save_and_restore(kernel, params):
    """State saved mid-run (rings unrolled, sorted windows with them) and restored into a fresh state
    of another capacity continues exactly as one pass: the sorted window is rebuilt when stale."""
    from cryptodb.udfs.state import assemble, extract

    spec = registry.kernels()[kernel]
    cols = [COLS[c] for c in (("price", "volume") if kernel == "vwap" else ("r",))]
    given = {**params, "n": datetime.timedelta(seconds=60)} if kernel != "vwap" or params else {}
    bound = spec.bind([], given)
    rows = np.arange(len(GID))
    whole = spec.run(spec.new_state(bound, GROUPS), cols, TS, GID, rows, bound)
    cut = len(GID) // 2 + 7
    first = spec.new_state(bound, GROUPS)
    got = spec.run(first, cols, TS, GID, rows[:cut], bound)
    second = assemble(spec, bound, [extract(spec, first, g) for g in range(GROUPS)])
    got[cut:] = spec.run(second, cols, TS, GID, rows[cut:], bound)[cut:]
    np.testing.assert_array_equal(got, whole)


def test_tail_of_windows_holding_infinities_matches_numpy():
    """A window holding both infinities has a NaN quantile: VaR and CVaR are NULL there (CVaR
    averages no value; it used to divide by zero), and elsewhere they equal numpy's."""
    x = np.array([1.0, np.inf, -np.inf, 2.0, -np.inf, 3.0, 0.5])
    ts = np.arange(len(x), dtype=np.int64)
    gid = np.zeros(len(x), np.int64)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):  # numpy: mean of an empty slice
        windows = [x[max(0, i - 1): i + 1] for i in range(len(x))]
        var_ref = [-np.quantile(w, 0.5) if len(w) == 2 else np.nan for w in windows]
        cvar_ref_ = [cvar_ref(w, 0.5) if len(w) == 2 else np.nan for w in windows]
    for name, ref in (("historical_var", var_ref), ("historical_cvar", cvar_ref_)):
        spec = registry.kernels()[name]
        bound = spec.bind([], {"alpha": 0.5, "n": 2})
        out = spec.run(spec.new_state(bound, 1), [x], ts, gid, np.arange(len(x)), bound)[:, 0]
        np.testing.assert_array_equal(out, ref, err_msg=name)


def test_cusum_alarms_fire_and_reset():
    """The data has a level shift: both a computed alarm and the reset after it are exercised."""
    spec = registry.kernels()["cusum"]
    bound = spec.bind([], {"k": 0.5, "h": 4.0})
    out = spec.run(spec.new_state(bound, GROUPS), [COLS["x"]], TS, GID, np.arange(len(GID)), bound)
    alarms = out[:, 1][~np.isnan(out[:, 1])]
    assert (alarms != 0).sum() >= 3


# -- accuracy over 10M rows ----------------------------------------------------------------------------
def two_pass_windows(x: np.ndarray, n: int, chunk: int = 200_000):
    """Mean and M2 of every full n-row window, two-pass, in chunks (memory)."""
    from numpy.lib.stride_tricks import sliding_window_view

    means = np.empty(len(x) - n + 1)
    m2 = np.empty_like(means)
    windows = sliding_window_view(x, n)
    for lo in range(0, len(windows), chunk):
        w = windows[lo: lo + chunk]
        mu = w.mean(axis=1)
        d = w - mu[:, None]
        means[lo: lo + chunk] = mu
        m2[lo: lo + chunk] = np.einsum("ij,ij->i", d, d)
    return means, m2


@pytest.mark.slow
@pytest.mark.parametrize("level,tick", [
    pytest.param(100.0, 0.01, id="price-100-cent-moves"),
    # mean/sd ~1e5: running moments that sit on the price level lose ~2e-9 here.
    pytest.param(60_000.0, 0.5, id="btc-60000-half-dollar-moves"),
])
def test_rolling_var_and_zscore_stay_accurate_over_10m_rows(level, tick):
    """10M rows in one partition, cent-rounded prices: rolling_var and zscore within 1e-9 relative of a
    two-pass reference at every row."""
    n_rows, n = 10_000_000, 50
    rng = np.random.default_rng(5)
    x = np.round(level + np.cumsum(rng.normal(0, tick, n_rows)), 2)
    gid = np.zeros(n_rows, np.int64)
    ts = np.arange(n_rows, dtype=np.int64)
    rows = np.arange(n_rows, dtype=np.int64)
    means, m2 = two_pass_windows(x, n)
    for name in ("rolling_var", "zscore"):
        spec = registry.kernels()[name]
        bound = spec.bind([n], {})
        got = spec.run(spec.new_state(bound, 1), [x], ts, gid, rows, bound)[n - 1:, 0]
        if name == "rolling_var":
            np.testing.assert_allclose(got, m2 / (n - 1), rtol=1e-9, atol=0)
        else:
            flat = m2 == 0
            want = np.where(flat, np.nan, (x[n - 1:] - means) / np.sqrt(np.where(flat, 1.0, m2 / n)))
            # z is O(1): an absolute 1e-9 is 1e-9 relative to the unit of z (one standard deviation).
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)
