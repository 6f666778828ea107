"""Rolling mean / variance family: one windowed core, many kernels.

Shifted sums with removal keep each row O(1); every `count` removals they are re-anchored on the
window's mean, two-pass from the buffer (amortised O(1)), so rounding cannot drift over 10M+ rows
the way running sums of squares of raw prices do.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import Fusion, KernelSpec, Output, Param, Window
from .registry import register
from .window import RING, drive, ring_state

MEAN, VAR, STD, ZSCORE, SUM, BANDS = 0, 1, 2, 3, 4, 5
FUSED_MAX = 4  # kernels one pass computes together
SQUARE_INPUT = 1  # transform: feed x*x (realized variance)


@njit(cache=True, inline="always")
def _anchored_sums(buf, g, h, n):
    """Sums of (x - K) and (x - K)^2 over partition g's window, K its mean, two-pass (the ring may
    wrap): the re-anchoring of `moments_core`."""
    cap = buf.shape[1]
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
    return k, a, b


@njit(cache=True, inline="always")
def _emit(out, r, c0, mode, ddof, k_up, k_dn, v, mu, q, n, sh, a1):
    if mode == MEAN:
        out[r, c0] = mu
    elif mode == SUM:
        out[r, c0] = sh * n + a1
    elif mode == VAR or mode == STD:
        if n - ddof > 0:
            var = q / (n - ddof)
            out[r, c0] = var if mode == VAR else math.sqrt(var) * k_up
    elif mode == ZSCORE:
        if q > 0.0:
            out[r, c0] = (v - mu) / math.sqrt(q / n)
    elif mode == BANDS:
        sd = math.sqrt(q / n)
        out[r, c0] = mu + k_up * sd
        out[r, c0 + 1] = mu
        out[r, c0 + 2] = mu - k_dn * sd


@njit(cache=True)
def moments_core(start, rows, gid, ts, x, rows_n, span_ns, head, count, buf, bts, shift, s1, s2, since,
                 last, run, out, modes, ddofs, k_up, k_dn, cols, transform):
    """Sums of (x - K) and (x - K)^2 with K near the window's mean: the rounding of a variance then
    scales with the window's own spread, not with the price level (Welford's updates lost 1e-9 on
    a window of 29 equal prices and one other).

    A partition's scalars live in locals while its rows follow one another (the store's normal
    order) and go back to the state arrays when another partition's row comes: a round trip
    through memory on every update was half of the time per row.

    Output j (`modes[j]`, with `ddofs[j]`, `k_up[j]`, `k_dn[j]`) goes to out[:, cols[j]...]: a
    kernel alone is one output, kernels of one input and window fused by the engine are up to
    FUSED_MAX (a mode of -1 ends the list)."""
    m_0, m_1, m_2, m_3 = modes[0], modes[1], modes[2], modes[3]
    d_0, d_1, d_2, d_3 = ddofs[0], ddofs[1], ddofs[2], ddofs[3]
    u_0, u_1, u_2, u_3 = k_up[0], k_up[1], k_up[2], k_up[3]
    l_0, l_1, l_2, l_3 = k_dn[0], k_dn[1], k_dn[2], k_dn[3]
    c_0, c_1, c_2, c_3 = cols[0], cols[1], cols[2], cols[3]
    cur = -1
    h = c = since_g = run_g = 0
    sh = a1 = a2 = last_g = 0.0
    cap = buf.shape[1]
    ring = buf[:0, 0, 0]  # partition g's ring values and times, while its rows follow one another
    times = bts.ravel()[:0]
    # What the outputs read: a mean alone needs no variance, a sum neither (two divisions a row).
    need_mu = False
    need_q = False
    for mode in modes:
        need_mu |= mode == MEAN or mode == ZSCORE or mode == BANDS
        need_q |= mode == VAR or mode == STD or mode == ZSCORE or mode == BANDS
    for p in range(start, len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        if transform == SQUARE_INPUT:
            v = v * v
        g = gid[r]
        t = ts[r]
        if g != cur:
            if cur >= 0:
                head[cur], count[cur], since[cur], run[cur] = h, c, since_g, run_g
                shift[cur], s1[cur], s2[cur], last[cur] = sh, a1, a2, last_g
            cur = g
            h, c, since_g, run_g = head[g], count[g], since[g], run[g]
            sh, a1, a2, last_g = shift[g], s1[g], s2[g], last[g]
            ring = buf[g, :, 0]
            times = bts[g]
        # Evict rows that leave the window, then make room (INTERVAL windows may need to grow).
        while c > 0 and (c + 1 > rows_n if rows_n > 0 else times[h] <= t - span_ns):
            d = ring[h] - sh
            h = h + 1 if h + 1 < cap else 0  # not `% cap`: an integer division per row
            c -= 1
            a1 -= d
            a2 -= d * d
            since_g += 1
        if c == cap:
            head[g], count[g], since[g], run[g] = h, c, since_g, run_g
            shift[g], s1[g], s2[g], last[g] = sh, a1, a2, last_g
            return p  # an INTERVAL window needs more room: `drive` grows it and resumes here
        if c == 0:
            sh = v
            a1 = 0.0
            a2 = 0.0
        i = h + c
        if i >= cap:
            i -= cap
        ring[i] = v
        times[i] = t
        c += 1
        n = c
        d = v - sh
        a1 += d
        a2 += d * d
        # Trailing run of equal values: when it spans the window, the window is flat exactly, and
        # the variance is 0 rather than whatever rounding residue the updates left behind.
        run_g = run_g + 1 if run_g > 0 and v == last_g else 1
        last_g = v
        if run_g >= n:
            sh = v
            a1 = 0.0
            a2 = 0.0
        elif since_g >= n:
            sh, a1, a2 = _anchored_sums(buf, g, h, n)
            since_g = 0
        if rows_n > 0 and n < rows_n:
            continue  # an INTEGER window gives NULL until it is full
        mu = sh + a1 / n if need_mu else 0.0
        q = a2 - a1 * a1 / n if need_q else 0.0
        if q < 0.0:
            q = 0.0
        # One output per kernel computed in this pass (several when the engine fuses kernels), from
        # scalar slots: a loop over the arrays cost a kernel alone 10 ns a row.
        _emit(out, r, c_0, m_0, d_0, u_0, l_0, v, mu, q, n, sh, a1)
        if m_1 >= 0:
            _emit(out, r, c_1, m_1, d_1, u_1, l_1, v, mu, q, n, sh, a1)
            if m_2 >= 0:
                _emit(out, r, c_2, m_2, d_2, u_2, l_2, v, mu, q, n, sh, a1)
                if m_3 >= 0:
                    _emit(out, r, c_3, m_3, d_3, u_3, l_3, v, mu, q, n, sh, a1)
    if cur >= 0:
        head[cur], count[cur], since[cur], run[cur] = h, c, since_g, run_g
        shift[cur], s1[cur], s2[cur], last[cur] = sh, a1, a2, last_g
    return len(rows)


def _moments_state(params: dict, groups: int) -> dict:
    state = ring_state(groups, params["n"])
    state.update(shift=np.zeros(groups), s1=np.zeros(groups), s2=np.zeros(groups),
                 since=np.zeros(groups, np.int64), last=np.zeros(groups), run=np.zeros(groups, np.int64))
    return state


def _output(spec_mode: int, ddof_param: str | None, fixed_ddof: int, params: dict) -> tuple:
    ddof = int(params[ddof_param]) if ddof_param else fixed_ddof
    return (spec_mode, ddof, float(params.get("nbdevup", params.get("nbdev", 1.0))),
            float(params.get("nbdevdn", 1.0)))


def _run_moments(state, x, ts, gid, rows, win: Window, out, outputs: list[tuple], widths: list[int],
                 transform: int) -> None:
    """One pass over the window writing each of `outputs` (mode, ddof, k_up, k_dn), side by side."""
    unused = [(-1, 0, 1.0, 1.0)] * (FUSED_MAX - len(outputs))
    modes, ddofs, k_up, k_dn = (np.array(v, dtype) for v, dtype in zip(
        zip(*outputs, *unused), (np.int64, np.int64, np.float64, np.float64)))
    cols = np.cumsum([0, *widths[:-1], *[0] * len(unused)])[:FUSED_MAX].astype(np.int64)
    drive(moments_core, state, RING, rows, lambda s: (
        gid, ts, x, win.rows, win.span_ns, s["head"], s["count"], s["buf"], s["bts"],
        s["shift"], s["s1"], s["s2"], s["since"], s["last"], s["run"], out, modes, ddofs, k_up, k_dn, cols,
        transform))


def _moments_step(mode: int, transform: int = 0, ddof_param: str | None = None, fixed_ddof: int = 0):
    def step(state, cols, ts, gid, rows, params, out):
        _run_moments(state, cols[0], ts, gid, rows, params["n"], out,
                     [_output(mode, ddof_param, fixed_ddof, params)], [out.shape[1]], transform)

    return step


def _fused_step(members: list) -> callable:
    """Several kernels of this family over one input and window: one pass of sums for them all."""
    outputs = [_output(*_MEMBERS[spec.name], params) for spec, params in members]
    widths = [len(spec.outputs) for spec, _ in members]

    def step(state, cols, ts, gid, rows, params, out):
        _run_moments(state, cols[0], ts, gid, rows, members[0][1]["n"], out, outputs, widths, 0)

    return step


WINDOW = Param("n", "window", doc="INTEGER rows or INTERVAL")
DDOF = Param("ddof", "int", 1, ">=0", "delta degrees of freedom")


_MEMBERS: dict[str, tuple] = {}  # kernel -> (mode, ddof_param, fixed_ddof), for fused passes
_FUSION = Fusion("moments", key=lambda params: (params["n"],), step=_fused_step, limit=FUSED_MAX)


def _moments(name, doc, mode, *, params=(WINDOW,), outputs=(Output("value"),), reference="P",
             category="statistics", ddof_param=None, fixed_ddof=0, transform=0, field_aliases=None,
             inputs=("x",)):
    if not transform:
        _MEMBERS[name] = (mode, ddof_param, fixed_ddof)
    register(KernelSpec(
        name=name, doc=doc, inputs=inputs, params=tuple(params), outputs=tuple(outputs),
        state=_moments_state, step=_moments_step(mode, transform, ddof_param, fixed_ddof),
        reference=reference, category=category, growable=RING, field_aliases=field_aliases or {},
        fusion=None if transform else _FUSION,
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
