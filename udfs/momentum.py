"""Momentum indicators, each equal to TA-Lib's function of the same name (seeding included)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernel import KernelSpec, Output, Param
from .registry import register

TA_EPSILON = 1e-14  # TA-Lib's TA_IS_ZERO


# -- RSI ---------------------------------------------------------------------------------------------
@njit(cache=True)
def _rsi_core(rows, gid, x, n, count, prev, gain, loss, out):
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        c = count[g]
        count[g] = c + 1
        if c == 0:
            prev[g] = v
            continue
        diff = v - prev[g]
        prev[g] = v
        if c <= n:  # the first n changes are averaged plainly (Wilder's seed)
            if diff < 0:
                loss[g] -= diff
            else:
                gain[g] += diff
            if c < n:
                continue
            loss[g] /= n
            gain[g] /= n
        else:
            loss[g] *= n - 1
            gain[g] *= n - 1
            if diff < 0:
                loss[g] -= diff
            else:
                gain[g] += diff
            loss[g] /= n
            gain[g] /= n
        total = gain[g] + loss[g]
        out[r, 0] = 100.0 * gain[g] / total if not (-TA_EPSILON < total < TA_EPSILON) else 0.0


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
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        c = count[g]
        count[g] = c + 1
        if c < slow:
            # TA-Lib seeds both EMAs at row slow-1: the slow one with the SMA of rows 0..slow-1, the
            # fast one with the SMA of the `fast` rows ending there.
            slow_sum[g] += v
            if c >= slow - fast:
                fast_sum[g] += v
            if c < slow - 1:
                continue
            slow_ema[g] = slow_sum[g] / slow
            fast_ema[g] = fast_sum[g] / fast
        else:
            slow_ema[g] = (v - slow_ema[g]) * k_slow + slow_ema[g]
            fast_ema[g] = (v - fast_ema[g]) * k_fast + fast_ema[g]
        line = fast_ema[g] - slow_ema[g]
        s = sig_count[g]
        sig_count[g] = s + 1
        if s < signal:
            sig_sum[g] += line
            if s < signal - 1:
                continue
            sig_ema[g] = sig_sum[g] / signal
        else:
            sig_ema[g] = (line - sig_ema[g]) * k_sig + sig_ema[g]
        out[r, 0] = line
        out[r, 1] = sig_ema[g]
        out[r, 2] = line - sig_ema[g]


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
