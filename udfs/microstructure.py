"""Market microstructure: order flow imbalance, trade signs, VWAP, illiquidity and price impact.

Windowed sums reuse volatility.window_sums_core (running sums, exact recompute every window's worth
of removals). The covariance kernels (kyle_lambda, roll_spread) run on the pair window of
udfs.covariance, the one rolling_cov and rolling_beta use.
"""

from __future__ import annotations

import math

import numpy as np

from .covariance import BETA, COV, pairs_state, run_pairs
from .jit import njit
from .kernel import Fusion, KernelSpec, Output, Param, Window
from .registry import register
from .sequence import compensated_add
from .volatility import RATIO, TOTAL, WINDOW, min_rows, run_window_sums, window_sums_state
from .window import RING, ring_state


# -- order flow imbalance ---------------------------------------------------------------------------
@njit(cache=True)
def _ofi_core(rows, gid, bid, ask, bid_size, ask_size, prev, seen, out):
    """Cont, Kukanov & Stoikov (2014) e_t into out[r, 0]; NULL on a partition's first quote.

    The previous quote stays in locals while a partition's rows follow one another (the store's
    order), not in the state arrays: four stores and loads a row were half of the kernel's time."""
    cur = -1
    pb = pa = pbs = paz = 0.0
    s = 0
    for p in range(len(rows)):
        r = rows[p]
        b = bid[r]
        a = ask[r]
        bs = bid_size[r]
        az = ask_size[r]
        if math.isnan(b) or math.isnan(a) or math.isnan(bs) or math.isnan(az):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                prev[cur, 0], prev[cur, 1], prev[cur, 2], prev[cur, 3], seen[cur] = pb, pa, pbs, paz, s
            cur = g
            pb, pa, pbs, paz, s = prev[g, 0], prev[g, 1], prev[g, 2], prev[g, 3], seen[g]
        if s:
            e = 0.0
            if b >= pb:
                e += bs
            if b <= pb:
                e -= pbs
            if a <= pa:
                e -= az
            if a >= pa:
                e += paz
            out[r, 0] = e
        pb, pa, pbs, paz, s = b, a, bs, az, 1
    if cur >= 0:
        prev[cur, 0], prev[cur, 1], prev[cur, 2], prev[cur, 3], seen[cur] = pb, pa, pbs, paz, s


def _ofi_state(params, groups):
    return {"prev": np.zeros((groups, 4)), "seen": np.zeros(groups, np.int64)}


def _ofi_step(state, cols, ts, gid, rows, params, out):
    _ofi_core(rows, gid, *cols, state["prev"], state["seen"], out)


def _ofi_sum_state(params, groups):
    state = window_sums_state(params, groups)
    state.update(_ofi_state(params, groups))
    return state


def _ofi_sum_step(state, cols, ts, gid, rows, params, out):
    # The window holds e_t values: a partition's first quote has none, so it is not a window row.
    e = np.full((len(gid), 1), np.nan)
    _ofi_core(rows, gid, *cols, state["prev"], state["seen"], e)
    run_window_sums(state, e[:, 0], None, ts, gid, rows, params["n"], out, TOTAL)


def _ofi_fused_step(members: list) -> callable:
    """ofi and ofi_sum of one quote stream (engine fusion): e_t is computed once, into ofi's own
    column when ofi is a member, and each ofi_sum sums it over its window."""
    e_col = next((j for j, (spec, _) in enumerate(members) if spec.name == "ofi"), None)

    def step(state, cols, ts, gid, rows, params, out):
        e = out[:, e_col:e_col + 1] if e_col is not None else np.full((len(gid), 1), np.nan)
        _ofi_core(rows, gid, *cols, state["prev"], state["seen"], e)
        groups = len(state["seen"])
        for j, (spec, member_params) in enumerate(members):
            if j != e_col:
                run_window_sums(window_sums_state(member_params, groups), e[:, 0], None, ts, gid, rows,
                                member_params["n"], out[:, j:j + 1], TOTAL)

    return step


