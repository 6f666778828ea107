"""Momentum indicators, each equal to TA-Lib's function of the same name (seeding included)."""

from __future__ import annotations

import math

import numpy as np

from .extremes import deque_state, rolling_extremes
from .jit import njit
from .kernel import KernelSpec, Output, Param, Window
from .registry import register

TA_EPSILON = 1e-14  # TA-Lib's TA_IS_ZERO


# -- RSI ---------------------------------------------------------------------------------------------
@njit(cache=True)
def _rsi_core(rows, gid, x, n, count, prev, gain, loss, out):
    # A partition's scalars stay in locals while its rows follow one another (the store's order),
    # written back when another partition's row comes: not a memory round trip per update.
    cur = -1
    c = 0
    pv = gn = ls = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                count[cur], prev[cur], gain[cur], loss[cur] = c, pv, gn, ls
            cur = g
            c, pv, gn, ls = count[g], prev[g], gain[g], loss[g]
        c += 1
        if c == 1:
            pv = v
            continue
        diff = v - pv
        pv = v
        if c <= n + 1:  # the first n changes are averaged plainly (Wilder's seed)
            if diff < 0:
                ls -= diff
            else:
                gn += diff
            if c < n + 1:
                continue
            ls /= n
            gn /= n
        else:
            ls *= n - 1
            gn *= n - 1
            if diff < 0:
                ls -= diff
            else:
                gn += diff
            ls /= n
            gn /= n
        total = gn + ls
        out[r, 0] = 100.0 * gn / total if total != 0.0 else 0.0  # TA-Lib 0.8 tests exactly
    if cur >= 0:
        count[cur], prev[cur], gain[cur], loss[cur] = c, pv, gn, ls


def _rsi_state(params, groups):
    return {"count": np.zeros(groups, np.int64), "prev": np.zeros(groups), "gain": np.zeros(groups),
            "loss": np.zeros(groups)}


def _rsi_step(st, cols, ts, gid, rows, params, out):
    _rsi_core(rows, gid, cols[0], params["n"], st["count"], st["prev"], st["gain"], st["loss"], out)


register(KernelSpec(
    name="rsi", doc="Wilder's relative strength index, 0..100 (TA-Lib RSI)", inputs=("x",),
    params=(Param("n", "int", 14, ">1"),), outputs=(Output("value"),), state=_rsi_state, step=_rsi_step,
    reference="T", category="momentum"))


# -- MACD --------------------------------------------------------------------------------------------
@njit(cache=True)
def _macd_core(rows, gid, x, fast, slow, signal, count, slow_sum, fast_sum, slow_ema, fast_ema,
               sig_count, sig_sum, sig_ema, out):
    k_slow = 2.0 / (slow + 1)
    k_fast = 2.0 / (fast + 1)
    k_sig = 2.0 / (signal + 1)
    cur = -1  # a partition's scalars live in locals while its rows follow one another (as in RSI)
    c = s = 0
    ssum = fsum = sema = fema = gsum = gema = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                count[cur], slow_sum[cur], fast_sum[cur], slow_ema[cur], fast_ema[cur] = c, ssum, fsum, sema, fema
                sig_count[cur], sig_sum[cur], sig_ema[cur] = s, gsum, gema
            cur = g
            c, ssum, fsum, sema, fema = count[g], slow_sum[g], fast_sum[g], slow_ema[g], fast_ema[g]
            s, gsum, gema = sig_count[g], sig_sum[g], sig_ema[g]
        c += 1
        if c <= slow:
            # TA-Lib seeds both EMAs at row slow-1: the slow one with the SMA of rows 0..slow-1, the
            # fast one with the SMA of the `fast` rows ending there.
            ssum += v
            if c > slow - fast:
                fsum += v
            if c < slow:
                continue
            sema = ssum / slow
            fema = fsum / fast
        else:
            sema = (v - sema) * k_slow + sema
            fema = (v - fema) * k_fast + fema
        line = fema - sema
        s += 1
        if s <= signal:
            gsum += line
            if s < signal:
                continue
            gema = gsum / signal
        else:
            gema = (line - gema) * k_sig + gema
        out[r, 0] = line
        out[r, 1] = gema
        out[r, 2] = line - gema
    if cur >= 0:
        count[cur], slow_sum[cur], fast_sum[cur], slow_ema[cur], fast_ema[cur] = c, ssum, fsum, sema, fema
        sig_count[cur], sig_sum[cur], sig_ema[cur] = s, gsum, gema


