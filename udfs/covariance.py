"""Rolling co-moments of pairs: rolling_cov / rolling_corr / rolling_beta(y, x, n) and
autocorr(x, lag, n), one windowed bivariate Welford core.

Means and co-moments are updated per row with removal, and recomputed two-pass from the window
every `count` removals, as in moments.py, so rounding cannot drift.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import KernelSpec, Output, Param, Window
from .registry import register
from .window import RING, drive, expired, ring_state

COV, CORR, BETA = 0, 1, 2


@njit(cache=True)
def _recompute_pairs(buf, head, count, g, m):
    """m = [mean_y, mean_x, Cyy, Cxx, Cxy] of partition g, two-pass from its window."""
    n = count[g]
    cap = buf.shape[1]
    sy = 0.0
    sx = 0.0
    for k in range(n):
        i = (head[g] + k) % cap
        sy += buf[g, i, 0]
        sx += buf[g, i, 1]
    my = sy / n if n else 0.0
    mx = sx / n if n else 0.0
    cyy = 0.0
    cxx = 0.0
    cxy = 0.0
    for k in range(n):
        i = (head[g] + k) % cap
        dy = buf[g, i, 0] - my
        dx = buf[g, i, 1] - mx
        cyy += dy * dy
        cxx += dx * dx
        cxy += dx * dy
    m[g, 0] = my
    m[g, 1] = mx
    m[g, 2] = cyy
    m[g, 3] = cxx
    m[g, 4] = cxy


@njit(cache=True)
def _emit(m, g, n, mode, ddof, out, r):
    cyy = max(m[g, 2], 0.0)
    cxx = max(m[g, 3], 0.0)
    cxy = m[g, 4]
    if mode == COV:
        if n - ddof > 0:
            out[r, 0] = cxy / (n - ddof)
    elif mode == CORR:
        if cyy > 0.0 and cxx > 0.0:
            out[r, 0] = cxy / math.sqrt(cyy * cxx)
    elif cxx > 0.0:
        out[r, 0] = cxy / cxx


@njit(cache=True)
def pairs_core(start, rows, gid, ts, y, x, rows_n, span_ns, head, count, buf, bts, m, since, lag,
               lag_head, lag_count, lag_buf, last, run, need, out, mode, ddof):
    """Feed (y, x) pairs -- or, with lag > 0, (x_t, x_{t-lag}) -- through a window of pairs."""
    for p in range(start, len(rows)):
        r = rows[p]
        g = gid[r]
        if lag > 0:
            xv = x[r]
            if math.isnan(xv):
                continue
            if lag_count[g] < lag:  # not enough history for a pair yet
                lag_buf[g, (lag_head[g] + lag_count[g]) % lag] = xv
                lag_count[g] += 1
                continue
            yv = xv
            xv = lag_buf[g, lag_head[g]]
            lag_buf[g, lag_head[g]] = yv
            lag_head[g] = (lag_head[g] + 1) % lag
        else:
            yv = y[r]
            xv = x[r]
            if math.isnan(yv) or math.isnan(xv):
                continue
        t = ts[r]
        cap = buf.shape[1]
        while expired(bts, head, count, g, t, rows_n, span_ns, 1):
            i = head[g]
            head[g] = (i + 1) % cap
            count[g] -= 1
            oy = buf[g, i, 0]
            ox = buf[g, i, 1]
            n = count[g]
            if n == 0:
                m[g, :] = 0.0
            else:
                dy = oy - m[g, 0]
                dx = ox - m[g, 1]
                m[g, 0] -= dy / n
                m[g, 1] -= dx / n
                m[g, 2] -= dy * (oy - m[g, 0])
                m[g, 3] -= dx * (ox - m[g, 1])
                m[g, 4] -= dx * (oy - m[g, 0])
            since[g] += 1
        if count[g] == cap:
            return p  # an INTERVAL window needs room; a lag pair is re-formed identically on resume
        i = (head[g] + count[g]) % cap
        buf[g, i, 0] = yv
        buf[g, i, 1] = xv
        bts[g, i] = t
        count[g] += 1
        n = count[g]
        dy = yv - m[g, 0]
        dx = xv - m[g, 1]
        m[g, 0] += dy / n
        m[g, 1] += dx / n
        m[g, 2] += dy * (yv - m[g, 0])
        m[g, 3] += dx * (xv - m[g, 1])
        m[g, 4] += dx * (yv - m[g, 0])
        # Trailing runs of equal values (see moments.py): a side that is flat over the whole
        # window has exactly zero variance and covariance, not rounding residue.
        run[g, 0] = run[g, 0] + 1 if run[g, 0] > 0 and yv == last[g, 0] else 1
        run[g, 1] = run[g, 1] + 1 if run[g, 1] > 0 and xv == last[g, 1] else 1
        last[g, 0] = yv
        last[g, 1] = xv
        if since[g] >= n:
            _recompute_pairs(buf, head, count, g, m)
            since[g] = 0
        if run[g, 0] >= n:
            m[g, 0] = yv
            m[g, 2] = 0.0
            m[g, 4] = 0.0
        if run[g, 1] >= n:
            m[g, 1] = xv
            m[g, 3] = 0.0
            m[g, 4] = 0.0
        if n >= need:
            _emit(m, g, n, mode, ddof, out, r)
    return len(rows)


def pairs_state(params, groups):
    """State for a window of (y, x) pairs; `lag` (autocorr) adds the history that forms them."""
    lag = params.get("lag", 0)
    window: Window = params["n"] if isinstance(params["n"], Window) else Window(rows=params["n"] - lag)
    st = ring_state(groups, window, width=2)
    st.update(m=np.zeros((groups, 5)), since=np.zeros(groups, np.int64),
              lag_head=np.zeros(groups, np.int64), lag_count=np.zeros(groups, np.int64),
              lag_buf=np.zeros((groups, max(lag, 1))), last=np.zeros((groups, 2)),
              run=np.zeros((groups, 2), np.int64))
    return st


def run_pairs(st, y, x, ts, gid, rows, window: Window, mode: int, ddof: int, out, lag: int = 0) -> None:
    """Feed rows through the pair window; out[:, 0] gets COV, CORR or BETA (NaN = NULL)."""
    need = window.rows if window.is_rows else 1
    drive(pairs_core, st, RING, rows, lambda s: (
        gid, ts, y, x, window.rows, window.span_ns, s["head"], s["count"], s["buf"], s["bts"], s["m"],
        s["since"], lag, s["lag_head"], s["lag_count"], s["lag_buf"], s["last"], s["run"], need, out, mode, ddof))


def _step(mode, ddof_param=None):
    def step(st, cols, ts, gid, rows, params, out):
        # autocorr's n is a row count: its lag buffer is consumed per row, which an INTERVAL
        # window's regrow-and-resume would repeat, so INTERVAL windows are not offered there.
        lag = params.get("lag", 0)
        n = params["n"]
        window = n if isinstance(n, Window) else Window(rows=n - lag)
        y, x = (cols[0], cols[0]) if lag else (cols[0], cols[1])
        run_pairs(st, y, x, ts, gid, rows, window, mode, int(params[ddof_param]) if ddof_param else 0, out, lag)

    return step


WINDOW = Param("n", "window", doc="INTEGER rows or INTERVAL")


def _validate_autocorr(params):
    from .kernel import KernelParamError

    if params["lag"] >= params["n"]:
        raise KernelParamError(f"autocorr: parameter 'n' ({params['n']}) must exceed 'lag' ({params['lag']})")


register(KernelSpec(
    name="rolling_cov", doc="covariance of (y, x) over the window (pandas rolling cov, ddof 1 by default)",
    inputs=("y", "x"), params=(WINDOW, Param("ddof", "int", 1, ">=0")), outputs=(Output("value"),),
    state=pairs_state, step=_step(COV, "ddof"), growable=RING))
register(KernelSpec(
    name="rolling_corr", doc="Pearson correlation of (y, x) over the window; NULL when either is flat",
    inputs=("y", "x"), params=(WINDOW,), outputs=(Output("value"),), state=pairs_state, step=_step(CORR),
    growable=RING))
register(KernelSpec(
    name="rolling_beta", doc="regression slope of y on x over the window: cov(y, x) / var(x)",
    inputs=("y", "x"), params=(WINDOW,), outputs=(Output("value"),), state=pairs_state, step=_step(BETA),
    growable=RING))
register(KernelSpec(
    name="autocorr", doc="Pearson correlation of (x_t, x_{t-lag}) pairs inside the last n rows (pandas autocorr)",
    inputs=("x",), params=(Param("lag", "int", 1, ">0"), Param("n", "int", 100, ">1")),
    outputs=(Output("value"),), state=pairs_state, step=_step(CORR), validate=_validate_autocorr))