_OFI_FUSION = Fusion("ofi", key=lambda params: (), step=_ofi_fused_step)
_QUOTES = ("bid", "ask", "bid_size", "ask_size")
register(KernelSpec(
    name="ofi",
    doc="order flow imbalance e_t (Cont, Kukanov & Stoikov 2014) from best bid/ask and sizes; NULL first row",
    inputs=_QUOTES, params=(), outputs=(Output("value"),), state=_ofi_state,
    step=_ofi_step, reference="L", category="microstructure", fusion=_OFI_FUSION))
register(KernelSpec(
    name="ofi_sum",
    doc="sum of order flow imbalance e_t over the window (INTEGER n counts e_t values; the first quote has none)",
    inputs=_QUOTES, params=(WINDOW,), outputs=(Output("value"),),
    state=_ofi_sum_state, step=_ofi_sum_step, reference="L", category="microstructure", growable=RING,
    fusion=_OFI_FUSION))


# -- tick rule -------------------------------------------------------------------------------------
@njit(cache=True)
def _trade_sign_core(rows, gid, x, prev, sign, seen, out):
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if seen[g]:
            if v > prev[g]:
                sign[g] = 1.0
            elif v < prev[g]:
                sign[g] = -1.0
        if sign[g] != 0.0:
            out[r, 0] = sign[g]
        prev[g] = v
        seen[g] = 1


def _trade_sign_state(params, groups):
    return {"prev": np.zeros(groups), "sign": np.zeros(groups), "seen": np.zeros(groups, np.int64)}


def _trade_sign_step(state, cols, ts, gid, rows, params, out):
    _trade_sign_core(rows, gid, cols[0], state["prev"], state["sign"], state["seen"], out)


register(KernelSpec(
    name="trade_sign",
    doc="tick rule: +1 up-tick, -1 down-tick, previous sign on a zero tick, NULL before the first change",
    inputs=("price",), params=(), outputs=(Output("value", "INTEGER"),), state=_trade_sign_state,
    step=_trade_sign_step, category="microstructure"))


# -- VWAP ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _vwap_expanding_core(rows, gid, price, volume, sums, comp, nonzero, out):
    """sum(p v) / sum(v) over the partition so far, both sums Neumaier-compensated (10M+ rows).
    A partition's sums stay in locals while its rows follow one another (see _ofi_core)."""
    cur = -1
    s0 = s1 = c0 = c1 = 0.0
    nz = 0
    for p in range(len(rows)):
        r = rows[p]
        pr = price[r]
        v = volume[r]
        if math.isnan(pr) or math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                sums[cur, 0], sums[cur, 1], comp[cur, 0], comp[cur, 1], nonzero[cur] = s0, s1, c0, c1, nz
            cur = g
            s0, s1, c0, c1, nz = sums[g, 0], sums[g, 1], comp[g, 0], comp[g, 1], nonzero[g]
        s0, c0 = compensated_add(s0, c0, pr * v)
        s1, c1 = compensated_add(s1, c1, v)
        if v != 0.0:
            nz += 1
        if nz > 0:
            den = s1 + c1
            if den != 0.0:
                out[r, 0] = (s0 + c0) / den
    if cur >= 0:
        sums[cur, 0], sums[cur, 1], comp[cur, 0], comp[cur, 1], nonzero[cur] = s0, s1, c0, c1, nz



def _vwap_state(params, groups):
    if params["n"] is None:  # the ring stays empty; it is there because the spec declares it growable
        state = ring_state(groups, Window(rows=1))
        state.update(sums=np.zeros((groups, 2)), comp=np.zeros((groups, 2)), nonzero=np.zeros(groups, np.int64))
        return state
    return window_sums_state(params, groups)


def _vwap_step(state, cols, ts, gid, rows, params, out):
    price, volume = cols
    if params["n"] is None:
        _vwap_expanding_core(rows, gid, price, volume, state["sums"], state["comp"], state["nonzero"], out)
        return
    run_window_sums(state, price * volume, volume, ts, gid, rows, params["n"], out, RATIO)