def _macd_periods(params):
    fast, slow = params["fast"], params["slow"]
    return (slow, fast) if slow < fast else (fast, slow)  # TA-Lib swaps them too


def _macd_state(params, groups):
    z = lambda: np.zeros(groups)  # noqa: E731
    return {"count": np.zeros(groups, np.int64), "slow_sum": z(), "fast_sum": z(), "slow_ema": z(),
            "fast_ema": z(), "sig_count": np.zeros(groups, np.int64), "sig_sum": z(), "sig_ema": z()}


def _macd_step(st, cols, ts, gid, rows, params, out):
    fast, slow = _macd_periods(params)
    _macd_core(rows, gid, cols[0], fast, slow, params["signal"], st["count"], st["slow_sum"], st["fast_sum"],
               st["slow_ema"], st["fast_ema"], st["sig_count"], st["sig_sum"], st["sig_ema"], out)


register(KernelSpec(
    name="macd", doc="MACD line (EMA fast - EMA slow), its signal EMA and the histogram (TA-Lib MACD)",
    inputs=("x",),
    params=(Param("fast", "int", 12, ">1"), Param("slow", "int", 26, ">1"), Param("signal", "int", 9, ">0")),
    outputs=(Output("macd"), Output("signal"), Output("hist")), state=_macd_state, step=_macd_step,
    reference="T", category="momentum",
    field_aliases={"macd_line": "macd", "macd_signal": "signal", "macd_hist": "hist"}))


# ====================================================================================================
# High/low/close indicators. Every kernel below replicates TA-Lib's C code statement by statement
# (same seeding, same order of floating-point operations, same zero guards), because several of
# them keep running sums whose rounding residue decides a branch (a "zero" range, an empty money
# flow window) and only the same arithmetic reproduces TA-Lib's output there. A row with any input
# NULL is skipped entirely: TA-Lib's reference on such data is its run over the complete rows.
# ====================================================================================================


# TA-Lib 0.8 builds ATR, NATR and KAMA (and its EMA family) twice and picks the clone with fused
# multiply-adds on any FMA-capable CPU: there, its Wilder step is fma(beta, atr, alpha * tr) and its
# KAMA steps are fma(er, diff, slow) and fma(x - kama, sc, kama), one rounding each. `_fma` is LLVM's
# llvm.fma (C's fma(): fused on any CPU), made when a kernel needing it first runs, because kernel
# modules must import without numba.
_fma = None


def _need_fma() -> None:
    global _fma
    if _fma is not None:
        return
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def fma(typingctx, a, b, c):
        def codegen(context, builder, signature, args):
            f64 = ir.DoubleType()
            fn = builder.module.declare_intrinsic("llvm.fma", [f64], ir.FunctionType(f64, [f64, f64, f64]))
            return builder.call(fn, args)

        return types.float64(types.float64, types.float64, types.float64), codegen

    _fma = fma


def _counted(groups: int, **arrays) -> dict:
    """A state of per-partition scalars (float64 unless given) plus the usual `count` of rows seen."""
    state = {"count": np.zeros(groups, np.int64)}
    for name, dtype in arrays.items():
        state[name] = np.zeros(groups, dtype)
    return state


@njit(cache=True)
def _true_range(high, low, prev_close):
    """TA-Lib's TRANGE: start from high - low, then the two distances to the previous close."""
    greatest = high - low
    val2 = math.fabs(prev_close - high)
    if val2 > greatest:
        greatest = val2
    val3 = math.fabs(prev_close - low)
    if val3 > greatest:
        greatest = val3
    return greatest


