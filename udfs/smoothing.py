"""Returns and smoothing: log/simple returns, EWMA (alpha or half-life), TA-Lib EMA/DEMA/TEMA/WMA."""

from __future__ import annotations

import datetime
import math

import numpy as np

from .jit import njit
from .kernel import KernelParamError, KernelSpec, Output, Param
from .registry import register
from .window import RING, drive, ring_state

# -- returns ----------------------------------------------------------------------------------------
LOG, SIMPLE = 0, 1


@njit(cache=True)
def _returns_core(rows, gid, x, prev, kind, out):
    # The previous price stays in a local while a partition's rows follow one another (see
    # sequence.py): a store and a load per row through the state array cost as much as the log.
    cur = -1
    q = np.nan
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                prev[cur] = q
            cur = g
            q = prev[g]
        if not math.isnan(q):
            if kind == LOG:
                if v > 0.0 and q > 0.0:
                    out[r, 0] = math.log(v / q)
            elif q != 0.0:
                out[r, 0] = v / q - 1.0
        q = v
    if cur >= 0:
        prev[cur] = q


def _returns(kind):
    def step(state, cols, ts, gid, rows, params, out):
        _returns_core(rows, gid, cols[0], state["prev"], kind, out)

    return step


def _prev_state(params, groups):
    return {"prev": np.full(groups, np.nan)}


register(KernelSpec(
    name="log_return", doc="ln(p_t / p_{t-1}); NULL on the first row and when either price <= 0",
    inputs=("p",), params=(), outputs=(Output("value"),), state=_prev_state, step=_returns(LOG),
    category="returns"))
register(KernelSpec(
    name="simple_return", doc="p_t / p_{t-1} - 1; NULL on the first row", inputs=("p",), params=(),
    outputs=(Output("value"),), state=_prev_state, step=_returns(SIMPLE), category="returns"))


# -- EWMA -----------------------------------------------------------------------------------------
@njit(cache=True)
def _ewma_core(rows, gid, ts, x, alpha, halflife_ns, y, last_ts, seen, out):
    ln2 = math.log(2.0)
    cur = -1
    yg = 0.0
    tg = sg = 0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:  # a partition's scalars live in locals while its rows follow one another
            if cur >= 0:
                y[cur], last_ts[cur], seen[cur] = yg, tg, sg
            cur = g
            yg, tg, sg = y[g], last_ts[g], seen[g]
        if sg == 0:
            yg = v
        else:
            a = alpha
            if halflife_ns > 0:
                a = 1.0 - math.exp(-ln2 * (ts[r] - tg) / halflife_ns)
            yg = a * v + (1.0 - a) * yg
        sg = 1
        tg = ts[r]
        out[r, 0] = yg
    if cur >= 0:
        y[cur], last_ts[cur], seen[cur] = yg, tg, sg


def _ewma_state(params, groups):
    return {"y": np.zeros(groups), "last_ts": np.zeros(groups, np.int64), "seen": np.zeros(groups, np.int64)}


def _ewma_step(state, cols, ts, gid, rows, params, out):
    alpha = params["alpha"] if params["alpha"] is not None else 0.0
    halflife = params["halflife"] or 0
    _ewma_core(rows, gid, ts, cols[0], alpha, halflife, state["y"], state["last_ts"], state["seen"], out)


def _ewma_validate(params):
    if (params["alpha"] is None) == (params["halflife"] is None):
        raise KernelParamError("ewma: give exactly one of alpha (in (0,1]) or halflife := INTERVAL")


register(KernelSpec(
    name="ewma", doc="exponentially weighted mean: y = a*x + (1-a)*y_prev; a from alpha or from a half-life",
    inputs=("x",),
    params=(Param("alpha", "float", None, "(0,1]", "smoothing factor"),
            Param("halflife", "interval", None, doc="half-life for irregular ticks: a = 1 - exp(-ln2 dt/h)")),
    outputs=(Output("value"),), state=_ewma_state, step=_ewma_step, validate=_ewma_validate,
    category="smoothing", examples=({"alpha": 0.1}, {"halflife": datetime.timedelta(seconds=30)})))


