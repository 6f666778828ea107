"""Rolling extremes: one monotonic-deque core for rolling_min / rolling_max / donchian (and, from
udfs.momentum, TA-Lib's willr / stoch / aroon).

A partition's window is the usual ring of udfs.window (`head`, `count`, values in `buf`, ts in
`bts`; INTEGER windows fixed, INTERVAL windows grown by `drive`). The max deque (values strictly
decreasing from front to back) and the min deque (strictly increasing) are threaded through that
ring as doubly linked lists: `link` holds, per ring slot, the next and previous deque member of
each, and `ends` the front and back of each deque. Members are named by their row number in the
partition (`seen` counts rows), so links survive the ring being grown or unrolled, and the state
keeps the single-ring layout that `ensure_capacity` and udfs.state save and restore.

A row evicts what leaves the ring (a deque member leaving is that deque's front), pops the back
members it dominates and links itself at the back: every row enters and leaves each deque once,
O(1) amortised, never a rescan of the window. Among equal values the newest stays (a new row pops
equal backs): TA-Lib's tie rule for AROON, which reports how many rows ago the latest extreme was.

A long run of one partition's rows under an INTEGER window (the store's order: each partition's
rows together) skips the deques: van Herk / Gil-Werman takes each window's extreme from a prefix
and a suffix extreme of fixed blocks, three comparisons a row and no data-dependent branch, where
a deque pops an unpredictable number of members (rolling_max over 1M rows: 47 -> 19 ns a row,
most of it now moving values in and out). The ring is left
holding the window as the deques would, and the deques are marked STALE: a later short run (a
live batch) rebuilds them from the ring by replaying its rows, so both paths give the same rows.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import Fusion, KernelSpec, Output, Param, Window
from .registry import register
from .window import RING, drive, ring_state

LINKED = (*RING, "link")  # the growable arrays: ring values (high, low), ts, and the deque links
NEXT_HI, PREV_HI, NEXT_LO, PREV_LO = 0, 1, 2, 3  # link[g, slot, :]
FRONT_HI, BACK_HI, FRONT_LO, BACK_LO = 0, 1, 2, 3  # ends[g, :]; -1 = empty deque
NONE = -1  # a result column not asked for
STALE = -2  # ends[g, 0] after a run went by blocks: partition g's deques must be rebuilt from its ring
# A run of one partition's rows goes by blocks from this many rows on (and at least four windows: it
# copies the window before it and rewrites the ring once).
BLOCK_RUN_ROWS = 512
BLOCK_SEGMENT = 4096  # values a run by blocks takes at a time (with the window before them: in cache)


def deque_state(groups: int, window: Window) -> dict[str, np.ndarray]:
    """The window ring (two values per row: high and low), the deque links, the row counter."""
    state = ring_state(groups, window, width=2)
    state["link"] = np.full((groups, state["buf"].shape[1], 4), -1, np.int64)
    state["seen"] = np.zeros(groups, np.int64)
    state["ends"] = np.full((groups, 4), -1, np.int64)
    return state


@njit(cache=True, inline="always")
def _slot(h, k, oldest, cap):
    """The ring slot of row number k (oldest <= k < oldest + cap; the ring's oldest row is in slot h).
    Unsigned: numba adds no negative-index wraparound to the index arithmetic, which is on the
    critical path of a deque walk (a load's address hangs on it)."""
    j = h + (k - oldest)
    if j >= cap:
        j -= cap
    return np.uint64(j)


@njit(cache=True, inline="always")
def _put(head, count, seen, ends, g, h, cnt, s, front_hi, back_hi, front_lo, back_lo):
    """Partition g's scalars, kept in locals by `extremes_core`, back to the state arrays."""
    head[g] = h
    count[g] = cnt
    seen[g] = s
    ends[g, FRONT_HI] = front_hi
    ends[g, BACK_HI] = back_hi
    ends[g, FRONT_LO] = front_lo
    ends[g, BACK_LO] = back_lo


@njit(cache=True, inline="always")
def _emit(dest, r, c_max, c_min, c_mid, hi_val, lo_val):
    """A row's asked columns of `dest` (NONE: not asked)."""
    if c_max >= 0:
        dest[r, c_max] = hi_val
    if c_min >= 0:
        dest[r, c_min] = lo_val
    if c_mid >= 0:
        dest[r, c_mid] = (hi_val + lo_val) / 2.0


@njit(cache=True)
def extremes_core(start, rows, gid, ts, hi, lo, gate, rows_n, span_ns, head, count, buf, bts, link, seen, ends,
                  dest, c_max, c_min, c_mid, c_max_age, c_min_age):
    """Write dest[r, c_*] for each row r: window max of `hi`, window min of `lo`, their midpoint and
    how many rows ago each extreme was (counting only non-NULL rows).

    A column index of NONE is not written; the max (min) deque is kept only when a max (min) column
    is asked for. A row with `hi`, `lo` or `gate` NaN (`gate`: a kernel's other input, such as the
    close of WILLR) is skipped, state untouched, and gets NaN like a row of an INTEGER window not
    yet full. Returns len(rows), or the position of a row an INTERVAL ring has no room for yet
    (`drive` grows it and resumes there). Pushes and pops are written inline: as calls they cost
    more than the rest of a row.
    """
    want_max = c_max >= 0 or c_max_age >= 0 or c_mid >= 0
    want_min = c_min >= 0 or c_min_age >= 0 or c_mid >= 0
    cap = buf.shape[1]
    # The current partition's scalars live in locals while its rows follow each other, and go back
    # to the state arrays when another partition's row comes (or the call ends): a row would
    # otherwise wait for the previous row's stores of the very same values.
    cur = -1
    h = 0
    cnt = 0
    s = 0
    front_hi = -1
    back_hi = -1
    front_lo = -1
    back_lo = -1
    for p in range(start, len(rows)):
        r = rows[p]
        a = hi[r]
        b = lo[r]
        hi_val = np.nan
        lo_val = np.nan
        hi_age = np.nan
        lo_age = np.nan
        if not (math.isnan(a) or math.isnan(b) or math.isnan(gate[r])):
            g = gid[r]
            if g != cur:
                if cur >= 0:
                    _put(head, count, seen, ends, cur, h, cnt, s, front_hi, back_hi, front_lo, back_lo)
                cur = g
                h = head[g]
                cnt = count[g]
                s = seen[g]
                front_hi = ends[g, FRONT_HI]
                back_hi = ends[g, BACK_HI]
                front_lo = ends[g, FRONT_LO]
                back_lo = ends[g, BACK_LO]
            t = ts[r]
            oldest = s - cnt  # the row number in slot `head`
            # Rows leave the window oldest first; a deque member leaving is that deque's front.
            while cnt > 0 and (cnt + 1 > rows_n if rows_n > 0 else bts[g, h] <= t - span_ns):
                if front_hi == oldest:
                    front_hi = link[g, h, NEXT_HI]
                    if front_hi < 0:
                        back_hi = -1
                if front_lo == oldest:
                    front_lo = link[g, h, NEXT_LO]
                    if front_lo < 0:
                        back_lo = -1
                h = h + 1 if h + 1 < cap else 0
                cnt -= 1
                oldest += 1
            if cnt == cap:  # an INTERVAL window needs more room: `drive` grows it and resumes here
                _put(head, count, seen, ends, g, h, cnt, s, front_hi, back_hi, front_lo, back_lo)
                return p
            i = _slot(h, s, oldest, cap)  # the new row, number s
            buf[g, i, 0] = a
            buf[g, i, 1] = b
            bts[g, i] = t
            cnt += 1
            full = rows_n == 0 or s + 1 >= rows_n  # an INTEGER window gives NULL until it is full
            if want_max:
                k = back_hi
                while k >= oldest:  # drop the members this row dominates (ties too: the newest stays)
                    j = _slot(h, k, oldest, cap)
                    if buf[g, j, 0] > a:
                        link[g, j, NEXT_HI] = s
                        break
                    k = link[g, j, PREV_HI]
                if k < oldest:  # the deque emptied (the front's PREV names a row already gone)
                    k = -1
                    front_hi = s
                link[g, i, PREV_HI] = k
                link[g, i, NEXT_HI] = -1
                back_hi = s
                if full:
                    hi_val = buf[g, _slot(h, front_hi, oldest, cap), 0]
                    hi_age = s - front_hi
            if want_min:
                k = back_lo
                while k >= oldest:
                    j = _slot(h, k, oldest, cap)
                    if buf[g, j, 1] < b:
                        link[g, j, NEXT_LO] = s
                        break
                    k = link[g, j, PREV_LO]
                if k < oldest:
                    k = -1
                    front_lo = s
                link[g, i, PREV_LO] = k
                link[g, i, NEXT_LO] = -1
                back_lo = s
                if full:
                    lo_val = buf[g, _slot(h, front_lo, oldest, cap), 1]
                    lo_age = s - front_lo
            s += 1
        _emit(dest, r, c_max, c_min, c_mid, hi_val, lo_val)
        if c_max_age >= 0:
            dest[r, c_max_age] = hi_age
        if c_min_age >= 0:
            dest[r, c_min_age] = lo_age
    if cur >= 0:
        _put(head, count, seen, ends, cur, h, cnt, s, front_hi, back_hi, front_lo, back_lo)
    return len(rows)


@njit(cache=True, inline="always")
def _newer_extreme(newer, older, is_max):
    """The larger (smaller) of two values, the newer of equal ones, as the deques keep it (-0.0 and
    0.0 compare equal but are different results)."""
    if is_max:
        return newer if newer >= older else older
    return newer if newer <= older else older


@njit(cache=True)
def _sliding_extreme(values, m, n, first, is_max, pre, suf, out):
    """out[k - first] = the max (min) of values[k - n + 1 : k + 1], for first <= k < m (first >= n - 1).

    Blocks of n values from values[0]: a window is the suffix of one block and the prefix of the
    next, and `pre` / `suf` hold every value's running extreme within its block from the block's
    start / down from its end."""
    k = 0
    while k < m:
        stop = min(k + n, m)
        run = values[k]
        pre[k] = run
        for j in range(k + 1, stop):
            run = _newer_extreme(values[j], run, is_max)
            pre[j] = run
        run = values[stop - 1]
        suf[stop - 1] = run
        for j in range(stop - 2, k - 1, -1):
            run = _newer_extreme(run, values[j], is_max)
            suf[j] = run
        k = stop
    for k in range(first, m):
        out[k - first] = _newer_extreme(pre[k], suf[k - n + 1], is_max)


@njit(cache=True, inline="always")
def _unroll_ring(g, head, count, buf, bts, v_hi, v_lo, v_ts):
    """Partition g's window, oldest first, to the front of v_*; returns how many rows it holds."""
    cap = buf.shape[1]
    j = head[g]
    for k in range(count[g]):
        v_hi[k] = buf[g, j, 0]
        v_lo[k] = buf[g, j, 1]
        v_ts[k] = bts[g, j]
        j = j + 1 if j + 1 < cap else 0
    return count[g]


@njit(cache=True)
def _run_by_blocks(rows, p0, p1, g, ts, hi, lo, gate, n, head, count, buf, bts, seen, ends, dest, c_max, c_min,
                   c_mid, v_hi, v_lo, v_ts, at, pre, suf, ext_hi, ext_lo):
    """rows[p0:p1], all of partition g's, under an INTEGER window of n rows, a segment at a time:
    the window before a segment's values and the values themselves in v_* (kept in cache: whole
    runs in fresh arrays took twice as long), each window's extremes by `_sliding_extreme`. Leaves
    the ring holding the last n values (head 0) and the deques STALE. The scratch arrays hold n
    values more than `at` (a segment)."""
    segment = len(at)
    c = _unroll_ring(g, head, count, buf, bts, v_hi, v_lo, v_ts)  # in v_*: the ring's, then the segment's
    done = seen[g]  # values the partition has had before v_*[c]
    p = p0
    while p < p1:
        m = c
        while p < p1 and m - c < segment:
            r = rows[p]
            p += 1
            a = hi[r]
            b = lo[r]
            if math.isnan(a) or math.isnan(b) or math.isnan(gate[r]):
                _emit(dest, r, c_max, c_min, c_mid, np.nan, np.nan)  # skipped, state untouched
                continue
            v_hi[m] = a
            v_lo[m] = b
            v_ts[m] = ts[r]
            at[m - c] = r
            m += 1
        first = max(c, c + n - 1 - done)  # the first value whose window is full (done + k - c + 1 >= n)
        for k in range(c, min(first, m)):
            _emit(dest, at[k - c], c_max, c_min, c_mid, np.nan, np.nan)
        if first < m:
            if c_max >= 0 or c_mid >= 0:
                _sliding_extreme(v_hi, m, n, first, True, pre, suf, ext_hi)
            if c_min >= 0 or c_mid >= 0:
                _sliding_extreme(v_lo, m, n, first, False, pre, suf, ext_lo)
            for k in range(first, m):
                _emit(dest, at[k - c], c_max, c_min, c_mid, ext_hi[k - first], ext_lo[k - first])
        done += m - c
        keep = min(n, m)  # the window so far, to the front: the next segment's, then the ring's
        for k in range(keep):
            v_hi[k] = v_hi[m - keep + k]
            v_lo[k] = v_lo[m - keep + k]
            v_ts[k] = v_ts[m - keep + k]
        c = keep
    for k in range(c):
        buf[g, k, 0] = v_hi[k]
        buf[g, k, 1] = v_lo[k]
        bts[g, k] = v_ts[k]
    head[g] = 0
    count[g] = c
    seen[g] = done
    ends[g, 0] = STALE


@njit(cache=True)
def _rebuild_deques(g, rows_n, head, count, buf, bts, link, seen, ends, want_max, want_min):
    """Partition g's deques, from its ring: the ring's rows pushed again, oldest first, into an
    emptied window (the same row numbers), so the state is the one the deques would have left."""
    c = count[g]
    v_hi = np.empty(c)
    v_lo = np.empty(c)
    v_ts = np.empty(c, np.int64)
    _unroll_ring(g, head, count, buf, bts, v_hi, v_lo, v_ts)
    head[g] = 0
    count[g] = 0
    seen[g] -= c
    ends[g, :] = -1
    scratch = np.empty((c, 2))
    extremes_core(0, np.arange(c), np.full(c, g, np.int64), v_ts, v_hi, v_lo, v_hi, rows_n, 0, head, count, buf,
                  bts, link, seen, ends, scratch, 0 if want_max else NONE, 1 if want_min else NONE, NONE, NONE,
                  NONE)


@njit(cache=True)
def extremes_by_runs(start, rows, gid, ts, hi, lo, gate, rows_n, span_ns, head, count, buf, bts, link, seen, ends,
                     dest, c_max, c_min, c_mid, c_max_age, c_min_age):
    """`extremes_core` for an INTEGER window without ages: each long run of one partition's rows
    by blocks (`_run_by_blocks`), the rest through the deques (rebuilt first where a run by blocks
    left them STALE)."""
    want_max = c_max >= 0 or c_mid >= 0
    want_min = c_min >= 0 or c_mid >= 0
    long_run = max(BLOCK_RUN_ROWS, 4 * rows_n)
    segment = max(BLOCK_SEGMENT, 4 * rows_n)
    # Scratch for runs by blocks, allocated at the first one: a live batch seldom has any.
    v_hi = np.empty(0)
    v_lo = np.empty(0)
    pre = np.empty(0)
    suf = np.empty(0)
    ext_hi = np.empty(0)
    ext_lo = np.empty(0)
    v_ts = np.empty(0, np.int64)
    at = np.empty(0, np.int64)
    p = start
    while p < len(rows):
        g = gid[rows[p]]
        q = p + 1
        while q < len(rows) and gid[rows[q]] == g:
            q += 1
        if q - p >= long_run:
            if len(at) == 0:
                v_hi = np.empty(segment + rows_n)
                v_lo = np.empty(segment + rows_n)
                pre = np.empty(segment + rows_n)
                suf = np.empty(segment + rows_n)
                ext_hi = np.empty(segment)
                ext_lo = np.empty(segment)
                v_ts = np.empty(segment + rows_n, np.int64)
                at = np.empty(segment, np.int64)
            _run_by_blocks(rows, p, q, g, ts, hi, lo, gate, rows_n, head, count, buf, bts, seen, ends, dest, c_max,
                           c_min, c_mid, v_hi, v_lo, v_ts, at, pre, suf, ext_hi, ext_lo)
        else:
            if ends[g, 0] == STALE:
                _rebuild_deques(g, rows_n, head, count, buf, bts, link, seen, ends, want_max, want_min)
            extremes_core(0, rows[p:q], gid, ts, hi, lo, gate, rows_n, span_ns, head, count, buf, bts, link, seen,
                          ends, dest, c_max, c_min, c_mid, c_max_age, c_min_age)
        p = q
    return len(rows)


def rolling_extremes(state: dict, hi: np.ndarray, lo: np.ndarray, ts, gid, rows, window: Window, dest: np.ndarray,
                     c_max: int = NONE, c_min: int = NONE, c_mid: int = NONE, c_max_age: int = NONE,
                     c_min_age: int = NONE, gate: np.ndarray | None = None) -> None:
    """Run the deques over `rows` (state from `deque_state`), writing the asked columns of `dest`
    (indexed by row, like `out`). `gate`: another input of the kernel, whose NULL rows are skipped
    too (a row with any input NULL is skipped whole)."""
    gate = hi if gate is None else gate
    by_runs = window.rows > 0 and c_max_age == NONE and c_min_age == NONE
    drive(extremes_by_runs if by_runs else extremes_core, state, LINKED, rows, lambda s: (
        gid, ts, hi, lo, gate, window.rows, window.span_ns, s["head"], s["count"], s["buf"], s["bts"], s["link"],
        s["seen"], s["ends"], dest, c_max, c_min, c_mid, c_max_age, c_min_age))


# -- kernels ------------------------------------------------------------------------------------------
WINDOW = Param("n", "window", doc="INTEGER rows or INTERVAL")


def _rolling_state(params, groups):
    return deque_state(groups, params["n"])


def _rolling_step(which: list[str]):
    """rolling_max / rolling_min, or (engine fusion) both of one input and window in one pass,
    their columns side by side in the order of `which`."""
    columns = {f"c_{w}": j for j, w in enumerate(which)}

    def step(st, cols, ts, gid, rows, params, out):
        rolling_extremes(st, cols[0], cols[0], ts, gid, rows, params["n"], out, **columns)

    return step


_FUSION = Fusion("rolling_extremes", key=lambda params: (params["n"],),
                 step=lambda members: _rolling_step([spec.name.removeprefix("rolling_") for spec, _ in members]))
for _name, _doc in (("rolling_min", "minimum over the window (monotonic deque)"),
                    ("rolling_max", "maximum over the window (monotonic deque)")):
    register(KernelSpec(name=_name, doc=_doc, inputs=("x",), params=(WINDOW,), outputs=(Output("value"),),
                        state=_rolling_state, step=_rolling_step([_name.removeprefix("rolling_")]),
                        reference="P", category="statistics", growable=LINKED, fusion=_FUSION))


def _donchian_state(params, groups):
    return deque_state(groups, params["n"])


def _donchian_step(st, cols, ts, gid, rows, params, out):
    rolling_extremes(st, cols[0], cols[1], ts, gid, rows, params["n"], out, c_max=0, c_min=1, c_mid=2)


register(KernelSpec(
    name="donchian", doc="Donchian channel: highest high, lowest low and their midpoint over the window",
    inputs=("high", "low"), params=(WINDOW,), outputs=(Output("upper"), Output("lower"), Output("mid")),
    state=_donchian_state, step=_donchian_step, reference="P", category="momentum",
    growable=LINKED,
    field_aliases={"donchian_upper": "upper", "donchian_lower": "lower", "donchian_mid": "mid"}))