# -- TRANGE / ATR / NATR -----------------------------------------------------------------------------
TRANGE, ATR, NATR = 0, 1, 2


@njit(cache=True)
def _atr_core(rows, gid, h, l, c, n, mode, count, prev_close, total, atr, out):
    w_beta = (n - 1) / n  # TA-Lib's two-coefficient Wilder step: alpha from beta, so they sum to 1
    w_alpha = 1.0 - w_beta
    for p in range(len(rows)):
        r = rows[p]
        hi = h[r]
        lo = l[r]
        cl = c[r]
        if math.isnan(hi) or math.isnan(lo) or math.isnan(cl):
            continue
        g = gid[r]
        k = count[g]
        count[g] = k + 1
        pc = prev_close[g]
        prev_close[g] = cl
        if k == 0:
            continue  # the first row only provides a previous close
        tr = _true_range(hi, lo, pc)
        if mode == TRANGE or n == 1:  # TA-Lib: ATR and NATR (not normalized!) with period 1 are TRANGE
            out[r, 0] = tr
            continue
        if k <= n:  # seed: the first n true ranges summed from 0.0 in order, then divided
            total[g] += tr
            if k < n:
                continue
            atr[g] = total[g] / n
        else:  # Wilder: wAlpha * tr + wBeta * atr, the second product fused
            atr[g] = _fma(w_beta, atr[g], w_alpha * tr)
        if mode == ATR:
            out[r, 0] = atr[g]
        else:
            out[r, 0] = (atr[g] / cl) * 100.0 if cl != 0.0 else 0.0


def _atr_kernel(mode: int):
    def state(params, groups):
        return _counted(groups, prev_close=np.float64, total=np.float64, atr=np.float64)

    def step(st, cols, ts, gid, rows, params, out):
        _need_fma()
        n = params["n"] if "n" in params else 1
        _atr_core(rows, gid, cols[0], cols[1], cols[2], n, mode, st["count"], st["prev_close"], st["total"],
                  st["atr"], out)

    return state, step


HLC = ("high", "low", "close")
_state, _step = _atr_kernel(TRANGE)
register(KernelSpec(
    name="trange", doc="true range: max(high, previous close) - min(low, previous close) (TA-Lib TRANGE)",
    inputs=HLC, params=(), outputs=(Output("value"),), state=_state, step=_step, reference="T",
    category="momentum"))
for _name, _mode, _doc in (
        ("atr", ATR, "average true range, Wilder smoothing seeded with the mean of n true ranges (TA-Lib ATR)"),
        ("natr", NATR, "normalized ATR: 100 * ATR / close (TA-Lib NATR)")):
    _state, _step = _atr_kernel(_mode)
    register(KernelSpec(
        name=_name, doc=_doc, inputs=HLC, params=(Param("n", "int", 14, ">0"),), outputs=(Output("value"),),
        state=_state, step=_step, reference="T", category="momentum"))


# -- WILLR / STOCH / AROON: window extremes from udfs.extremes, then TA-Lib's arithmetic -------------------
@njit(cache=True)
def _willr_core(rows, c, ext, out):
    for p in range(len(rows)):
        r = rows[p]
        highest = ext[r, 0]
        if math.isnan(highest):
            continue  # NULL row or window not full yet
        lowest = ext[r, 1]
        if math.fabs(highest - lowest) <= TA_EPSILON * (math.fabs(highest) + math.fabs(lowest)):
            out[r, 0] = 0.0  # a flat window (TA-Lib's scaled zero test on the range)
            continue
        w = -100.0 * ((highest - c[r]) / (highest - lowest))
        out[r, 0] = -100.0 if w < -100.0 else (0.0 if w > 0.0 else w)  # TA-Lib clamps a close outside the range


def _willr_state(params, groups):
    return deque_state(groups, Window(rows=params["n"]))


