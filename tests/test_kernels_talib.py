"""Golden table: every TA-Lib-equal ("T") kernel against TA-Lib itself, the rolling extremes against
pandas, and every STRUCT kernel's field aliases against its fields through SQL.

Adding a T kernel is adding one `Golden` row (a test fails until every registered T kernel has one).

Reference rule (KERNELS.md): on data with NULLs a kernel equals TA-Lib run over each partition's
complete rows (every input non-NULL), re-aligned with NULL at the skipped rows. Tolerance: relative
error <= 1e-6 on a partition's first 5 outputs, <= 1e-9 after, and the same NULL positions.

Two generated markets: "mixed" (interleaved partitions at 1e5 / 2500 / 0.35 / 40 with jumps, flat
stretches, zero volume, NULL gaps, NULLs in single inputs, ties in ts, and a one-row partition) and
"scales" (quotes at 1e-6 and 1e9 with long flat stretches, where zero guards show their scale).
A known divergence of an existing kernel is a strict xfail on its row, with the reason.

VAR / STDDEV / BBANDS are the documented exception: TA-Lib's own rounding error can exceed 1e-9
relative, so they are compared with TA-Lib within a bound on *TA-Lib's* error (derived below, from
the algorithm the installed TA-Lib 0.8 runs) and with an exact two-pass reference at 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from cryptodb.udfs import registry
from cryptodb.udfs.kernel import REQUIRED, Window

talib = pytest.importorskip("talib")

KERNELS = registry.kernels()
U = np.finfo(float).eps / 2  # unit roundoff: |fl(a op b) - (a op b)| <= U * |fl(a op b)|
SECOND = 1_000_000_000
COLUMN = {"x": "close"}  # kernel input name -> column of the generated market, when they differ


@dataclass(frozen=True)
class Golden:
    """One kernel call and the TA-Lib call it must equal (outputs in the same order)."""

    kernel: str
    talib: str
    params: dict = field(default_factory=dict)  # the kernel's parameters; empty = its defaults
    ta: dict = field(default_factory=dict)  # the same call's TA-Lib keyword arguments
    rounding: str = ""  # "var" / "stddev" / "bbands": TA-Lib's own error is bounded, see below
    xfail: dict = field(default_factory=dict)  # market -> reason: a known divergence (strict: fails once fixed)

    @property
    def id(self) -> str:
        return self.kernel + ("-" + "-".join(f"{k}{v}" for k, v in self.params.items()) if self.params else "")


GOLDEN = [
    Golden("sma", "SMA", {}, {"timeperiod": 30}),
    Golden("sma", "SMA", {"n": 5}, {"timeperiod": 5}),
    Golden("wma", "WMA", {}, {"timeperiod": 30}),
    Golden("wma", "WMA", {"n": 4}, {"timeperiod": 4}),
    Golden("ema", "EMA", {}, {"timeperiod": 30}),
    Golden("ema", "EMA", {"n": 3}, {"timeperiod": 3}),
    Golden("dema", "DEMA", {}, {"timeperiod": 30}),
    Golden("dema", "DEMA", {"n": 5}, {"timeperiod": 5}),
    Golden("tema", "TEMA", {}, {"timeperiod": 30}),
    Golden("tema", "TEMA", {"n": 4}, {"timeperiod": 4}),
    Golden("kama", "KAMA", {}, {"timeperiod": 30}),
    Golden("kama", "KAMA", {"n": 2}, {"timeperiod": 2}),
    Golden("kama", "KAMA", {"n": 1}, {"timeperiod": 1}),
    Golden("rsi", "RSI", {}, {"timeperiod": 14}),
    Golden("rsi", "RSI", {"n": 2}, {"timeperiod": 2}),
    Golden("macd", "MACD", {}, {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    Golden("macd", "MACD", {"fast": 9, "slow": 4, "signal": 3}, {"fastperiod": 9, "slowperiod": 4, "signalperiod": 3}),
    Golden("bbands", "BBANDS", {}, {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0}, rounding="bbands"),
    Golden("bbands", "BBANDS", {"n": 5, "nbdevup": 1.5, "nbdevdn": 2.5},
           {"timeperiod": 5, "nbdevup": 1.5, "nbdevdn": 2.5}, rounding="bbands"),
    Golden("stddev", "STDDEV", {}, {"timeperiod": 5, "nbdev": 1.0}, rounding="stddev"),
    Golden("stddev", "STDDEV", {"n": 20, "nbdev": 2.0}, {"timeperiod": 20, "nbdev": 2.0}, rounding="stddev"),
    Golden("var", "VAR", {}, {"timeperiod": 5}, rounding="var"),
    Golden("var", "VAR", {"n": 30}, {"timeperiod": 30}, rounding="var"),
    Golden("trange", "TRANGE"),
    Golden("atr", "ATR", {}, {"timeperiod": 14}),
    Golden("atr", "ATR", {"n": 1}, {"timeperiod": 1}),
    Golden("atr", "ATR", {"n": 2}, {"timeperiod": 2}),
    Golden("natr", "NATR", {}, {"timeperiod": 14}),
    Golden("natr", "NATR", {"n": 1}, {"timeperiod": 1}),
    Golden("stoch", "STOCH", {}, {"fastk_period": 5, "slowk_period": 3, "slowk_matype": 0, "slowd_period": 3,
                                  "slowd_matype": 0}),
    Golden("stoch", "STOCH", {"fastk": 14, "slowk": 1, "slowd": 4},
           {"fastk_period": 14, "slowk_period": 1, "slowk_matype": 0, "slowd_period": 4, "slowd_matype": 0}),
    Golden("willr", "WILLR", {}, {"timeperiod": 14}),
    Golden("willr", "WILLR", {"n": 2}, {"timeperiod": 2}),
    Golden("cci", "CCI", {}, {"timeperiod": 14}),
    Golden("cci", "CCI", {"n": 40}, {"timeperiod": 40}),
    Golden("adx", "ADX", {}, {"timeperiod": 14}),
    Golden("adx", "ADX", {"n": 2}, {"timeperiod": 2}),
    Golden("mom", "MOM", {}, {"timeperiod": 10}),
    Golden("mom", "MOM", {"n": 1}, {"timeperiod": 1}),
    Golden("roc", "ROC", {}, {"timeperiod": 10}),
    Golden("obv", "OBV"),
    Golden("mfi", "MFI", {}, {"timeperiod": 14}),
    Golden("mfi", "MFI", {"n": 2}, {"timeperiod": 2}),
    Golden("aroon", "AROON", {}, {"timeperiod": 14}),
    Golden("aroon", "AROON", {"n": 2}, {"timeperiod": 2}),
]

# (kernel, parameters): rolling extremes against pandas, by rows and by time.
PANDAS = [
    ("rolling_min", 20), ("rolling_max", 20), ("rolling_max", 1), ("donchian", 20), ("donchian", 2),
    ("rolling_min", Window(span_ns=7 * SECOND)), ("rolling_max", Window(span_ns=7 * SECOND)),
    ("donchian", Window(span_ns=30 * SECOND)), ("rolling_max", Window(span_ns=1)),
]

# -- the data ----------------------------------------------------------------------------------------
# Partitions: (rows, price level, per-row volatility, length of the two flat stretches).
MARKETS = {
    "mixed": ((1500, 1e5, 1e-3, 45),  # BTC-like: the level at which running sums of squares lose digits
              (1200, 2500.0, 2e-3, 45),
              (900, 0.35, 5e-3, 45),  # a small quote
              (600, 40.0, 1e-2, 45),
              (1, 100.0, 0.0, 0)),  # a one-row partition
    # Quotes far from 1 with long flat stretches: Wilder sums decay towards 0 there, which is where
    # a fixed zero band (instead of TA-Lib 0.8's exact or scale-relative tests) gives itself away.
    "scales": ((800, 1e-6, 1e-3, 300),
               (800, 1e9, 1e-3, 300),
               (300, 3e-3, 2e-2, 120)),
}


def _partition(rng, rows: int, level: float, vol: float, flat_rows: int) -> dict[str, np.ndarray]:
    steps = rng.normal(0.0, vol, rows)
    for at in rng.integers(0, rows, 2 if rows > 100 else 0):  # jumps of 5-10 %
        steps[at] += rng.choice([-1, 1]) * rng.uniform(0.05, 0.10)
    close = level * np.exp(np.cumsum(steps))
    high = close * (1 + rng.uniform(0, 2 * vol, rows))
    low = close * (1 - rng.uniform(0, 2 * vol, rows))
    volume = rng.uniform(0.1, 10.0, rows)
    if rows > 100:
        first = rng.integers(40, rows // 2 - flat_rows // 2 - 20)
        for i, at in enumerate((first, rows // 2 + 20)):
            flat = slice(at, at + flat_rows)  # machine-flat windows: high = low = close
            close[flat] = high[flat] = low[flat] = close[at]
            if i == 0:
                volume[flat] = 0.0  # no money flow at all (MFI)
        gap = slice(rows // 2, rows // 2 + 12)
        close[gap] = high[gap] = low[gap] = volume[gap] = np.nan  # a gap of NULL rows
    cols = {"close": close, "high": high, "low": low, "volume": volume}
    for name in cols:  # scattered NULLs in single inputs: multi-input kernels skip those rows whole
        cols[name][(rng.random(rows) < 0.03) & (np.arange(rows) > 0)] = np.nan
    return cols


@dataclass
class Market:
    """Interleaved partitions (each keeps its own row order); ts ascending, with ties."""

    name: str
    gid: np.ndarray
    ts: np.ndarray
    cols: dict[str, np.ndarray]
    groups: int

    @classmethod
    def make(cls, name: str, seed: int = 20260101) -> Market:
        spec = MARKETS[name]
        rng = np.random.default_rng(seed)
        labels = np.repeat(np.arange(len(spec)), [p[0] for p in spec])
        rng.shuffle(labels)
        cols = {c: np.empty(len(labels)) for c in ("close", "high", "low", "volume")}
        for g, partition in enumerate(spec):
            for c, values in _partition(rng, *partition).items():
                cols[c][labels == g] = values
        ts = np.cumsum(rng.integers(0, 3, len(labels))).astype(np.int64) * SECOND
        return cls(name, labels.astype(np.int64), ts, cols, len(spec))

    def run(self, kernel: str, params: dict) -> np.ndarray:
        spec = KERNELS[kernel]
        bound = spec.bind([], params)
        state = spec.new_state(bound, self.groups)
        return spec.run(state, [self.cols[c] for c in _columns(spec.inputs)], self.ts, self.gid,
                        np.arange(len(self.gid)), bound)

    def partitions(self, inputs: list[str]):
        """(partition rows in order, the complete ones among them) for each partition."""
        complete = np.ones(len(self.gid), bool)
        for c in inputs:
            complete &= ~np.isnan(self.cols[c])
        for g in range(self.groups):
            rows = np.flatnonzero(self.gid == g)
            yield rows, rows[complete[rows]]

    def output_rank(self, values: np.ndarray) -> np.ndarray:
        """For each row, how many non-NULL outputs its partition gave before it (-1 at NULL rows)."""
        rank = np.full(len(values), -1)
        for g in range(self.groups):
            rows = np.flatnonzero(self.gid == g)
            seen = ~np.isnan(values[rows])
            rank[rows[seen]] = np.arange(seen.sum())
        return rank


MARKET = {name: Market.make(name) for name in MARKETS}


def _columns(names) -> list[str]:
    return [COLUMN.get(n, n) for n in names]


def talib_reference(market: Market, case: Golden, outputs: int) -> np.ndarray:
    ref = np.full((len(market.gid), outputs), np.nan)
    inputs = _columns(KERNELS[case.kernel].inputs)
    for _, dense in market.partitions(inputs):
        if len(dense) == 0:
            continue
        res = getattr(talib, case.talib)(*(market.cols[c][dense] for c in inputs), **case.ta)
        res = res if isinstance(res, tuple) else (res,)
        assert len(res) == outputs, f"{case.talib} returns {len(res)} outputs, {case.kernel} has {outputs}"
        for j, column in enumerate(res):
            ref[dense, j] = column
    return ref


def assert_close(market: Market, what: str, ours, ref, allowed):
    """Same NULL positions, and |ours - ref| <= allowed everywhere else (message names the worst row)."""
    null_ours, null_ref = np.isnan(ours), np.isnan(ref)
    bad = np.flatnonzero(null_ours != null_ref)
    assert not len(bad), (f"{what}: NULL positions differ first at row {bad[0]} (partition "
                          f"{market.gid[bad[0]]}): ours {ours[bad[0]]!r}, reference {ref[bad[0]]!r}")
    m = ~null_ref
    err = np.abs(ours[m] - ref[m])
    allowed = np.broadcast_to(np.asarray(allowed, float), ref.shape)[m]
    assert not np.isnan(allowed).any(), f"{what}: no tolerance for some rows (test bug)"
    over = err > allowed
    if over.any():
        i = np.flatnonzero(m)[np.argmax(np.where(over, err / np.maximum(np.abs(ref[m]), 1e-300), -1))]
        raise AssertionError(
            f"{what}: {over.sum()} value(s) outside tolerance; worst at row {i} (partition "
            f"{market.gid[i]}): ours {ours[i]!r}, reference {ref[i]!r}, "
            f"relative error {abs(ours[i] - ref[i]) / max(abs(ref[i]), 1e-300):.3g}")


def contract_tolerance(market: Market, ref_column: np.ndarray) -> np.ndarray:
    """KERNELS.md: 1e-6 relative on a partition's first 5 outputs, 1e-9 after."""
    rel = np.where(market.output_rank(ref_column) < 5, 1e-6, 1e-9)
    return rel * np.abs(ref_column)


