"""Rolling windows shared by kernels: per-partition ring buffers of (ts, values) in state arrays.

A window holds the last `rows` non-NULL rows (an INTEGER size) or the rows with ts in
(t - span, t] (an INTERVAL size). INTEGER windows have a fixed capacity; INTERVAL windows start
small and grow: a core stops at the row that needs more room, `drive` grows the buffers and
resumes, so no kernel rescans its window and no window size is guessed up front.
"""

from __future__ import annotations

import numpy as np

from .kernel import Window, ensure_capacity

INITIAL_INTERVAL_CAPACITY = 16


def ring_state(groups: int, window: Window, width: int = 1, extra: int = 0) -> dict[str, np.ndarray]:
    """State for a window of `width` values per row (+ `extra` slots: see the kernels using it)."""
    cap = window.rows + extra if window.is_rows else INITIAL_INTERVAL_CAPACITY
    return {
        "head": np.zeros(groups, np.int64),
        "count": np.zeros(groups, np.int64),
        "buf": np.zeros((groups, cap, width), np.float64),
        "bts": np.zeros((groups, cap), np.int64),
    }


RING = ("buf", "bts")


def drive(core, state: dict, growable: tuple[str, ...], rows: np.ndarray, args) -> None:
    """Run `core(start, rows, *args(state))` until every row is processed, growing buffers on request.

    `core` returns the position in `rows` it stopped at (len(rows) when done). It stops only
    before touching any state for that row, so resuming from there is exact. `args` is called
    again after growing, because growing replaces the state's arrays.
    """
    pos = 0
    while True:
        pos = core(pos, rows, *args(state))
        if pos >= len(rows):
            return
        ensure_capacity(state, growable, state[growable[0]].shape[1] * 2)


# Cores write pushes inline: as a call, a push costs more than the rest of a row's work. A push is
#     i = (head[g] + count[g]) % cap; buf[g, i, 0] = v; bts[g, i] = t; count[g] += 1
# and the oldest row leaves with
#     i = head[g]; head[g] = (i + 1) % cap; count[g] -= 1   (buf[g, i] is its value)