def _willr_step(st, cols, ts, gid, rows, params, out):
    ext = np.empty((len(out), 2))
    rolling_extremes(st, cols[0], cols[1], ts, gid, rows, Window(rows=params["n"]), ext, c_max=0, c_min=1,
                     gate=cols[2])
    _willr_core(rows, cols[2], ext, out)


register(KernelSpec(
    name="willr", doc="Williams' %R: -100 * (highest high - close) / (highest high - lowest low) (TA-Lib WILLR)",
    inputs=HLC, params=(Param("n", "int", 14, ">1"),), outputs=(Output("value"),), state=_willr_state,
    step=_willr_step, reference="T", category="momentum"))


@njit(cache=True)
def _stoch_core(rows, gid, c, slowk, slowd, k_buf, k_head, k_count, k_total, d_buf, d_head, d_count,
                d_total, out):
    """out[r] holds the window's (highest high, lowest low) on entry; slow %K and %D (or NULL) on exit."""
    for p in range(len(rows)):
        r = rows[p]
        highest = out[r, 0]
        if math.isnan(highest):
            continue
        g = gid[r]
        lowest = out[r, 1]
        out[r, 0] = np.nan
        out[r, 1] = np.nan
        if math.fabs(highest - lowest) <= TA_EPSILON * (math.fabs(highest) + math.fabs(lowest)):
            fast_k = 0.0  # a flat window (TA-Lib's scaled zero test on the range)
        else:
            fast_k = 100.0 * ((c[r] - lowest) / (highest - lowest))  # not clamped, unlike WILLR
        # TA-Lib's SMA is a running total: add the new value, emit total / n, subtract the oldest.
        i = k_head[g] + k_count[g]
        if i >= slowk:
            i -= slowk
        k_buf[g, i] = fast_k
        k_count[g] += 1
        k_total[g] += fast_k
        if k_count[g] < slowk:
            continue
        slow_k = k_total[g] / slowk
        i = k_head[g]
        k_total[g] -= k_buf[g, i]
        k_head[g] = 0 if i + 1 == slowk else i + 1
        k_count[g] -= 1
        i = d_head[g] + d_count[g]
        if i >= slowd:
            i -= slowd
        d_buf[g, i] = slow_k
        d_count[g] += 1
        d_total[g] += slow_k
        if d_count[g] < slowd:
            continue
        slow_d = d_total[g] / slowd
        i = d_head[g]
        d_total[g] -= d_buf[g, i]
        d_head[g] = 0 if i + 1 == slowd else i + 1
        d_count[g] -= 1
        out[r, 0] = slow_k
        out[r, 1] = slow_d


def _stoch_state(params, groups):
    st = deque_state(groups, Window(rows=params["fastk"]))
    for stage, period in (("k_", params["slowk"]), ("d_", params["slowd"])):
        st[stage + "buf"] = np.zeros((groups, period))
        st[stage + "head"] = np.zeros(groups, np.int64)
        st[stage + "count"] = np.zeros(groups, np.int64)
        st[stage + "total"] = np.zeros(groups)
    return st


def _stoch_step(st, cols, ts, gid, rows, params, out):
    # `out` doubles as the scratch for the window extremes; _stoch_core replaces them.
    rolling_extremes(st, cols[0], cols[1], ts, gid, rows, Window(rows=params["fastk"]), out, c_max=0, c_min=1,
                     gate=cols[2])
    _stoch_core(rows, gid, cols[2], params["slowk"], params["slowd"], st["k_buf"], st["k_head"],
                st["k_count"], st["k_total"], st["d_buf"], st["d_head"], st["d_count"], st["d_total"], out)


register(KernelSpec(
    name="stoch", doc="slow stochastic: SMA(slowk) of fast %K and its SMA(slowd) (TA-Lib STOCH, SMA smoothing)",
    inputs=HLC,
    params=(Param("fastk", "int", 5, ">0"), Param("slowk", "int", 3, ">0"), Param("slowd", "int", 3, ">0")),
    outputs=(Output("slowk"), Output("slowd")), state=_stoch_state, step=_stoch_step, reference="T",
    category="momentum", field_aliases={"stoch_k": "slowk", "stoch_d": "slowd"}))