# -- TA-Lib's own rounding in VAR / STDDEV / BBANDS ------------------------------------------------------
# TA-Lib 0.8 (var.c, shared by STDDEV and the SMA path of BBANDS) keeps running sums T1 = sum(d),
# T2 = sum(d^2) of the deviations d = fl(x - shift) from a shift, and returns T2/n - (T1/n)^2. The shift
# is re-anchored (a fresh two-pass over the window) when cancellation is detected and at least every
# K = 32n rows, so the sums at row t hold only rows in (t - K - n, t], and so does the shift. With
# R(t) = max - min of x over those rows, every |d| <= R and every partial sum |T2| <= (n+1) R^2,
# |T1| <= (n+1) R. Each of the <= 2K + 2n additions since the last re-anchoring errs by <= U |partial|:
#     |dT2| / n        <= U (2K+2n)(n+1) R^2 / n = 66 U (n+1) R^2
#     2|T1/n| |dT1|/n  <= 132 U (n+1) R^2
# plus O(U R^2) for the squares still in the window, the products by fl(1/n), the final square and
# subtraction and the rounding of d (<= 16 U R^2 together), U |var| for the result, and the re-anchor's
# flat-window floor (a variance < 1e-12 T2/n is returned as 0):
#     |VAR_talib - var| <= U R^2 (198 (n+1) + 16) + 1e-12 R^2 + U |var|.
# This grows with n R^2, not with |var|: on a 1e5 price with 1e-3 moves it is ~1e-10 to 1e-9
# relative in calm stretches, and far above 1e-9 relative in a near-flat window. (A bound of the form
# C eps n mean(x^2) would hold for the plain running sums of x and x^2 of older TA-Lib releases only
# over windows, not over a long series: those sums are never re-anchored, so their error grows with
# the number of rows since the first, ~eps * rows * n * mean(x^2).)
# STDDEV = nbdev * sqrt(VAR):  |sqrt(a) - sqrt(b)| = |a - b| / (sqrt(a) + sqrt(b)) <= sqrt(|a - b|).
# BBANDS' middle band is TA-Lib's SMA, a running sum over the whole partition (never re-anchored):
#     |mid_talib - mid| <= U sum_{j <= t} 2 P(j) / n + U |mid|,  P(j) = sum of |x| over rows j-n..j,
# and a band mid +- k sd adds k |d sd| + U k sd + U |band|.
def _rolling(values: np.ndarray, rows: int, how: str) -> np.ndarray:
    return getattr(pd.Series(values).rolling(rows, min_periods=1), how)().to_numpy()


