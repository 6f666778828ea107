"""Risk and guards: CUSUM change detection, historical VaR / CVaR and rolling quantiles,
drawdowns, and expanding (whole partition so far) mean / variance."""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import Fusion, KernelSpec, Output, Param, Window
from .registry import register
from .volatility import WINDOW
from .window import RING, drive, ring_state


# -- CUSUM ----------------------------------------------------------------------------------------
@njit(cache=True)
def _cusum_core(rows, gid, x, k, h, target, has_target, n_seen, shift, mean, s_pos, s_neg, out):
    """A partition's scalars live in locals while its rows follow one another, as in `moments_core`."""
    cur = -1
    n = 0
    sh = mu = sp = sn = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                n_seen[cur], shift[cur], mean[cur], s_pos[cur], s_neg[cur] = n, sh, mu, sp, sn
            cur = g
            n, sh, mu, sp, sn = n_seen[g], shift[g], mean[g], s_pos[g], s_neg[g]
        if n == 0:
            sh = v  # the running mean is kept as mean(x - x_1): small, so it rounds finely
        if has_target or n > 0:
            d = (v - target) if has_target else (v - sh) - mu
            sp = max(0.0, sp + d - k)
            sn = max(0.0, sn - d - k)
            out[r, 0] = max(sp, sn)
            if sp > h:
                out[r, 1] = 1.0
                sp = 0.0
                sn = 0.0
            elif sn > h:
                out[r, 1] = -1.0
                sp = 0.0
                sn = 0.0
            else:
                out[r, 1] = 0.0
        # The reference mean is causal: x_t joins it only after x_t was judged against it.
        n += 1
        mu += ((v - sh) - mu) / n
    if cur >= 0:
        n_seen[cur], shift[cur], mean[cur], s_pos[cur], s_neg[cur] = n, sh, mu, sp, sn


def _cusum_state(params, groups):
    return {"n_seen": np.zeros(groups, np.int64), "shift": np.zeros(groups), "mean": np.zeros(groups),
            "s_pos": np.zeros(groups), "s_neg": np.zeros(groups)}


def _cusum_step(state, cols, ts, gid, rows, params, out):
    target = params["target"]
    _cusum_core(rows, gid, cols[0], params["k"], params["h"], 0.0 if target is None else target,
                target is not None, state["n_seen"], state["shift"], state["mean"], state["s_pos"], state["s_neg"], out)


register(KernelSpec(
    name="cusum",
    doc="two-sided Page CUSUM of x - m (m = target, or the causal mean of the previous values: the first "
        "row is NULL); stat = max(S+, S-) before reset; alarm +1/-1 when S+/S- > h, then both reset to 0",
    inputs=("x",),
    params=(Param("k", "float", check=">=0", doc="allowance (slack) per row"),
            Param("h", "float", check=">0", doc="decision threshold"),
            Param("target", "float", None, doc="reference level; NULL: the mean of the previous values")),
    outputs=(Output("stat"), Output("alarm", "INTEGER")), state=_cusum_state, step=_cusum_step,
    category="risk", field_aliases={"cusum_stat": "stat", "cusum_alarm": "alarm"},
    examples=({"k": 0.5, "h": 5.0}, {"k": 0.5, "h": 5.0, "target": 100.0})))


# -- order statistics over a window: quantile, median, historical VaR / CVaR --------------------------
@njit(cache=True, inline="always")
def _unroll(srt, buf, g, h, m):
    """Partition g's m window values in arrival order (the ring from slot h) to srt[g, :m]."""
    cap = buf.shape[1]
    for k in range(m):
        srt[g, k] = buf[g, h, 0]
        h = h + 1 if h + 1 < cap else 0


@njit(cache=True, inline="always")
def _put(head, count, srt_head, g, h, m):
    """A partition's ring position back to the state arrays; its sorted values are in step with it."""
    head[g] = h
    count[g] = m
    srt_head[g] = h


SMALL_WINDOW = 64  # sorted values up to which a linear scan beats a binary search and a shift