@njit(cache=True)
def _aroon_core(rows, n, out):
    """out[r] holds (rows since the lowest low, rows since the highest high) on entry."""
    factor = 100.0 / n
    for p in range(len(rows)):
        r = rows[p]
        if math.isnan(out[r, 0]):
            continue
        out[r, 0] = factor * (n - int(out[r, 0]))
        out[r, 1] = factor * (n - int(out[r, 1]))


def _aroon_state(params, groups):
    return deque_state(groups, Window(rows=params["n"] + 1))  # TA-Lib looks at n + 1 rows


def _aroon_step(st, cols, ts, gid, rows, params, out):
    # The deques write the extremes' ages straight into `out`; _aroon_core scales them in place.
    rolling_extremes(st, cols[0], cols[1], ts, gid, rows, Window(rows=params["n"] + 1), out, c_min_age=0,
                     c_max_age=1)
    _aroon_core(rows, params["n"], out)


register(KernelSpec(
    name="aroon", doc="Aroon down/up: 100 * (n - rows since the lowest low / highest high in n+1 rows) / n "
                      "(TA-Lib AROON)",
    inputs=("high", "low"), params=(Param("n", "int", 14, ">1"),), outputs=(Output("down"), Output("up")),
    state=_aroon_state, step=_aroon_step, reference="T", category="momentum",
    field_aliases={"aroon_down": "down", "aroon_up": "up"}))


# -- CCI -----------------------------------------------------------------------------------------------
@njit(cache=True)
def _cci_core(rows, gid, h, l, c, n, count, buf, out):
    for p in range(len(rows)):
        r = rows[p]
        hi = h[r]
        lo = l[r]
        cl = c[r]
        if math.isnan(hi) or math.isnan(lo) or math.isnan(cl):
            continue
        g = gid[r]
        k = count[g]
        count[g] = k + 1
        last = (hi + lo + cl) / 3
        buf[g, k % n] = last  # TA-Lib's circular buffer: row k lives in slot k mod n
        if k + 1 < n:
            continue
        # The one rescan allowed by the contract: the mean absolute deviation needs the window's
        # current mean, so TA-Lib rescans its window per row, and so must we. The mean is summed in
        # the same pass, over the slots in TA-Lib's order, so that flat windows leave the same
        # residue (TA-Lib's zero guards then see exactly what they see there).
        average = 0.0
        for j in range(n):
            average += buf[g, j]
        average /= n
        mad = 0.0
        for j in range(n):
            mad += math.fabs(buf[g, j] - average)
        mad /= n
        dev = last - average
        # Flat-window tests relative to the window's price level (TA_IS_ZERO_SCALED against |mean|).
        scale = TA_EPSILON * math.fabs(average)
        if math.fabs(dev) <= scale or math.fabs(mad) <= scale:
            out[r, 0] = 0.0
        else:
            out[r, 0] = dev / (0.015 * mad)


def _cci_state(params, groups):
    return {"count": np.zeros(groups, np.int64), "buf": np.zeros((groups, params["n"]))}


def _cci_step(st, cols, ts, gid, rows, params, out):
    _cci_core(rows, gid, cols[0], cols[1], cols[2], params["n"], st["count"], st["buf"], out)


register(KernelSpec(
    name="cci", doc="commodity channel index: (tp - mean tp) / (0.015 * mean absolute deviation) (TA-Lib CCI)",
    inputs=HLC, params=(Param("n", "int", 14, ">1"),), outputs=(Output("value"),), state=_cci_state,
    step=_cci_step, reference="T", category="momentum"))


