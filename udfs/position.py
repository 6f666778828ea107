"""Holding a position between an entry and an exit signal: the state machine of a strategy.

A rule such as "long when zscore < -2 and RSI < 30, flat again when zscore > 0 or RSI > 50" is
two conditions per row, but whether the strategy is in the market at a row depends on every row
before it: that is state, so it is a kernel like every other stateful computation (a backtest
and live mode then hold the same position row for row, batch after batch).

The kernels are `hold(entry, exit)` (long only: 1 or 0) and `hold_long_short(long_entry, long_exit,
short_entry, short_exit)` (+1, 0 or -1); `position` itself is a DuckDB function (strpos).

Signals are read as booleans: non-zero is true. A NULL signal (warm-up of the indicator it is
built from, say) leaves the position as it was and gives NULL; `coalesce(cond, false)` in SQL
keeps the position known on every row.

Per row, exits are applied first, then entries, so one row can close a long and open a short (a
reversal). A row that raises an entry together with the exit of the same side changes nothing
from flat: conflicting signals are ignored, as vectorbt's `from_signals` does by default.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import KernelSpec, Output
from .registry import register


@njit(cache=True)
def _position_core(rows, gid, long_entry, long_exit, short_entry, short_exit, held, out):
    for p in range(len(rows)):
        r = rows[p]
        le, lx, se, sx = long_entry[r], long_exit[r], short_entry[r], short_exit[r]
        if math.isnan(le) or math.isnan(lx) or math.isnan(se) or math.isnan(sx):
            continue
        g = gid[r]
        h = held[g]
        if (h > 0 and lx != 0.0) or (h < 0 and sx != 0.0):
            h = 0
        if h == 0:
            go_long = le != 0.0 and lx == 0.0
            go_short = se != 0.0 and sx == 0.0
            if go_long and not go_short:
                h = 1
            elif go_short and not go_long:
                h = -1
        held[g] = h
        out[r, 0] = h


def _state(params, groups):
    return {"held": np.zeros(groups, np.int64)}


def _step_long_short(state, cols, ts, gid, rows, params, out):
    _position_core(rows, gid, cols[0], cols[1], cols[2], cols[3], state["held"], out)


def _step_long_only(state, cols, ts, gid, rows, params, out):
    never = np.zeros(len(gid))  # the short side never signals
    _position_core(rows, gid, cols[0], cols[1], never, never, state["held"], out)


register(KernelSpec(
    name="hold",
    doc="1 from a row where entry is true until a row where exit is true (that row gives 0), else 0; "
        "a row with both entry and exit while flat stays flat",
    inputs=("entry", "exit"), params=(), outputs=(Output("position", "INTEGER"),),
    state=_state, step=_step_long_only, category="execution"))

register(KernelSpec(
    name="hold_long_short",
    doc="+1 held from long_entry until long_exit, -1 from short_entry until short_exit, else 0; exits "
        "apply before entries (one row can reverse); conflicting entries, or an entry with its own exit, "
        "leave a flat position flat",
    inputs=("long_entry", "long_exit", "short_entry", "short_exit"), params=(),
    outputs=(Output("position", "INTEGER"),), state=_state, step=_step_long_short, category="execution"))