@njit(cache=True, inline="always")
def _rank(srt, g, n, v, or_equal):
    """How many of the sorted srt[g, :n] are < v (<= v if `or_equal`): where v goes among them.
    A few values are scanned (one mispredicted branch, at the end), more are binary searched.
    (A branchless search was no faster: LLVM turns its conditional moves back into branches.)"""
    if n <= SMALL_WINDOW:
        j = 0
        while j < n and ((srt[g, j] <= v) if or_equal else (srt[g, j] < v)):
            j += 1
        return j
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if (srt[g, mid] <= v) if or_equal else (srt[g, mid] < v):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def _shift_down(srt, g, a, b):
    """srt[g, a:b] = srt[g, a+1:b+1]. Over unsigned indices: numba then knows no index is negative
    (no wraparound to add) and the loop vectorizes (4-7x faster than with signed ones), but for a
    few values the vectorized loop's set-up costs more than it saves (3 ns a row of a 5-row
    window; `_shift_up` measured no slower without the short path)."""
    if b - a < 8:
        for j in range(a, b):
            srt[g, j] = srt[g, j + 1]
    else:
        one = np.uint64(1)
        j = np.uint64(a)
        stop = np.uint64(b)
        while j < stop:
            srt[g, j] = srt[g, j + one]
            j += one


@njit(cache=True, inline="always")
def _shift_up(srt, g, a, b):
    """srt[g, a+1:b+1] = srt[g, a:b], counting down (unsigned, as `_shift_down`)."""
    one = np.uint64(1)
    j = np.uint64(b)
    stop = np.uint64(a)
    while j > stop:
        srt[g, j] = srt[g, j - one]
        j -= one


@njit(cache=True, inline="always")
def _insert(srt, g, n, v):
    """v into the sorted srt[g, :n], after the values equal to it. Among a few values it moves down
    from the end one place at a time (the search and the shift in one loop)."""
    if n <= SMALL_WINDOW:
        j = n
        while j > 0 and srt[g, j - 1] > v:
            srt[g, j] = srt[g, j - 1]
            j -= 1
    else:
        j = _rank(srt, g, n, v, True)
        _shift_up(srt, g, j, n)
    srt[g, j] = v


@njit(cache=True, inline="always")
def _remove(srt, g, n, old):
    """One value equal to old (which is among them) out of the sorted srt[g, :n]."""
    _shift_down(srt, g, _rank(srt, g, n - 1, old, False), n - 1)


@njit(cache=True, inline="always")
def _replace(srt, g, n, old, v):
    """One value equal to old out of the sorted srt[g, :n], v in, after the values equal to it."""
    j = _rank(srt, g, n, old, False)  # old's place (first value >= old: old or an equal one)
    if n <= SMALL_WINDOW:  # v moves from there one place at a time, up or down
        while j + 1 < n and srt[g, j + 1] <= v:
            srt[g, j] = srt[g, j + 1]
            j += 1
        while j > 0 and srt[g, j - 1] > v:
            srt[g, j] = srt[g, j - 1]
            j -= 1
    else:
        lo = _rank(srt, g, n, v, True)  # just after the last value <= v
        if lo > j:  # v goes up: the values between move down one
            _shift_down(srt, g, j, lo - 1)
            j = lo - 1
        else:  # v goes down (or stays): the values between move up one
            _shift_up(srt, g, lo, j)
            j = lo
    srt[g, j] = v