# -- ADX -----------------------------------------------------------------------------------------------
@njit(cache=True)
def _adx_core(rows, gid, h, l, c, n, count, prev_high, prev_low, prev_close, plus_dm, minus_dm, tr_sum,
              sum_dx, adx, out):
    for p in range(len(rows)):
        r = rows[p]
        hi = h[r]
        lo = l[r]
        cl = c[r]
        if math.isnan(hi) or math.isnan(lo) or math.isnan(cl):
            continue
        g = gid[r]
        k = count[g]
        count[g] = k + 1
        if k == 0:
            prev_high[g] = hi
            prev_low[g] = lo
            prev_close[g] = cl
            continue
        diff_p = hi - prev_high[g]
        diff_m = prev_low[g] - lo
        prev_high[g] = hi
        prev_low[g] = lo
        if k >= n:  # Wilder decay; the first n-1 directional movements are plainly summed
            minus_dm[g] -= minus_dm[g] / n
            plus_dm[g] -= plus_dm[g] / n
        if diff_m > 0 and diff_p < diff_m:
            minus_dm[g] += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm[g] += diff_p
        tr = _true_range(hi, lo, prev_close[g])
        prev_close[g] = cl
        if k < n:
            tr_sum[g] += tr  # n-1 true ranges, not n: TA-Lib's seed
            continue
        t = tr_sum[g]
        t = t - t / n + tr
        tr_sum[g] = t
        dx = -1.0  # no DX this row: TA-Lib skips it when the TR sum is 0 or the DI sum is (near) 0
        if t > 0.0:  # exact: a TR sum carries the quote unit (the DI sum below is a ratio, so a band)
            minus_di = 100.0 * (minus_dm[g] / t)
            plus_di = 100.0 * (plus_dm[g] / t)
            s = minus_di + plus_di
            if not (-TA_EPSILON < s < TA_EPSILON):
                dx = 100.0 * (math.fabs(minus_di - plus_di) / s)
        if k < 2 * n - 1:
            if dx >= 0.0:
                sum_dx[g] += dx
            continue
        if k == 2 * n - 1:  # the first ADX: the n DX summed (a skipped DX counts as 0) over n
            if dx >= 0.0:
                sum_dx[g] += dx
            adx[g] = sum_dx[g] / n
        elif dx >= 0.0:  # later a skipped DX leaves the ADX as it was
            adx[g] = (adx[g] * (n - 1) + dx) / n
        out[r, 0] = adx[g]


def _adx_state(params, groups):
    f = np.float64
    return _counted(groups, prev_high=f, prev_low=f, prev_close=f, plus_dm=f, minus_dm=f, tr_sum=f, sum_dx=f,
                    adx=f)


def _adx_step(st, cols, ts, gid, rows, params, out):
    _adx_core(rows, gid, cols[0], cols[1], cols[2], params["n"], st["count"], st["prev_high"], st["prev_low"],
              st["prev_close"], st["plus_dm"], st["minus_dm"], st["tr_sum"], st["sum_dx"], st["adx"], out)


register(KernelSpec(
    name="adx", doc="Wilder's average directional index; first value at row 2n-1 (TA-Lib ADX)", inputs=HLC,
    params=(Param("n", "int", 14, ">1"),), outputs=(Output("value"),), state=_adx_state, step=_adx_step,
    reference="T", category="momentum"))


# -- MOM / ROC -----------------------------------------------------------------------------------------
MOM, ROC = 0, 1


@njit(cache=True)
def _lag_core(rows, gid, x, n, mode, head, count, buf, out):
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if count[g] == n:  # the ring holds the previous n values; its oldest is x[t - n]
            i = head[g]
            old = buf[g, i]
            head[g] = 0 if i + 1 == n else i + 1
            count[g] -= 1
            if mode == MOM:
                out[r, 0] = v - old
            else:
                out[r, 0] = ((v / old) - 1.0) * 100.0 if old != 0.0 else 0.0
        i = head[g] + count[g]
        if i >= n:
            i -= n
        buf[g, i] = v
        count[g] += 1


def _lag_kernel(mode):
    def state(params, groups):
        return {"head": np.zeros(groups, np.int64), "count": np.zeros(groups, np.int64),
                "buf": np.zeros((groups, params["n"]))}

    def step(st, cols, ts, gid, rows, params, out):
        _lag_core(rows, gid, cols[0], params["n"], mode, st["head"], st["count"], st["buf"], out)

    return state, step


