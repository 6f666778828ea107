"""Volatility estimators: jump-robust realized measures, RiskMetrics EWMA and OHLC range estimators.

(realized_var lives with the other rolling sums in moments.py.)

Every windowed sum here is a running sum kept accurate over 10M+ rows: each row adds one term and
removes the leaving ones (O(1)), and after as many removals as the window holds, the sum is
recomputed from the buffer (amortised O(1)), so rounding cannot drift. A count of nonzero terms
makes a window of zero terms give exactly 0, not a rounding residue. Ring indices wrap by compare
and reset, not `%`: an integer division per row is a measurable share of these cores.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import KernelParamError, KernelSpec, Output, Param, Window
from .registry import register
from .window import RING, drive, ring_state

WINDOW = Param("n", "window", doc="INTEGER rows or INTERVAL")


def min_rows(kernel: str, least: int):
    """A validator: an INTEGER window smaller than `least` rows could never give a value."""
    def validate(params):
        win = params["n"]
        if win is not None and win.is_rows and win.rows < least:
            raise KernelParamError(f"{kernel}: parameter 'n' must be at least {least} rows, got {win.rows}")
    return validate


# -- generic windowed sums of per-row terms (range estimators here, vwap/amihud/ofi_sum elsewhere) --
RATIO, TOTAL, SQRT_MEAN = 0, 1, 2


@njit(cache=True, inline="always")
def _drop(s, nz, old):
    """Sum and count of nonzero terms after the term `old` leaves (exactly 0 when none is left)."""
    if old != 0.0:
        s -= old
        nz -= 1
        if nz == 0:
            s = 0.0
    return s, nz


@njit(cache=True)
def window_sums_core(start, rows, gid, ts, a, b, unit_b, rows_n, span_ns, head, count, buf, bts, sums,
                     nonzero, since, out, mode, scale):
    """Windowed sums A = sum a, B = sum b (b = 1 when unit_b) over the rows in the window; out = A/B
    (RATIO; NULL when every b is 0), A (TOTAL) or sqrt(scale A/B) (SQRT_MEAN; NULL when negative).

    A row whose a or b is NaN is a NULL row: skipped, state untouched.

    A partition's scalars live in locals while its rows follow one another (the store's normal
    order) and go back to the state arrays when another partition's row comes, and at the end:
    outputs may alias them, so as array elements every update was a round trip through memory.
    """
    cap = buf.shape[1]
    cur = -1
    h = c = nz_a = nz_b = since_g = 0
    s_a = s_b = 0.0
    stop = len(rows)
    for p in range(start, len(rows)):
        r = rows[p]
        va = a[r]
        vb = 1.0 if unit_b else b[r]
        if math.isnan(va) or math.isnan(vb):
            continue
        g = gid[r]
        t = ts[r]
        if g != cur:
            if cur >= 0:
                head[cur], count[cur], since[cur] = h, c, since_g
                sums[cur, 0], sums[cur, 1], nonzero[cur, 0], nonzero[cur, 1] = s_a, s_b, nz_a, nz_b
            cur = g
            h, c, since_g = head[g], count[g], since[g]
            s_a, s_b, nz_a, nz_b = sums[g, 0], sums[g, 1], nonzero[g, 0], nonzero[g, 1]
        while c > 0 and (c >= rows_n if rows_n > 0 else bts[g, h] <= t - span_ns):
            s_a, nz_a = _drop(s_a, nz_a, buf[g, h, 0])
            s_b, nz_b = _drop(s_b, nz_b, buf[g, h, 1])
            h = h + 1 if h + 1 < cap else 0
            c -= 1
            since_g += 1
        if c == cap:
            stop = p  # an INTERVAL window needs more room: `drive` grows it and resumes here
            break
        i = h + c
        if i >= cap:
            i -= cap
        buf[g, i, 0] = va
        buf[g, i, 1] = vb
        bts[g, i] = t
        c += 1
        n = c
        if va != 0.0:
            s_a += va
            nz_a += 1
        if vb != 0.0:
            s_b += vb
            nz_b += 1
        if since_g >= n:  # exact recompute, amortised O(1)
            s_a = 0.0
            s_b = 0.0
            j = h
            for _ in range(n):
                s_a += buf[g, j, 0]
                s_b += buf[g, j, 1]
                j = j + 1 if j + 1 < cap else 0
            since_g = 0
        if rows_n > 0 and n < rows_n:
            continue  # an INTEGER window gives NULL until it is full
        if mode == TOTAL:
            out[r, 0] = s_a
        elif nz_b > 0:
            ratio = s_a / s_b
            if mode == RATIO:
                out[r, 0] = ratio
            elif ratio >= 0.0:
                out[r, 0] = math.sqrt(scale * ratio)
    if cur >= 0:
        head[cur], count[cur], since[cur] = h, c, since_g
        sums[cur, 0], sums[cur, 1], nonzero[cur, 0], nonzero[cur, 1] = s_a, s_b, nz_a, nz_b
    return stop


def window_sums_state(params: dict, groups: int) -> dict:
    state = ring_state(groups, params["n"], width=2)
    state.update(sums=np.zeros((groups, 2)), nonzero=np.zeros((groups, 2), np.int64),
                 since=np.zeros(groups, np.int64))
    return state


def run_window_sums(state, a, b, ts, gid, rows, win: Window, out, mode, scale=1.0) -> None:
    """b None: every row weighs 1."""
    unit_b = b is None
    b = a if unit_b else b
    drive(window_sums_core, state, RING, rows, lambda s: (
        gid, ts, a, b, unit_b, win.rows, win.span_ns, s["head"], s["count"], s["buf"], s["bts"], s["sums"],
        s["nonzero"], s["since"], out, mode, scale))


# -- OHLC range estimators: the square root of a windowed mean of a per-bar term ----------------------
PARKINSON, GARMAN_KLASS, ROGERS_SATCHELL = 0, 1, 2
LN2 = math.log(2.0)
GK_C = 2.0 * LN2 - 1.0


@njit(cache=True)
def _range_terms(rows, kind, o, h, lo, c, term):
    """The per-bar term of each estimator; NaN (a NULL row) when an input is NULL or a price <= 0."""
    for p in range(len(rows)):
        r = rows[p]
        if kind == PARKINSON:
            if not (h[r] > 0.0 and lo[r] > 0.0):
                continue  # a NaN fails the comparison too
            hl = math.log(h[r] / lo[r])
            term[r] = hl * hl
            continue
        if not (o[r] > 0.0 and h[r] > 0.0 and lo[r] > 0.0 and c[r] > 0.0):
            continue
        if kind == GARMAN_KLASS:
            hl = math.log(h[r] / lo[r])
            co = math.log(c[r] / o[r])
            term[r] = 0.5 * hl * hl - GK_C * co * co
        else:  # u = ln(H/O), d = ln(L/O), k = ln(C/O): ln(H/C) = u - k, ln(L/C) = d - k (3 logs, not 4)
            u = math.log(h[r] / o[r])
            d = math.log(lo[r] / o[r])
            k = math.log(c[r] / o[r])
            term[r] = (u - k) * u + (d - k) * d


def _range_step(kind, scale):
    def step(state, cols, ts, gid, rows, params, out):
        if kind == PARKINSON:
            h, lo = cols
            o = c = h  # not read by the Parkinson term
        else:
            o, h, lo, c = cols
        term = np.full(len(gid), np.nan)
        _range_terms(rows, kind, o, h, lo, c, term)
        run_window_sums(state, term, None, ts, gid, rows, params["n"], out, SQRT_MEAN, scale)

    return step


for _name, _kind, _inputs, _scale, _doc in (
        ("parkinson", PARKINSON, ("high", "low"), 1.0 / (4.0 * LN2),
         "Parkinson range volatility: sqrt(mean(ln(H/L)^2) / (4 ln 2)) over the window"),
        ("garman_klass", GARMAN_KLASS, ("open", "high", "low", "close"), 1.0,
         "Garman-Klass volatility: sqrt(mean(0.5 ln(H/L)^2 - (2 ln2 - 1) ln(C/O)^2)); NULL if the mean < 0"),
        ("rogers_satchell", ROGERS_SATCHELL, ("open", "high", "low", "close"), 1.0,
         "Rogers-Satchell volatility: sqrt(mean(ln(H/C)ln(H/O) + ln(L/C)ln(L/O))); NULL if the mean < 0")):
    register(KernelSpec(
        name=_name, doc=_doc, inputs=_inputs, params=(WINDOW,), outputs=(Output("value"),),
        state=window_sums_state, step=_range_step(_kind, _scale), reference="P", category="volatility",
        growable=RING))


# -- bipower variation and MedRV: sums over adjacent |r| pairs / triples inside the window -----------
BIPOWER, MEDRV = 0, 1
BIPOWER_SCALE = math.pi / 2.0  # mu_1^-2, mu_1 = E|Z| = sqrt(2/pi)
MEDRV_SCALE = math.pi / (6.0 - 4.0 * math.sqrt(3.0) + math.pi)


@njit(cache=True)
def _adjacent_core(start, rows, gid, ts, x, rows_n, span_ns, kind, head, count, buf, bts, total, nonzero,
                   since, out):
    """Sum over the window of |r_i||r_{i-1}| (BIPOWER) or med(|r_{i-1}|, |r_i|, |r_{i+1}|)^2 (MEDRV),
    only over pairs/triples whose rows are all inside the window. The term of the newest pair/triple
    is added on entry, the oldest one's removed on exit. A partition's scalars live in locals while
    its rows follow one another, as in `window_sums_core`."""
    span = 2 if kind == BIPOWER else 3
    cap = buf.shape[1]
    cur = -1
    h = c = nz = since_g = 0
    tot = 0.0
    stop = len(rows)
    for p in range(start, len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        v = abs(v)
        g = gid[r]
        t = ts[r]
        if g != cur:
            if cur >= 0:
                head[cur], count[cur], total[cur], nonzero[cur], since[cur] = h, c, tot, nz, since_g
            cur = g
            h, c, tot, nz, since_g = head[g], count[g], total[g], nonzero[g], since[g]
        while c > 0 and (c >= rows_n if rows_n > 0 else bts[g, h] <= t - span_ns):
            h1 = h + 1 if h + 1 < cap else 0
            if c >= span:
                a0 = buf[g, h, 0]
                a1 = buf[g, h1, 0]
                if kind == BIPOWER:
                    term = a0 * a1
                else:
                    a2 = buf[g, h1 + 1 if h1 + 1 < cap else 0, 0]
                    m = max(min(a0, a1), min(max(a0, a1), a2))
                    term = m * m
                if term != 0.0:
                    tot -= term
                    nz -= 1
                    if nz == 0:
                        tot = 0.0
            h = h1
            c -= 1
            since_g += 1
        if c == cap:
            stop = p  # an INTERVAL window needs more room: `drive` grows it and resumes here
            break
        i = h + c  # the new row's slot
        if i >= cap:
            i -= cap
        if c >= span - 1:
            j1 = i - 1 if i > 0 else cap - 1
            a1 = buf[g, j1, 0]
            if kind == BIPOWER:
                term = a1 * v
            else:
                a0 = buf[g, j1 - 1 if j1 > 0 else cap - 1, 0]
                m = max(min(a0, a1), min(max(a0, a1), v))
                term = m * m
            if term != 0.0:
                tot += term
                nz += 1
        buf[g, i, 0] = v
        bts[g, i] = t
        c += 1
        n = c
        if since_g >= n:  # exact recompute, amortised O(1)
            s = 0.0
            a0 = 0.0
            a1 = 0.0
            j = h
            for k in range(n):
                a2 = buf[g, j, 0]
                j = j + 1 if j + 1 < cap else 0
                if kind == BIPOWER and k >= 1:
                    s += a1 * a2
                elif kind == MEDRV and k >= 2:
                    m = max(min(a0, a1), min(max(a0, a1), a2))
                    s += m * m
                a0 = a1
                a1 = a2
            tot = s
            since_g = 0
        if (rows_n > 0 and n < rows_n) or n < span:
            continue  # NULL until an INTEGER window is full; an INTERVAL one needs span rows
        s = tot if nz > 0 else 0.0
        if kind == BIPOWER:
            out[r, 0] = BIPOWER_SCALE * n / (n - 1) * s
        else:
            out[r, 0] = MEDRV_SCALE * n / (n - 2) * s
    if cur >= 0:
        head[cur], count[cur], total[cur], nonzero[cur], since[cur] = h, c, tot, nz, since_g
    return stop


def _adjacent_state(params, groups):
    state = ring_state(groups, params["n"])
    state.update(total=np.zeros(groups), nonzero=np.zeros(groups, np.int64), since=np.zeros(groups, np.int64))
    return state


def _adjacent_step(kind):
    def step(state, cols, ts, gid, rows, params, out):
        win: Window = params["n"]
        drive(_adjacent_core, state, RING, rows, lambda s: (
            gid, ts, cols[0], win.rows, win.span_ns, kind, s["head"], s["count"], s["buf"], s["bts"],
            s["total"], s["nonzero"], s["since"], out))

    return step


register(KernelSpec(
    name="bipower_var",
    doc="bipower variation: (pi/2) n/(n-1) sum |r_i||r_{i-1}| over pairs in the window (BNS 2004); "
        "INTERVAL: n = rows in the window, NULL below 2",
    inputs=("r",), params=(WINDOW,), outputs=(Output("value"),), state=_adjacent_state,
    step=_adjacent_step(BIPOWER), reference="L", category="volatility", growable=RING,
    validate=min_rows("bipower_var", 2)))
register(KernelSpec(
    name="medrv",
    doc="median realized variance: pi/(6-4sqrt3+pi) n/(n-2) sum med(|r_{i-1}|,|r_i|,|r_{i+1}|)^2 (ADS 2012); "
        "INTERVAL: n = rows in the window, NULL below 3",
    inputs=("r",), params=(WINDOW,), outputs=(Output("value"),), state=_adjacent_state,
    step=_adjacent_step(MEDRV), reference="L", category="volatility", growable=RING,
    validate=min_rows("medrv", 3)))


# -- RiskMetrics ------------------------------------------------------------------------------------
@njit(cache=True)
def _riskmetrics_core(rows, gid, x, lam, s2, seen, out):
    cur = -1
    s2_g = 0.0
    seen_g = 0
    for p in range(len(rows)):
        r = rows[p]
        v = x[r]
        if math.isnan(v):
            continue
        g = gid[r]
        if g != cur:  # a partition's scalars stay in locals while its rows follow one another
            if cur >= 0:
                s2[cur], seen[cur] = s2_g, seen_g
            cur = g
            s2_g, seen_g = s2[g], seen[g]
        if seen_g == 0:
            s2_g = v * v
            seen_g = 1
        else:
            s2_g = lam * s2_g + (1.0 - lam) * v * v
        out[r, 0] = math.sqrt(s2_g)
    if cur >= 0:
        s2[cur], seen[cur] = s2_g, seen_g


def _riskmetrics_state(params, groups):
    return {"s2": np.zeros(groups), "seen": np.zeros(groups, np.int64)}


def _riskmetrics_step(state, cols, ts, gid, rows, params, out):
    _riskmetrics_core(rows, gid, cols[0], params["lambda"], state["s2"], state["seen"], out)


register(KernelSpec(
    name="riskmetrics_vol",
    doc="RiskMetrics EWMA volatility: s2_1 = r_1^2, s2_t = lambda s2_{t-1} + (1-lambda) r_t^2; sqrt(s2)",
    inputs=("r",),
    params=(Param("lambda", "float", 0.94, "(0,1)", 'decay factor (a SQL keyword: name it as "lambda" := 0.9)'),),
    outputs=(Output("value"),), state=_riskmetrics_state, step=_riskmetrics_step, category="volatility"))