@njit(cache=True)
def _order_core(start, rows, gid, ts, x, rows_n, span_ns, q, head, count, buf, bts, srt, srt_head, out):
    """Each partition keeps its window twice: a ring (arrival order, for eviction) and a sorted array
    srt[g, :count]. Values find their place by binary search (O(log n)) and the values between the
    old and the new place move by one: a memmove of at most n doubles, accepted for order statistics
    (cheaper than a tree at the window sizes used here). A full INTEGER window replaces its oldest
    value in one move. (VaR and CVaR read only the low tail: `_tail_core` keeps just that.)

    The shifts (`_shift_down`, `_shift_up`) vectorize: with the shift down still a scalar loop, a
    1000-row window took 420-470 ns a row instead of 270. Up to SMALL_WINDOW values, scans beat
    searches: in a full window the new value moves from the old one's place one step at a time
    (20 rows: 63 instead of 78 ns a row; 250 rows that way took 265 instead of 150).

    srt is declared growable so that its capacity always follows the ring's; growing or saving the
    ring unrolls it (head -> 0), which scrambles srt unless head was already 0. srt_head[g] records
    head[g] as of srt's last update: when they differ srt is rebuilt from the ring (sorted once, rare).

    A partition's head and count live in locals while its rows follow one another (the store's
    normal order) and go back to the state arrays when another partition's row comes, as in
    `moments_core`: a round trip through memory on every row is a large part of a row's time.
    """
    cap = buf.shape[1]
    cur = -1
    h = m = 0
    for p in range(start, len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        t = ts[r]
        if g != cur:
            if cur >= 0:
                _put(head, count, srt_head, cur, h, m)
            cur = g
            h = head[g]
            m = count[g]
            if srt_head[g] != h:
                _unroll(srt, buf, g, h, m)
                srt[g, :m].sort()
        if rows_n > 0 and m == rows_n:
            # A full INTEGER window: v replaces the oldest value, in the ring and in the sorted array.
            old = buf[g, h, 0]
            buf[g, h, 0] = v
            bts[g, h] = t
            h = h + 1 if h + 1 < cap else 0
            _replace(srt, g, m, old, v)
        else:
            while m > 0 and (m >= rows_n if rows_n > 0 else bts[g, h] <= t - span_ns):
                old = buf[g, h, 0]
                h = h + 1 if h + 1 < cap else 0
                _remove(srt, g, m, old)
                m -= 1
            if m == cap:
                _put(head, count, srt_head, g, h, m)
                return p  # an INTERVAL window needs more room: `drive` grows it and resumes here
            _insert(srt, g, m, v)
            i = h + m
            if i >= cap:
                i -= cap
            buf[g, i, 0] = v
            bts[g, i] = t
            m += 1
            if rows_n > 0 and m < rows_n:
                continue  # NULL until an INTEGER window is full
        out[r, 0] = _linear_quantile(srt, g, m, q)
    if cur >= 0:
        _put(head, count, srt_head, cur, h, m)
    return len(rows)


def _order_state(params, groups):
    state = ring_state(groups, params["n"])
    state.update(srt=np.zeros((groups, state["buf"].shape[1])), srt_head=np.zeros(groups, np.int64))
    return state


ORDER_GROWABLE = (*RING, "srt")


def _order_step(q_param):
    def step(state, cols, ts, gid, rows, params, out):
        win: Window = params["n"]
        q = params[q_param] if q_param else 0.5
        drive(_order_core, state, ORDER_GROWABLE, rows, lambda s: (
            gid, ts, cols[0], win.rows, win.span_ns, q, s["head"], s["count"], s["buf"], s["bts"],
            s["srt"], s["srt_head"], out))

    return step


def _order(name, doc, params, q_param=None, examples=()):
    register(KernelSpec(
        name=name, doc=doc, inputs=("x",), params=params, outputs=(Output("value"),), state=_order_state,
        step=_order_step(q_param), category="risk", growable=ORDER_GROWABLE, examples=examples))


@njit(cache=True)
def _tail_core(start, rows, gid, ts, x, rows_n, span_ns, alpha, var_col, cvar_col, head, count, buf, bts, srt,
               srt_head, srt_n, out):
    """VaR and CVaR read only the low tail of the window, so each partition keeps, besides its ring,
    just the srt_n[g] smallest window values, sorted, in srt[g, :srt_n[g]]: a few dozen values
    instead of the whole window sorted (the memmoves of a 250-row sorted window were 200 ns a row).

    The set stays exact: a value leaving the window that is <= the set's largest is (one copy of)
    a member, so it leaves the set; a value entering below the set's largest joins it (and the
    largest member drops out above the size limit); when the set holds fewer values than the
    quantile reads, it is rebuilt by sorting the ring (rare: the limit leaves slack).

    srt follows the ring's capacity (growable); growing or saving the ring unrolls it (head -> 0),
    so srt_head[g] records head[g] as of srt's last update, and a mismatch means rebuild.

    VaR goes to out[:, var_col], CVaR to out[:, cvar_col]; a column of -1 is not computed (both
    are, in one pass, when the engine fuses historical_var and historical_cvar of one input).

    A partition's head, count and set size live in locals while its rows follow one another, as
    in `moments_core`.
    """
    cap = buf.shape[1]
    cur = -1
    h = m = nl = 0
    for p in range(start, len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        t = ts[r]
        if g != cur:
            if cur >= 0:
                _put(head, count, srt_head, cur, h, m)
                srt_n[cur] = nl
            cur = g
            h = head[g]
            m = count[g]
            nl = srt_n[g] if srt_head[g] == h else 0
        while m > 0 and (m >= rows_n if rows_n > 0 else bts[g, h] <= t - span_ns):
            old = buf[g, h, 0]
            h = h + 1 if h + 1 < cap else 0
            m -= 1
            if nl > 0 and old <= srt[g, nl - 1]:
                _remove(srt, g, nl, old)
                nl -= 1
        if m == cap:
            _put(head, count, srt_head, g, h, m)
            srt_n[g] = nl
            return p  # an INTERVAL window needs more room: `drive` grows it and resumes here
        # Enter v: into the set when the set is the whole window or v is below its largest member.
        if nl == m or (nl > 0 and v < srt[g, nl - 1]):
            _insert(srt, g, nl, v)
            nl += 1
        i = h + m
        if i >= cap:
            i -= cap
        buf[g, i, 0] = v
        bts[g, i] = t
        m += 1
        f = int(math.floor((m - 1) * alpha))
        need = min(m, f + 2)  # the quantile reads srt[f] and srt[f + 1]
        limit = min(m, 2 * need + 32)  # slack: a trending window loses a member on most rows
        if nl < need:
            _unroll(srt, buf, g, h, m)
            if limit < m:  # the `limit` smallest to the front, then only they are sorted
                srt[g, :m] = np.partition(srt[g, :m], limit - 1)
            srt[g, :limit].sort()
            nl = limit
        elif nl > limit:
            nl = limit
        if rows_n > 0 and m < rows_n:
            continue  # NULL until an INTEGER window is full
        qv = _linear_quantile(srt, g, m, alpha)
        if var_col >= 0:
            out[r, var_col] = -qv
        if cvar_col < 0:
            continue
        # CVaR: the mean of the window values <= qv, ties of qv included. The count of those starts
        # after srt[g, f] (a member: nl >= need) when that one is <= qv, the sorted ones before it
        # then being too: the scan from 0 ended at a place that moves from row to row, a
        # mispredicted branch on most rows. The sum is added up again on each row, in sorted order:
        # a running sum would round differently, and prefix sums kept from row to row were no
        # faster (the additions overlap with the next row's work).
        k = f + 1 if srt[g, f] <= qv else 0
        while k < nl and srt[g, k] <= qv:
            k += 1
        total = 0.0
        for j in range(k):
            total += srt[g, j]
        if k == nl and nl < m:
            # Ties of qv may continue beyond the set (its largest member is then qv itself): they
            # come last in sorted order, so they are added last, one by one. The sum is then the
            # same whatever the set's size, which differs between one pass and resumed batches.
            ties = 0
            j = h
            for _ in range(m):
                if buf[g, j, 0] == qv:
                    ties += 1
                j = j + 1 if j + 1 < cap else 0
            i = nl - 1
            while i >= 0 and srt[g, i] == qv:
                ties -= 1
                i -= 1
            for _ in range(ties):
                total += qv
                k += 1
        if k:  # none is <= qv only when qv is NaN (a window holding both infinities): NULL
            out[r, cvar_col] = -total / k
    if cur >= 0:
        _put(head, count, srt_head, cur, h, m)
        srt_n[cur] = nl
    return len(rows)


@njit(cache=True, inline="always")
def _linear_quantile(srt, g, m, q):
    """numpy's default ("linear") quantile of the sorted srt[g, :m], same arithmetic: index (m-1)q,
    then numpy's _lerp."""
    vi = (m - 1) * q
    f = int(math.floor(vi))
    if vi >= m - 1:
        return srt[g, m - 1]
    gamma = vi - f
    a = srt[g, f]
    b = srt[g, f + 1]
    d = b - a
    return b - d * (1.0 - gamma) if gamma >= 0.5 else a + d * gamma


def _tail_state(params, groups):
    state = _order_state(params, groups)
    state["srt_n"] = np.zeros(groups, np.int64)
    return state


def _tail_step(which: list[str]):
    """historical_var / historical_cvar, or (engine fusion) both in one pass, in the order of `which`."""
    var_col = which.index("var") if "var" in which else -1
    cvar_col = which.index("cvar") if "cvar" in which else -1

    def step(state, cols, ts, gid, rows, params, out):
        win: Window = params["n"]
        drive(_tail_core, state, ORDER_GROWABLE, rows, lambda s: (
            gid, ts, cols[0], win.rows, win.span_ns, params["alpha"], var_col, cvar_col, s["head"], s["count"],
            s["buf"], s["bts"], s["srt"], s["srt_head"], s["srt_n"], out))

    return step


_TAIL_FUSION = Fusion("historical_tail", key=lambda params: (params["alpha"], params["n"]),
                      step=lambda members: _tail_step([spec.name.removeprefix("historical_") for spec, _ in members]))


def _tail(name, doc):
    register(KernelSpec(
        name=name, doc=doc, inputs=("x",), params=(ALPHA, VAR_WINDOW), outputs=(Output("value"),),
        state=_tail_state, step=_tail_step([name.removeprefix("historical_")]), category="risk",
        growable=ORDER_GROWABLE, fusion=_TAIL_FUSION))


ALPHA = Param("alpha", "float", 0.05, "(0,1)", "tail probability")
VAR_WINDOW = Param("n", "window", 250, doc="INTEGER rows or INTERVAL")
_tail("historical_var", "historical VaR: -quantile_alpha of the window (numpy linear interpolation)")
_tail("historical_cvar", "historical CVaR (expected shortfall): -mean of the window values <= quantile_alpha")
_order("rolling_quantile", "q-quantile over the window (numpy linear interpolation)",
       (Param("q", "float", check="[0,1]", doc="quantile level"), WINDOW), "q")
_order("rolling_median", "median over the window", (WINDOW,))


# -- drawdown -----------------------------------------------------------------------------------------
@njit(cache=True)
def _drawdown_core(rows, gid, x, want_max, peak, worst, seen, out):
    """A partition's scalars live in locals while its rows follow one another, as in `moments_core`."""
    cur = -1
    seen_g = 0
    peak_g = worst_g = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                peak[cur], worst[cur], seen[cur] = peak_g, worst_g, seen_g
            cur = g
            peak_g, worst_g, seen_g = peak[g], worst[g], seen[g]
        if seen_g == 0 or v > peak_g:
            peak_g = v
        seen_g = 1
        if peak_g <= 0.0:
            continue  # a drawdown from a peak <= 0 has no meaning: NULL
        dd = v / peak_g - 1.0
        if want_max:
            if math.isnan(worst_g) or dd < worst_g:
                worst_g = dd
            out[r, 0] = worst_g
        else:
            out[r, 0] = dd
    if cur >= 0:
        peak[cur], worst[cur], seen[cur] = peak_g, worst_g, seen_g


def _drawdown_state(params, groups):
    return {"peak": np.zeros(groups), "worst": np.full(groups, np.nan), "seen": np.zeros(groups, np.int64)}


def _drawdown_step(want_max):
    def step(state, cols, ts, gid, rows, params, out):
        _drawdown_core(rows, gid, cols[0], want_max, state["peak"], state["worst"], state["seen"], out)

    return step


register(KernelSpec(
    name="drawdown", doc="equity / running max - 1 (NULL while the running max <= 0)", inputs=("equity",),
    params=(), outputs=(Output("value"),), state=_drawdown_state, step=_drawdown_step(False), category="risk"))
register(KernelSpec(
    name="max_drawdown", doc="running minimum of drawdown(equity): the worst drawdown so far", inputs=("equity",),
    params=(), outputs=(Output("value"),), state=_drawdown_state, step=_drawdown_step(True), category="risk"))


# -- expanding moments ---------------------------------------------------------------------------------
E_MEAN, E_VAR, E_STD = 0, 1, 2


@njit(cache=True)
def _expanding_core(rows, gid, x, mode, ddof, count, shift, mean, m2, out):
    """Welford over x - x_1 (the partition's first value): the mean stays small and rounds finely.
    A partition's scalars live in locals while its rows follow one another, as in `moments_core`."""
    cur = -1
    n = 0
    sh = mu = s2 = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                count[cur], shift[cur], mean[cur], m2[cur] = n, sh, mu, s2
            cur = g
            n, sh, mu, s2 = count[g], shift[g], mean[g], m2[g]
        n += 1
        if n == 1:
            sh = v
        v -= sh
        d = v - mu
        mu += d / n
        s2 += d * (v - mu)
        if mode == E_MEAN:
            out[r, 0] = sh + mu
        elif n > ddof:
            var = max(s2, 0.0) / (n - ddof)
            out[r, 0] = var if mode == E_VAR else math.sqrt(var)
    if cur >= 0:
        count[cur], shift[cur], mean[cur], m2[cur] = n, sh, mu, s2


def _expanding_state(params, groups):
    return {"count": np.zeros(groups, np.int64), "shift": np.zeros(groups), "mean": np.zeros(groups),
            "m2": np.zeros(groups)}


def _expanding_step(mode):
    def step(state, cols, ts, gid, rows, params, out):
        _expanding_core(rows, gid, cols[0], mode, params.get("ddof", 0), state["count"], state["shift"], state["mean"],
                        state["m2"], out)

    return step


DDOF = Param("ddof", "int", 1, ">=0", "delta degrees of freedom")
for _name, _mode, _params, _doc in (
        ("expanding_mean", E_MEAN, (), "mean of the partition so far (Welford)"),
        ("expanding_var", E_VAR, (DDOF,), "variance of the partition so far (Welford, ddof 1 by default)"),
        ("expanding_std", E_STD, (DDOF,), "standard deviation of the partition so far (Welford, ddof 1 by default)")):
    register(KernelSpec(name=_name, doc=_doc, inputs=("x",), params=_params, outputs=(Output("value"),),
                        state=_expanding_state, step=_expanding_step(_mode), category="statistics"))