for _name, _mode, _doc in (("mom", MOM, "momentum: x - x n rows earlier (TA-Lib MOM)"),
                           ("roc", ROC, "rate of change in percent: 100 * (x / x n rows earlier - 1) (TA-Lib ROC)")):
    _state, _step = _lag_kernel(_mode)
    register(KernelSpec(name=_name, doc=_doc, inputs=("x",), params=(Param("n", "int", 10, ">0"),),
                        outputs=(Output("value"),), state=_state, step=_step, reference="T", category="momentum"))


# -- OBV -----------------------------------------------------------------------------------------------
@njit(cache=True)
def _obv_core(rows, gid, c, vol, count, prev, obv, out):
    for p in range(len(rows)):
        r = rows[p]
        v = c[r]
        w = vol[r]
        if math.isnan(v) or math.isnan(w):
            continue
        g = gid[r]
        if count[g] == 0:
            obv[g] = w  # TA-Lib starts from the first row's volume, whatever its direction
            count[g] = 1
        elif v > prev[g]:
            obv[g] += w
        elif v < prev[g]:
            obv[g] -= w
        prev[g] = v
        out[r, 0] = obv[g]


def _obv_state(params, groups):
    return _counted(groups, prev=np.float64, obv=np.float64)


def _obv_step(st, cols, ts, gid, rows, params, out):
    _obv_core(rows, gid, cols[0], cols[1], st["count"], st["prev"], st["obv"], out)


register(KernelSpec(
    name="obv", doc="on-balance volume: running sum of volume signed by the close's direction (TA-Lib OBV)",
    inputs=("close", "volume"), params=(), outputs=(Output("value"),), state=_obv_state, step=_obv_step,
    reference="T", category="momentum"))


# -- MFI -----------------------------------------------------------------------------------------------
@njit(cache=True)
def _mfi_core(rows, gid, h, l, c, vol, n, count, prev_tp, pos_sum, neg_sum, null_run, slot, pos_buf, neg_buf,
              out):
    for p in range(len(rows)):
        r = rows[p]
        hi = h[r]
        lo = l[r]
        cl = c[r]
        w = vol[r]
        if math.isnan(hi) or math.isnan(lo) or math.isnan(cl) or math.isnan(w):
            continue
        g = gid[r]
        k = count[g]
        count[g] = k + 1
        tp = (hi + lo + cl) / 3.0
        if k == 0:
            prev_tp[g] = tp
            continue
        i = slot[g]
        if k > n:  # the flow n rows back leaves the window first
            pos_sum[g] -= pos_buf[g, i]
            neg_sum[g] -= neg_buf[g, i]
        move = tp - prev_tp[g]
        scale = math.fabs(tp) + math.fabs(prev_tp[g])
        prev_tp[g] = tp
        # A move within TA_EPSILON of the two prices' magnitude is no move (TA-Lib's scaled zero).
        flow = 0.0 if math.fabs(move) <= TA_EPSILON * scale else tp * w
        pos_flow = 0.0 if move < 0.0 else flow
        neg_flow = flow if move < 0.0 else 0.0
        pos_buf[g, i] = pos_flow
        neg_buf[g, i] = neg_flow
        pos_sum[g] += pos_flow
        neg_sum[g] += neg_flow
        # After n rows without flow the sums are exactly zero: TA-Lib drops their rounding residue.
        null_run[g] = null_run[g] + 1 if flow == 0.0 else 0
        if null_run[g] >= n:
            null_run[g] = n
            pos_sum[g] = 0.0
            neg_sum[g] = 0.0
        slot[g] = 0 if i + 1 == n else i + 1
        if k < n:
            continue
        total = pos_sum[g] + neg_sum[g]
        pos = pos_sum[g]
        pos = 0.0 if pos < 0.0 else (total if pos > total else pos)
        out[r, 0] = 0.0 if total <= 0.0 else 100.0 * (pos / total)


