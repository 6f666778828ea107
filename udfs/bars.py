"""Activity bars: tick, volume and dollar bars as a running bar number per row.

Time bars are a GROUP BY on time_bucket; bars that close after a fixed amount of activity need
to know how much has accumulated since the current bar opened, which is state. Each kernel
gives every row the number of the bar it belongs to (0, 1, 2, ... per partition); GROUP BY that
number makes the OHLCV (sql/bars.sql). The row that makes the total reach the threshold is the
last row of its bar, and the next row opens the next bar; a large trade is not split across bars.
NULL rows (or a NULL volume) belong to no bar and add nothing.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit
from .kernel import KernelSpec, Output, Param
from .registry import register

TICKS, VOLUME, DOLLARS = 0, 1, 2


@njit(cache=True)
def _bar_core(rows, gid, price, volume, mode, threshold, bar, filled, out):
    for p in range(len(rows)):
        r = rows[p]
        if mode == TICKS:
            amount = 0.0 if math.isnan(price[r]) else 1.0
            missing = math.isnan(price[r])
        elif mode == VOLUME:
            missing = math.isnan(volume[r])
            amount = volume[r]
        else:
            missing = math.isnan(price[r]) or math.isnan(volume[r])
            amount = price[r] * volume[r]
        if missing:
            continue
        g = gid[r]
        out[r, 0] = bar[g]
        filled[g] += amount
        if filled[g] >= threshold:  # this row closes the bar
            bar[g] += 1
            filled[g] = 0.0


def _state(params, groups):
    return {"bar": np.zeros(groups, np.int64), "filled": np.zeros(groups)}


def _step(mode):
    def step(state, cols, ts, gid, rows, params, out):
        price = cols[0]
        volume = cols[-1]
        _bar_core(rows, gid, price, volume, mode, float(params["threshold"]), state["bar"], state["filled"], out)

    return step


for _name, _mode, _inputs, _param, _doc in (
    ("tick_bar", TICKS, ("x",), Param("threshold", "int", check=">0", doc="rows per bar"),
     "bar number (0, 1, ...): a bar closes after `threshold` non-NULL rows"),
    ("volume_bar", VOLUME, ("volume",), Param("threshold", "float", check=">0", doc="volume per bar"),
     "bar number (0, 1, ...): a bar closes on the row that brings its volume to `threshold` or more"),
    ("dollar_bar", DOLLARS, ("price", "volume"), Param("threshold", "float", check=">0", doc="price*volume per bar"),
     "bar number (0, 1, ...): a bar closes on the row that brings its price*volume to `threshold` or more"),
):
    register(KernelSpec(name=_name, doc=_doc, inputs=_inputs, params=(_param,), outputs=(Output("bar", "BIGINT"),),
                        state=_state, step=_step(_mode), category="microstructure"))