# -- TA-Lib EMA cascades (EMA, DEMA, TEMA) ----------------------------------------------------------
@njit(cache=True)
def _ema_stage(count, total, value, g, s, v, n, k):
    """One TA-Lib EMA stage fed value v: NaN until n values, then the SMA seed, then recursion."""
    c = count[g, s]
    if c < n:
        total[g, s] += v
        count[g, s] = c + 1
        if c + 1 < n:
            return np.nan
        value[g, s] = total[g, s] / n
        return value[g, s]
    value[g, s] = (v - value[g, s]) * k + value[g, s]
    return value[g, s]


@njit(cache=True)
def _ema_chain_core(rows, gid, x, n, depth, count, total, value, out):
    k = 2.0 / (n + 1)
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        e1 = _ema_stage(count, total, value, g, 0, v, n, k)
        if depth == 1:
            if not math.isnan(e1):
                out[r, 0] = e1
            continue
        if math.isnan(e1):
            continue
        e2 = _ema_stage(count, total, value, g, 1, e1, n, k)
        if math.isnan(e2):
            continue
        if depth == 2:
            out[r, 0] = 2.0 * e1 - e2
            continue
        e3 = _ema_stage(count, total, value, g, 2, e2, n, k)
        if not math.isnan(e3):
            out[r, 0] = 3.0 * e1 - 3.0 * e2 + e3


def _ema_chain(depth):
    def state(params, groups):
        return {"count": np.zeros((groups, depth), np.int64), "total": np.zeros((groups, depth)),
                "value": np.zeros((groups, depth))}

    def step(st, cols, ts, gid, rows, params, out):
        _ema_chain_core(rows, gid, cols[0], params["n"], depth, st["count"], st["total"], st["value"], out)

    return state, step


for _name, _depth, _doc in (("ema", 1, "exponential moving average, a = 2/(n+1), SMA seed (TA-Lib EMA)"),
                            ("dema", 2, "double EMA: 2*EMA - EMA(EMA) (TA-Lib DEMA)"),
                            ("tema", 3, "triple EMA: 3*E1 - 3*E2 + E3 (TA-Lib TEMA)")):
    _state, _step = _ema_chain(_depth)
    register(KernelSpec(name=_name, doc=_doc, inputs=("x",), params=(Param("n", "int", 30, ">0"),),
                        outputs=(Output("value"),), state=_state, step=_step, reference="T",
                        category="smoothing"))


# -- WMA ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _wma_core(start, rows, gid, ts, x, n, head, count, buf, bts, plain, weighted, since, out):
    divider = n * (n + 1) / 2.0
    for p in range(start, len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if count[g] == n:
            i = head[g]
            head[g] = (i + 1) % n
            count[g] -= 1
            weighted[g] -= plain[g]  # every remaining weight drops by one
            plain[g] -= buf[g, i, 0]
            since[g] += 1
        i = (head[g] + count[g]) % n
        buf[g, i, 0] = v
        bts[g, i] = ts[r]
        count[g] += 1
        plain[g] += v
        weighted[g] += count[g] * v
        if since[g] >= n:  # recompute exactly now and then, so rounding cannot accumulate
            s = 0.0
            w = 0.0
            for k in range(count[g]):
                val = buf[g, (head[g] + k) % n, 0]
                s += val
                w += (k + 1) * val
            plain[g] = s
            weighted[g] = w
            since[g] = 0
        if count[g] == n:
            out[r, 0] = weighted[g] / divider
    return len(rows)


def _wma_state(params, groups):
    from .kernel import Window

    st = ring_state(groups, Window(rows=params["n"]))
    st.update(plain=np.zeros(groups), weighted=np.zeros(groups), since=np.zeros(groups, np.int64))
    return st


def _wma_step(st, cols, ts, gid, rows, params, out):
    drive(_wma_core, st, RING, rows, lambda s: (gid, ts, cols[0], params["n"], s["head"], s["count"], s["buf"],
                                                 s["bts"], s["plain"], s["weighted"], s["since"], out))


register(KernelSpec(name="wma", doc="linearly weighted moving average, weights 1..n (TA-Lib WMA)", inputs=("x",),
                    params=(Param("n", "int", 30, ">0"),), outputs=(Output("value"),), state=_wma_state,
                    step=_wma_step, reference="T", category="smoothing"))
