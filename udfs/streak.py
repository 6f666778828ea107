"""Runs of consecutive true rows: which run a row belongs to, and where a run ended.

An arbitrage opportunity, an alarm or a drawdown lasts while a condition holds. Finding those
episodes with window functions (gaps and islands) needs the whole history at once; as a kernel
the open episode is state, so live mode continues it across micro-batches and reports its end
when the first row without the condition arrives.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import KernelSpec, Output
from .registry import register

ID, ROWS, ENDED = 0, 1, 2


@njit(cache=True)
def _streak_core(rows, gid, cond, mode, runs, length, out):
    for p in range(len(rows)):
        r = rows[p]
        c = cond[r]
        if math.isnan(c):
            continue
        g = gid[r]
        if c != 0.0:
            if length[g] == 0:
                runs[g] += 1
            length[g] += 1
            if mode == ID:
                out[r, 0] = runs[g]
            elif mode == ROWS:
                out[r, 0] = length[g]
        elif length[g] > 0:
            if mode == ENDED:
                out[r, 0] = runs[g]  # the first row after the run: the run ended here
            length[g] = 0


def _state(params, groups):
    return {"runs": np.zeros(groups, np.int64), "length": np.zeros(groups, np.int64)}


def _step(mode):
    def step(state, cols, ts, gid, rows, params, out):
        _streak_core(rows, gid, cols[0], mode, state["runs"], state["length"], out)

    return step


# Three kernels over one state machine rather than one STRUCT: a query usually wants one or two
# of them, and each reads as a plain column.
for _name, _mode, _doc in (
    ("streak_id", ID, "on rows where cond is true (non-zero): the number (1, 2, ...) of the run of consecutive "
                      "true rows it belongs to, else NULL; a NULL cond is skipped (coalesce it to false to end a run)"),
    ("streak_rows", ROWS, "on rows where cond is true: the rows of its run so far (1 on the run's first row), "
                          "else NULL; a NULL cond is skipped"),
    ("streak_ended", ENDED, "on the first row where cond is false after a run of true rows: that run's number "
                            "(as streak_id), else NULL; a NULL cond is skipped"),
):
    register(KernelSpec(name=_name, doc=_doc, inputs=("cond",), params=(), outputs=(Output("value", "BIGINT"),),
                        state=_state, step=_step(_mode), category="risk"))