def _two_pass(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact-enough window mean and population variance (long double two-pass), NaN before row n-1."""
    mean = np.full(len(x), np.nan)
    var = np.full(len(x), np.nan)
    if len(x) >= n:
        w = np.lib.stride_tricks.sliding_window_view(x.astype(np.longdouble), n)
        mu = w.mean(axis=1)
        mean[n - 1:] = mu
        var[n - 1:] = ((w - mu[:, None]) ** 2).mean(axis=1)
    return mean, var


def _var_bound(x: np.ndarray, n: int, var: np.ndarray) -> np.ndarray:
    span = 32 * n + n + 1
    r = _rolling(x, span, "max") - _rolling(x, span, "min")
    return U * r * r * (198 * (n + 1) + 16) + 1e-12 * r * r + U * np.abs(var)


def _sd_bound(var_bound: np.ndarray, sd_talib: np.ndarray, sd_true: np.ndarray) -> np.ndarray:
    denominator = sd_talib + sd_true
    by_ratio = np.divide(var_bound, denominator, out=np.full_like(var_bound, np.inf), where=denominator > 0)
    return np.minimum(np.sqrt(var_bound), by_ratio) + 2 * U * np.abs(sd_talib)


def rounding_references(market: Market, case: Golden, ta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exact two-pass reference, bound on |TA-Lib - exact|), shaped like the kernel's output."""
    n = case.ta["timeperiod"]
    exact = np.full(ta.shape, np.nan)
    bound = np.full(ta.shape, np.nan)
    for _, dense in market.partitions(["close"]):
        if len(dense) == 0:
            continue
        x = market.cols["close"][dense]
        mean, var = _two_pass(x, n)
        vb = _var_bound(x, n, var)
        if case.rounding == "var":
            exact[dense, 0], bound[dense, 0] = var, vb
        elif case.rounding == "stddev":
            k = case.ta["nbdev"]
            sd = np.sqrt(var)
            exact[dense, 0] = k * sd
            bound[dense, 0] = k * _sd_bound(vb, ta[dense, 0] / k, sd)
        else:
            sd = np.sqrt(var)
            sd_ta = (ta[dense, 0] - ta[dense, 2]) / (case.ta["nbdevup"] + case.ta["nbdevdn"])
            sd_b = _sd_bound(vb, np.abs(sd_ta), sd)
            partial = _rolling(np.abs(x), n + 1, "sum")
            mid_b = U * 2 * np.cumsum(partial) / n + U * np.abs(mean)
            for j, k in ((0, case.ta["nbdevup"]), (2, -case.ta["nbdevdn"])):
                exact[dense, j] = mean + k * sd
                bound[dense, j] = mid_b + abs(k) * (sd_b + U * sd) + U * np.abs(exact[dense, j])
            exact[dense, 1], bound[dense, 1] = mean, mid_b
    return exact, bound


# -- tests ---------------------------------------------------------------------------------------------
def test_every_talib_kernel_has_a_golden_row():
    t_kernels = {name for name, spec in KERNELS.items() if spec.reference == "T"}
    covered = {case.kernel for case in GOLDEN}
    assert t_kernels <= covered, f"add Golden rows for {sorted(t_kernels - covered)}"
    assert covered <= t_kernels, f"not T kernels: {sorted(covered - t_kernels)}"


def _golden_params():
    for case in GOLDEN:
        for market in MARKETS:
            reason = case.xfail.get(market)
            yield pytest.param(case, market, id=f"{case.id}-{market}",
                               marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


@pytest.mark.parametrize("case,market_name", list(_golden_params()))
def test_equals_talib(case: Golden, market_name: str):
    market = MARKET[market_name]
    spec = KERNELS[case.kernel]
    ours = market.run(case.kernel, case.params)
    ref = talib_reference(market, case, len(spec.outputs))
    if case.rounding:
        exact, bound = rounding_references(market, case, ref)
    for j, out in enumerate(spec.outputs):
        what = f"{case.id}.{out.name} ({market_name})"
        if not case.rounding:
            assert_close(market, what, ours[:, j], ref[:, j], contract_tolerance(market, ref[:, j]))
            continue
        # TA-Lib within our 1e-9 plus TA-Lib's own (bounded) rounding; the exact value within 1e-9.
        slack = 1e-9 * (np.abs(ref[:, j]) + bound[:, j]) + bound[:, j]
        assert_close(market, what, ours[:, j], ref[:, j], slack)
        assert_close(market, what + " vs two-pass", ours[:, j], exact[:, j], 1e-9 * np.abs(exact[:, j]))


@pytest.mark.parametrize("market_name", MARKETS)
def test_the_data_exercises_the_edges(market_name):
    """The series hold what the golden rows are meant to see: NULLs, flats, zero volume, ties, interleaving."""
    market = MARKET[market_name]
    cols = market.cols
    assert np.isnan(cols["close"]).sum() > 30 and np.isnan(cols["high"]).sum() > 30
    flat = (cols["high"] == cols["low"]) & (np.roll(cols["close"], 1) == cols["close"])
    assert flat.sum() > 50
    assert (cols["volume"] == 0).sum() > 30
    assert len(np.unique(market.gid[:50])) > 2 and (np.diff(market.ts) == 0).any()
    assert market_name != "mixed" or (np.bincount(market.gid) == 1).any()  # a one-row partition


def _window_label(n) -> str:
    if not isinstance(n, Window):
        return str(n)
    return f"{n.span_ns // SECOND}s" if n.span_ns >= SECOND else f"{n.span_ns}ns"


@pytest.mark.parametrize("name,n", PANDAS, ids=[f"{k}-{_window_label(n)}" for k, n in PANDAS])
def test_extremes_equal_pandas(name, n):
    """pandas' rolling over each partition's complete rows: INTEGER windows NULL until full; time
    windows (t - n, t] on a DatetimeIndex, a value from the first row on (ties in ts included)."""
    market = MARKET["mixed"]
    spec = KERNELS[name]
    inputs = _columns(spec.inputs)
    ours = market.run(name, {"n": n})
    ref = np.full_like(ours, np.nan)
    for _, dense in market.partitions(inputs):
        if len(dense) == 0:
            continue
        index = pd.to_datetime(market.ts[dense])
        series = [pd.Series(market.cols[c][dense], index=index) for c in inputs]
        roll = [s.rolling(pd.Timedelta(n.span_ns, "ns")) if isinstance(n, Window) else s.rolling(n, min_periods=n)
                for s in series]
        if name == "rolling_min":
            ref[dense, 0] = roll[0].min().to_numpy()
        elif name == "rolling_max":
            ref[dense, 0] = roll[0].max().to_numpy()
        else:
            upper, lower = roll[0].max().to_numpy(), roll[1].min().to_numpy()
            ref[dense, 0], ref[dense, 1], ref[dense, 2] = upper, lower, (upper + lower) / 2.0
    for j, out in enumerate(spec.outputs):
        assert_close(market, f"{name}.{out.name}", ours[:, j], ref[:, j], 0.0)


# -- STRUCT field aliases, through SQL -----------------------------------------------------------------
STRUCTS = sorted(name for name, spec in KERNELS.items() if spec.field_aliases)


def _sql_literal(p) -> str:
    """A value for a required parameter, as the contract test fills them."""
    return repr({"window": 20, "int": 5, "float": 0.5}[p.kind])


@pytest.fixture(scope="module")
def db():
    import pyarrow as pa

    import cryptodb

    market = MARKET["mixed"]
    with cryptodb.connect() as d:
        d.con.register("market", pa.table({
            "sym": [f"s{g}" for g in market.gid], "ts": pa.array(market.ts, pa.timestamp("ns")),
            "seq": np.arange(len(market.gid)),
            **{name: pa.array(values, from_pandas=True) for name, values in market.cols.items()}}))
        yield d


def test_struct_kernels_have_field_aliases():
    expected = {"macd": {"macd_line", "macd_signal", "macd_hist"},
                "bbands": {"bbands_upper", "bbands_middle", "bbands_lower"},
                "stoch": {"stoch_k", "stoch_d"}, "aroon": {"aroon_down", "aroon_up"},
                "donchian": {"donchian_upper", "donchian_lower", "donchian_mid"}}
    for name, aliases in expected.items():
        assert set(KERNELS[name].field_aliases) == aliases, name
    for name in STRUCTS:  # every field reachable by an alias
        assert set(KERNELS[name].field_aliases.values()) == {o.name for o in KERNELS[name].outputs}, name


@pytest.mark.parametrize("name", STRUCTS)
def test_alias_equals_struct_field(db, name):
    spec = KERNELS[name]
    args = ", ".join([*_columns(spec.inputs), *(_sql_literal(p) for p in spec.params if p.default is REQUIRED)])
    select = []
    for alias, fld in spec.field_aliases.items():
        select.append(f"({name}({args}) OVER w).{fld} AS s_{alias}")
        select.append(f"{alias}({args}) OVER w AS a_{alias}")
    table = db.sql(f"SELECT {', '.join(select)} FROM market "
                   "WINDOW w AS (PARTITION BY sym ORDER BY ts, seq) ORDER BY seq").df()
    for alias, fld in spec.field_aliases.items():
        struct_field = table[f"s_{alias}"].to_numpy(float)
        by_alias = table[f"a_{alias}"].to_numpy(float)
        assert (~np.isnan(struct_field)).sum() > 100, f"{name}.{fld} is almost all NULL: nothing compared"
        np.testing.assert_array_equal(by_alias, struct_field, err_msg=f"{alias} vs ({name}(...)).{fld}")
