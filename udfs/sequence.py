"""Running sequence kernels: prev, diff, cumsum, first, running_count.

DuckDB's own lag/sum/first_value/row_number OVER compute the same things in a batch query, but
they sort the rows with every column in tow, and live mode (which sees one micro-batch at a
time) cannot resume them. These carry their state like every kernel, so a feature set built
from kernels only gives the same rows in research and in live mode.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import Fusion, KernelSpec, Output, Param
from .registry import register

PREV, DIFF, CUMSUM, FIRST, COUNT = 0, 1, 2, 3, 4


@njit(cache=True, inline="always")
def compensated_add(s, c, term):
    """(s + term, its running compensation): Neumaier's step, s + c being the exact sum so far."""
    t = s + term
    if abs(s) >= abs(term):
        c += (s - t) + term
    else:
        c += (term - t) + s
    return t, c


@njit(cache=True)
def _sequence_core(rows, gid, x, k, mode, ring, head, seen, total, comp, out):
    # A partition's scalars stay in locals while its rows follow one another (the store's order)
    # and go back to the arrays when another partition's row comes: a memory round trip per row
    # was most of the time these kernels took.
    cur = -1
    n = h = 0
    tot = cmp = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                seen[cur], head[cur], total[cur], comp[cur] = n, h, tot, cmp
            cur = g
            n, h, tot, cmp = seen[g], head[g], total[g], comp[g]
        if mode == PREV or mode == DIFF:
            if n >= k:  # the ring holds the last k values; the oldest is k rows back
                old = ring[g, h]
                out[r, 0] = old if mode == PREV else v - old
            ring[g, h] = v
            h = h + 1 if h + 1 < k else 0
        elif mode == CUMSUM:  # Kahan-Babuska: the running sum of 10M returns keeps its digits
            tot, cmp = compensated_add(tot, cmp, v)
            out[r, 0] = tot + cmp
        elif mode == FIRST:
            if n == 0:
                tot = v
            out[r, 0] = tot
        else:
            out[r, 0] = n + 1
        n += 1
    if cur >= 0:
        seen[cur], head[cur], total[cur], comp[cur] = n, h, tot, cmp


@njit(cache=True)
def _sequence_fused_core(rows, gid, x, modes, ks, ring, head, seen, total, comp, first, out):
    """Several sequence kernels over one input in one pass: member j (`modes[j]`, `ks[j]`) writes
    out[:, j]. The ring holds the last K values (K, its width: the longest lag asked for) and
    head[g] is where the next one goes, so the value k rows back is in slot head - k.
    `_sequence_core` stays for a kernel alone (live mode, and every query that asks for one): this
    core with one member ran 3-7 ns a row slower (5-8 -> 10-12 ns, bench/bench_each_kernel.py)."""
    cap = ring.shape[1]
    m = len(modes)
    summing = False
    for mode in modes:
        summing |= mode == CUMSUM
    cur = -1
    n = h = 0
    tot = cmp = fst = 0.0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:
            if cur >= 0:
                seen[cur], head[cur], total[cur], comp[cur], first[cur] = n, h, tot, cmp, fst
            cur = g
            n, h, tot, cmp, fst = seen[g], head[g], total[g], comp[g], first[g]
        if n == 0:
            fst = v
        if summing:
            tot, cmp = compensated_add(tot, cmp, v)
        for j in range(m):
            mode = modes[j]
            if mode == PREV or mode == DIFF:
                k = ks[j]
                if n >= k:
                    i = h - k
                    if i < 0:
                        i += cap
                    out[r, j] = ring[g, i] if mode == PREV else v - ring[g, i]
            elif mode == CUMSUM:
                out[r, j] = tot + cmp
            elif mode == FIRST:
                out[r, j] = fst
            else:
                out[r, j] = n + 1
        ring[g, h] = v
        h = h + 1 if h + 1 < cap else 0
        n += 1
    if cur >= 0:
        seen[cur], head[cur], total[cur], comp[cur], first[cur] = n, h, tot, cmp, fst


def _fused_state(members: list, groups: int) -> dict:
    longest = max(params.get("k", 1) for _, params in members)
    return {"ring": np.zeros((groups, longest)), "head": np.zeros(groups, np.int64),
            "seen": np.zeros(groups, np.int64), "total": np.zeros(groups), "comp": np.zeros(groups),
            "first": np.zeros(groups)}


def _fused_step(members: list):
    """prev, diff, cumsum, first_seen and running_count of one input, in one pass: research's
    feature set asks for five of them over the price."""
    modes = np.array([_MODES[spec.name] for spec, _ in members], np.int64)
    ks = np.array([params.get("k", 1) for _, params in members], np.int64)

    def step(st, cols, ts, gid, rows, params, out):
        _sequence_fused_core(rows, gid, cols[0], modes, ks, st["ring"], st["head"], st["seen"], st["total"],
                             st["comp"], st["first"], out)

    return step


_MODES: dict[str, int] = {}  # kernel -> mode, for fused passes
_FUSION = Fusion("sequence", key=lambda params: (), step=_fused_step, state=_fused_state)


def _sequence(mode: int):
    def state(params, groups):
        k = params.get("k", 1)
        return {"ring": np.zeros((groups, k)), "head": np.zeros(groups, np.int64),
                "seen": np.zeros(groups, np.int64), "total": np.zeros(groups), "comp": np.zeros(groups)}

    def step(st, cols, ts, gid, rows, params, out):
        _sequence_core(rows, gid, cols[0], params.get("k", 1), mode, st["ring"], st["head"], st["seen"],
                       st["total"], st["comp"], out)

    return state, step


K = Param("k", "int", 1, ">0", "rows back (non-NULL rows)")
for _name, _mode, _params, _type, _doc in (
    ("prev", PREV, (K,), "DOUBLE", "the value k non-NULL rows back (a resumable lag); NULL until k rows are seen"),
    ("diff", DIFF, (K,), "DOUBLE", "x - prev(x, k)"),
    ("cumsum", CUMSUM, (), "DOUBLE", "running sum over the partition so far (compensated)"),
    ("first_seen", FIRST, (), "DOUBLE", "the partition's first non-NULL value"),
    ("running_count", COUNT, (), "BIGINT", "number of non-NULL rows so far, this one included"),
):
    _state, _step = _sequence(_mode)
    _MODES[_name] = _mode
    register(KernelSpec(name=_name, doc=_doc, inputs=("x",), params=_params, outputs=(Output("value", _type),),
                        state=_state, step=_step, category="returns", fusion=_FUSION))