def _mfi_state(params, groups):
    n = params["n"]
    st = _counted(groups, prev_tp=np.float64, pos_sum=np.float64, neg_sum=np.float64, null_run=np.int64,
                  slot=np.int64)
    st.update(pos_buf=np.zeros((groups, n)), neg_buf=np.zeros((groups, n)))
    return st


def _mfi_step(st, cols, ts, gid, rows, params, out):
    _mfi_core(rows, gid, cols[0], cols[1], cols[2], cols[3], params["n"], st["count"], st["prev_tp"],
              st["pos_sum"], st["neg_sum"], st["null_run"], st["slot"], st["pos_buf"], st["neg_buf"], out)


register(KernelSpec(
    name="mfi", doc="money flow index: 100 * positive / total money flow over n rows (TA-Lib MFI)",
    inputs=("high", "low", "close", "volume"), params=(Param("n", "int", 14, ">1"),), outputs=(Output("value"),),
    state=_mfi_state, step=_mfi_step, reference="T", category="momentum"))


# -- KAMA ----------------------------------------------------------------------------------------------
KAMA_FAST = 2.0 / (2.0 + 1.0)
KAMA_SLOW = 2.0 / (30.0 + 1.0)


@njit(cache=True)
def _kama_core(rows, gid, x, n, head, count, buf, sum_roc, kama, out):
    const_max = KAMA_SLOW
    const_diff = KAMA_FAST - KAMA_SLOW
    cap = n + 1
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        if n == 1:
            out[r, 0] = v  # TA-Lib: period 1 is a copy of the input
            continue
        g = gid[r]
        c = count[g]
        h = head[g]
        if c < n:  # warm-up: keep x and the running sum of |x[t-1] - x[t]|
            if c > 0:
                last = h + c - 1
                if last >= cap:
                    last -= cap
                sum_roc[g] += math.fabs(buf[g, last] - v)
            i = h + c
            if i >= cap:
                i -= cap
            buf[g, i] = v
            count[g] = c + 1
            continue
        last = h + c - 1
        if last >= cap:
            last -= cap
        if c == n:  # row n: the first KAMA, from yesterday's price
            sum_roc[g] += math.fabs(buf[g, last] - v)
            prev = buf[g, last]
            trailing = buf[g, h]
            i = h + c
            if i >= cap:
                i -= cap
            count[g] = c + 1
        else:  # the ring holds x[t-n-1..t-1]: drop the oldest change, add the newest
            old = buf[g, h]
            h1 = h + 1 if h + 1 < cap else 0
            trailing = buf[g, h1]
            sum_roc[g] -= math.fabs(old - trailing)
            sum_roc[g] += math.fabs(v - buf[g, last])
            prev = kama[g]
            i = h  # the new value takes the oldest's slot
            head[g] = h1
        buf[g, i] = v
        period_roc = v - trailing
        s = sum_roc[g]
        if s <= period_roc or (-TA_EPSILON < s < TA_EPSILON):
            er = 1.0
        else:
            er = math.fabs(period_roc / s)
        sc = _fma(er, const_diff, const_max)
        sc *= sc
        kama[g] = _fma(v - prev, sc, prev)
        out[r, 0] = kama[g]


def _kama_state(params, groups):
    return {"head": np.zeros(groups, np.int64), "count": np.zeros(groups, np.int64),
            "buf": np.zeros((groups, params["n"] + 1)), "sum_roc": np.zeros(groups), "kama": np.zeros(groups)}


def _kama_step(st, cols, ts, gid, rows, params, out):
    _need_fma()
    _kama_core(rows, gid, cols[0], params["n"], st["head"], st["count"], st["buf"], st["sum_roc"], st["kama"], out)


register(KernelSpec(
    name="kama", doc="Kaufman adaptive moving average, efficiency ratio over n changes (TA-Lib KAMA)",
    inputs=("x",), params=(Param("n", "int", 30, ">0"),), outputs=(Output("value"),), state=_kama_state,
    step=_kama_step, reference="T", category="smoothing"))