register(KernelSpec(
    name="vwap",
    doc="volume-weighted average price sum(p v)/sum(v): over the window, or the partition so far when n is NULL",
    inputs=("price", "volume"),
    params=(Param("n", "window", None, doc="INTEGER rows or INTERVAL; NULL (default): the whole partition so far"),),
    outputs=(Output("value"),), state=_vwap_state, step=_vwap_step, category="microstructure", growable=RING,
    examples=({}, {"n": 20})))


# -- Amihud illiquidity ------------------------------------------------------------------------------
def _amihud_step(state, cols, ts, gid, rows, params, out):
    r, dollar_volume = cols
    null = np.isnan(r) | np.isnan(dollar_volume)
    traded = dollar_volume > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(traded, np.abs(r) / np.where(traded, dollar_volume, 1.0), 0.0)
    a[null] = np.nan
    run_window_sums(state, a, traded.astype(np.float64), ts, gid, rows, params["n"], out, RATIO)


register(KernelSpec(
    name="amihud",
    doc="Amihud illiquidity: mean of |r|/dollar_volume over the window's rows with dollar_volume > 0 "
        "(rows with dollar_volume <= 0 fill window slots; NULL when the window has none traded)",
    inputs=("r", "dollar_volume"), params=(WINDOW,), outputs=(Output("value"),), state=window_sums_state,
    step=_amihud_step, category="microstructure", growable=RING))


# -- windowed covariance: Kyle's lambda and Roll's spread (the pair window of udfs.covariance) ----------
def _kyle_step(state, cols, ts, gid, rows, params, out):
    # slope of r on q: cov(r, q) / var(q) is rolling_beta(y=r, x=q)
    run_pairs(state, cols[0], cols[1], ts, gid, rows, params["n"], BETA, 0, out)


register(KernelSpec(
    name="kyle_lambda",
    doc="Kyle's lambda: rolling OLS slope cov(r, q)/var(q) of returns on signed volume; NULL when var(q) = 0",
    inputs=("r", "signed_volume"), params=(WINDOW,), outputs=(Output("value"),), state=pairs_state,
    step=_kyle_step, category="microstructure", growable=RING, validate=min_rows("kyle_lambda", 2)))


@njit(cache=True)
def _price_change_pairs(rows, gid, price, prev, seen, dp, lag):
    """(dp_t, dp_{t-1}) for every price that has two predecessors; NaN elsewhere."""
    for p in range(len(rows)):
        r = rows[p]
        v = price[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if seen[g] >= 1:
            d = v - prev[g, 0]
            if seen[g] >= 2:
                dp[r] = d
                lag[r] = prev[g, 1]
            prev[g, 1] = d
        prev[g, 0] = v
        seen[g] = min(seen[g] + 1, 2)


def _roll_state(params, groups):
    state = pairs_state(params, groups)
    state.update(prev=np.zeros((groups, 2)), seen=np.zeros(groups, np.int64))
    return state


def _roll_step(state, cols, ts, gid, rows, params, out):
    dp = np.full(len(gid), np.nan)
    lag = np.full(len(gid), np.nan)
    _price_change_pairs(rows, gid, cols[0], state["prev"], state["seen"], dp, lag)
    cov = np.full_like(out, np.nan)
    run_pairs(state, dp, lag, ts, gid, rows, params["n"], COV, 1, cov)
    valid = ~np.isnan(cov[:, 0])
    out[valid, 0] = np.where(cov[valid, 0] < 0.0, 2.0 * np.sqrt(np.abs(cov[valid, 0])), 0.0)


register(KernelSpec(
    name="roll_spread",
    doc="Roll's spread: 2 sqrt(-cov(dp_t, dp_{t-1})) (ddof 1) over the window's price changes, each paired "
        "with the one before it; 0 when the covariance >= 0",
    inputs=("price",), params=(WINDOW,), outputs=(Output("value"),), state=_roll_state, step=_roll_step,
    category="microstructure", growable=RING, validate=min_rows("roll_spread", 2)))
