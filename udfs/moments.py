"""Rolling mean / variance family: one windowed core, many kernels.

Shifted sums with removal keep each row O(1); every `count` removals they are re-anchored on the
window's mean, two-pass from the buffer (amortised O(1)), so rounding cannot drift over 10M+ rows
the way running sums of squares of raw prices do.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import KernelSpec, Output, Param, Window
from .registry import register
from .window import RING, drive, expired, ring_state

MEAN, VAR, STD, ZSCORE, SUM, BANDS = 0, 1, 2, 3, 4, 5
SQUARE_INPUT = 1  # transform: feed x*x (realized variance)


@njit(cache=True)
def _recompute(buf, head, count, g, shift, s1, s2):
    """Re-anchor partition g's sums on its window's mean, two-pass (the ring may wrap)."""
    n = count[g]
    cap = buf.shape[1]
    h = head[g]
    first = min(n, cap - h)
    total = 0.0
    for i in range(h, h + first):
        total += buf[g, i, 0]
    for i in range(n - first):
        total += buf[g, i, 0]
    k = total / n if n > 0 else 0.0
    a = 0.0
    b = 0.0
    for i in range(h, h + first):
        d = buf[g, i, 0] - k
        a += d
        b += d * d
    for i in range(n - first):
        d = buf[g, i, 0] - k
        a += d
        b += d * d
    shift[g] = k
    s1[g] = a
    s2[g] = b


@njit(cache=True)
def moments_core(start, rows, gid, ts, x, rows_n, span_ns, head, count, buf, bts, shift, s1, s2, since,
                 last, run, out, mode, ddof, k_up, k_dn, transform):
    """Sums of (x - K) and (x - K)^2 with K near the window's mean: the rounding of a variance then
    scales with the window's own spread, not with the price level (Welford's updates lost 1e-9 on
    a window of 29 equal prices and one other)."""
    for p in range(start, len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        if transform == SQUARE_INPUT:
            v = v * v
        g = gid[r]
        t = ts[r]
        # Evict rows that leave the window, then make room (INTERVAL windows may need to grow).
        cap = buf.shape[1]
        while expired(bts, head, count, g, t, rows_n, span_ns, 1):
            i = head[g]
            head[g] = (i + 1) % cap
            count[g] -= 1
            d = buf[g, i, 0] - shift[g]
            s1[g] -= d
            s2[g] -= d * d
            since[g] += 1
        if count[g] == cap:
            return p  # an INTERVAL window needs more room: `drive` grows it and resumes here
        if count[g] == 0:
            shift[g] = v
            s1[g] = 0.0
            s2[g] = 0.0
        i = (head[g] + count[g]) % cap
        buf[g, i, 0] = v
        bts[g, i] = t
        count[g] += 1
        n = count[g]
        d = v - shift[g]
        s1[g] += d
        s2[g] += d * d
        # Trailing run of equal values: when it spans the window, the window is flat exactly, and
        # the variance is 0 rather than whatever rounding residue the updates left behind.
        run[g] = run[g] + 1 if run[g] > 0 and v == last[g] else 1
        last[g] = v
        if run[g] >= n:
            shift[g] = v
            s1[g] = 0.0
            s2[g] = 0.0
        elif since[g] >= n:
            _recompute(buf, head, count, g, shift, s1, s2)
            since[g] = 0
        if rows_n > 0 and n < rows_n:
            continue  # an INTEGER window gives NULL until it is full
        mu = shift[g] + s1[g] / n
        q = s2[g] - s1[g] * s1[g] / n
        if q < 0.0:
            q = 0.0
        if mode == MEAN:
            out[r, 0] = mu
        elif mode == SUM:
            out[r, 0] = shift[g] * n + s1[g]
        elif mode == VAR or mode == STD:
            if n - ddof > 0:
                var = q / (n - ddof)
                out[r, 0] = var if mode == VAR else math.sqrt(var) * k_up
        elif mode == ZSCORE:
            if q > 0.0:
                out[r, 0] = (v - mu) / math.sqrt(q / n)
        elif mode == BANDS:
            sd = math.sqrt(q / n)
            out[r, 0] = mu + k_up * sd
            out[r, 1] = mu
            out[r, 2] = mu - k_dn * sd
    return len(rows)


def _moments_state(params: dict, groups: int) -> dict:
    state = ring_state(groups, params["n"])
    state.update(shift=np.zeros(groups), s1=np.zeros(groups), s2=np.zeros(groups),
                 since=np.zeros(groups, np.int64), last=np.zeros(groups), run=np.zeros(groups, np.int64))
    return state


def _moments_step(mode: int, transform: int = 0, ddof_param: str | None = None, fixed_ddof: int = 0):
    def step(state, cols, ts, gid, rows, params, out):
        win: Window = params["n"]
        ddof = int(params[ddof_param]) if ddof_param else fixed_ddof
        k_up = float(params.get("nbdevup", params.get("nbdev", 1.0)))
        k_dn = float(params.get("nbdevdn", 1.0))
        drive(moments_core, state, RING, rows, lambda s: (
            gid, ts, cols[0], win.rows, win.span_ns, s["head"], s["count"], s["buf"], s["bts"],
            s["shift"], s["s1"], s["s2"], s["since"], s["last"], s["run"], out, mode, ddof, k_up, k_dn, transform))

    return step


WINDOW = Param("n", "window", doc="INTEGER rows or INTERVAL")
DDOF = Param("ddof", "int", 1, ">=0", "delta degrees of freedom")


def _moments(name, doc, mode, *, params=(WINDOW,), outputs=(Output("value"),), reference="P",
             category="statistics", ddof_param=None, fixed_ddof=0, transform=0, field_aliases=None,
             inputs=("x",)):
    register(KernelSpec(
        name=name, doc=doc, inputs=inputs, params=tuple(params), outputs=tuple(outputs),
        state=_moments_state, step=_moments_step(mode, transform, ddof_param, fixed_ddof),
        reference=reference, category=category, growable=RING, field_aliases=field_aliases or {},
    ))


_moments("rolling_mean", "mean over the window", MEAN)
_moments("rolling_var", "sample variance over the window (ddof 1 by default)", VAR,
         params=(WINDOW, DDOF), ddof_param="ddof")
_moments("rolling_std", "sample standard deviation over the window (ddof 1 by default)", STD,
         params=(WINDOW, DDOF), ddof_param="ddof")
_moments("zscore", "(x - mean) / std over the window including x, ddof 0; NULL when std = 0", ZSCORE)
_moments("sma", "simple moving average (TA-Lib SMA)", MEAN, reference="T", category="smoothing",
         params=(Param("n", "window", 30),))
_moments("stddev", "population standard deviation times nbdev (TA-Lib STDDEV)", STD, reference="T",
         category="momentum", params=(Param("n", "window", 5), Param("nbdev", "float", 1.0)),
         fixed_ddof=0)
_moments("var", "population variance (TA-Lib VAR)", VAR, reference="T", category="momentum",
         params=(Param("n", "window", 5), Param("nbdev", "float", 1.0)), fixed_ddof=0)
_moments("bbands", "Bollinger bands: SMA +/- k population sigmas (TA-Lib BBANDS)", BANDS, reference="T",
         category="momentum",
         params=(Param("n", "window", 20), Param("nbdevup", "float", 2.0), Param("nbdevdn", "float", 2.0)),
         outputs=(Output("upper"), Output("middle"), Output("lower")),
         field_aliases={"bbands_upper": "upper", "bbands_middle": "middle", "bbands_lower": "lower"})
_moments("realized_var", "realized variance: sum of r^2 over the window", SUM, category="volatility",
         transform=SQUARE_INPUT, inputs=("r",))
