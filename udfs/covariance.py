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
from .window import RING, drive, ring_state

COV, CORR, BETA = 0, 1, 2


@njit(cache=True)
def _recompute_pairs(buf, g, h, n):
    """(mean_y, mean_x, Cyy, Cxx, Cxy) of partition g's window (n pairs from slot h), two-pass."""
    cap = buf.shape[1]
    sy = 0.0
    sx = 0.0
    i = h
    for _ in range(n):
        sy += buf[g, i, 0]
        sx += buf[g, i, 1]
        i = i + 1 if i + 1 < cap else 0
    my = sy / n if n else 0.0
    mx = sx / n if n else 0.0
    cyy = 0.0
    cxx = 0.0
    cxy = 0.0
    i = h
    for _ in range(n):
        dy = buf[g, i, 0] - my
        dx = buf[g, i, 1] - mx
        cyy += dy * dy
        cxx += dx * dx
        cxy += dx * dy
        i = i + 1 if i + 1 < cap else 0
    return my, mx, cyy, cxx, cxy


@njit(cache=True, inline="always")
def _emit(cyy, cxx, cxy, n, mode, ddof, out, r):
    cyy = max(cyy, 0.0)
    cxx = max(cxx, 0.0)
    if mode == COV:
        if n - ddof > 0:
            out[r, 0] = cxy / (n - ddof)
    elif mode == CORR:
        if cyy > 0.0 and cxx > 0.0:
            out[r, 0] = cxy / math.sqrt(cyy * cxx)
    elif cxx > 0.0:
        out[r, 0] = cxy / cxx


@njit(cache=True, inline="always")
def _load(g, head, count, m, since, lag_head, lag_count, last, run):
    return (head[g], count[g], m[g, 0], m[g, 1], m[g, 2], m[g, 3], m[g, 4], since[g], lag_head[g],
            lag_count[g], last[g, 0], last[g, 1], run[g, 0], run[g, 1])


@njit(cache=True, inline="always")
def _save(g, head, count, m, since, lag_head, lag_count, last, run,
          h, c, my, mx, cyy, cxx, cxy, since_g, lh, lc, last_y, last_x, run_y, run_x):
    head[g], count[g], since[g], lag_head[g], lag_count[g] = h, c, since_g, lh, lc
    m[g, 0], m[g, 1], m[g, 2], m[g, 3], m[g, 4] = my, mx, cyy, cxx, cxy
    last[g, 0], last[g, 1], run[g, 0], run[g, 1] = last_y, last_x, run_y, run_x


@njit(cache=True)
def pairs_core(start, rows, gid, ts, y, x, rows_n, span_ns, head, count, buf, bts, m, since, lag,
               lag_head, lag_count, lag_buf, last, run, need, out, mode, ddof):
    """Feed (y, x) pairs -- or, with lag > 0, (x_t, x_{t-lag}) -- through a window of pairs.

    A partition's scalars (ring head and count, m = [mean_y, mean_x, Cyy, Cxx, Cxy], the lag ring's
    head and count, runs) live in locals while its rows follow one another (the store's normal
    order) and go back to the state arrays when another partition's row comes, and at the end: a
    round trip through memory on every update (outputs may alias them) was much of a row's time."""
    cap = buf.shape[1]
    cur = -1
    h = c = since_g = lh = lc = run_y = run_x = 0
    my = mx = cyy = cxx = cxy = last_y = last_x = 0.0
    stop = len(rows)
    for p in range(start, len(rows)):
        r = rows[p]
        xv = x[r]
        yv = xv if lag > 0 else y[r]
        if math.isnan(yv) or math.isnan(xv):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                _save(cur, head, count, m, since, lag_head, lag_count, last, run,
                      h, c, my, mx, cyy, cxx, cxy, since_g, lh, lc, last_y, last_x, run_y, run_x)
            cur = g
            (h, c, my, mx, cyy, cxx, cxy, since_g, lh, lc, last_y, last_x, run_y,
             run_x) = _load(g, head, count, m, since, lag_head, lag_count, last, run)
        if lag > 0:
            if lc < lag:  # not enough history for a pair yet
                i = lh + lc
                lag_buf[g, i - lag if i >= lag else i] = xv
                lc += 1
                continue
            xv = lag_buf[g, lh]
            lag_buf[g, lh] = yv
            lh = lh + 1 if lh + 1 < lag else 0  # not `% lag`: an integer division per row
        t = ts[r]
        while c > 0 and (c + 1 > rows_n if rows_n > 0 else bts[g, h] <= t - span_ns):
            oy = buf[g, h, 0]
            ox = buf[g, h, 1]
            h = h + 1 if h + 1 < cap else 0
            c -= 1
            n = c
            if n == 0:
                my = mx = cyy = cxx = cxy = 0.0
            else:
                dy = oy - my
                dx = ox - mx
                my -= dy / n
                mx -= dx / n
                cyy -= dy * (oy - my)
                cxx -= dx * (ox - mx)
                cxy -= dx * (oy - my)
            since_g += 1
        if c == cap:
            # An INTERVAL window needs room: `drive` grows it and resumes here, after the state is
            # saved below. (A lag pair would not be re-formed identically, but autocorr's windows
            # are INTEGER, which never fill up.)
            stop = p
            break
        i = h + c
        if i >= cap:
            i -= cap
        buf[g, i, 0] = yv
        buf[g, i, 1] = xv
        bts[g, i] = t
        c += 1
        n = c
        dy = yv - my
        dx = xv - mx
        my += dy / n
        mx += dx / n
        cyy += dy * (yv - my)
        cxx += dx * (xv - mx)
        cxy += dx * (yv - my)
        # Trailing runs of equal values (see moments.py): a side that is flat over the whole
        # window has exactly zero variance and covariance, not rounding residue.
        run_y = run_y + 1 if run_y > 0 and yv == last_y else 1
        run_x = run_x + 1 if run_x > 0 and xv == last_x else 1
        last_y = yv
        last_x = xv
        if since_g >= n:
            my, mx, cyy, cxx, cxy = _recompute_pairs(buf, g, h, n)
            since_g = 0
        if run_y >= n:
            my = yv
            cyy = 0.0
            cxy = 0.0
        if run_x >= n:
            mx = xv
            cxx = 0.0
            cxy = 0.0
        if n >= need:
            _emit(cyy, cxx, cxy, n, mode, ddof, out, r)
    if cur >= 0:
        _save(cur, head, count, m, since, lag_head, lag_count, last, run,
              h, c, my, mx, cyy, cxx, cxy, since_g, lh, lc, last_y, last_x, run_y, run_x)
    return stop


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
