"""What a kernel is: one declarative unit (name, inputs, parameters, outputs, state, step).

A kernel never sees SQL. It is given, for one call site:
- `cols`: its input columns as float64 arrays (NaN = NULL), indexed by row;
- `ts`: the first ORDER BY key as int64 nanoseconds (for INTERVAL windows and time weights);
- `gid`: each row's partition as a dense integer 0..G-1;
- `rows`: the row indices in processing order (each partition's rows in ORDER BY order; rows of
  different partitions may interleave);
- `state`: a dict of arrays whose first axis is the partition, made by `spec.new_state`;
and writes `out[row, field]` (NaN = NULL). Because all memory of the past lives in `state`, running
a partition in one call or in any sequence of consecutive batches gives the same output: a
one-shot query starts from `new_state`, live mode from the state saved after the last batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

import numpy as np

REQUIRED = object()
NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class KernelParamError(ValueError):
    """A bad parameter: the message names the kernel and the parameter."""


@dataclass(frozen=True)
class Window:
    """A rolling size: `rows` (> 0) for the last n non-NULL rows, or `span_ns` for ts in (t - span, t]."""

    rows: int = 0
    span_ns: int = 0

    @property
    def is_rows(self) -> bool:
        return self.rows > 0


@dataclass(frozen=True)
class Param:
    """A constant argument. `kind`: int, float, window (INTEGER or INTERVAL), interval, str."""

    name: str
    kind: str = "float"
    default: Any = REQUIRED
    check: str | None = None  # ">0", ">=0", "(0,1]", "(0,1)", "[0,1]"
    doc: str = ""

    def signature(self) -> str:
        if self.default is REQUIRED:
            return self.name
        shown = self.default.rows if isinstance(self.default, Window) else self.default
        return f"{self.name} := {shown!r}"


@dataclass(frozen=True)
class Ring:
    """State arrays holding a ring buffer per partition: oldest at `head`, `count` in use.

    Saving a partition's state unrolls its rings, and INTERVAL windows grow them."""

    arrays: tuple[str, ...]
    head: str = "head"
    count: str = "count"


@dataclass(frozen=True)
class Output:
    name: str
    type: str = "DOUBLE"  # the SQL type of the spliced column (DOUBLE, BIGINT, INTEGER)


@dataclass(frozen=True)
class Fusion:
    """Kernels of one family that a single pass computes together. Calls of members of `family`
    over the same inputs and window, whose parameters give equal `key(params)`, run as one pass:
    `step(members)`, for [(spec, params), ...], is a step writing each member's outputs side by
    side, in order (rolling_std, sma and bbands of one price: one window of sums, not three)."""

    family: str
    key: Callable[[dict], tuple]
    step: Callable[[list], Callable]
    limit: int = 0  # at most this many kernels a pass (0: any number)
    # The pass's state, from [(spec, params), ...] and the number of partitions, when the first
    # member's own state does not fit every member (prev and diff of several lags: one ring).
    state: Callable[[list, int], dict] | None = None


@dataclass(frozen=True)
class KernelSpec:
    """One window kernel. `step(state, cols, ts, gid, rows, params, out)` does the work."""

    name: str
    doc: str
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    outputs: tuple[Output, ...]
    state: Callable[[dict, int], dict[str, np.ndarray]]
    step: Callable
    reference: str = "P"  # T: equals TA-Lib; P: numpy/pandas two-pass; L: the cited paper
    category: str = "statistics"
    # Per-field aliases usable as kernels of their own: {"macd_hist": "hist"}.
    field_aliases: dict[str, str] = field(default_factory=dict)
    # Names of `state` arrays whose second axis grows (INTERVAL windows keep a variable count of rows).
    growable: tuple[str, ...] = ()
    # Rings whose layout is not the default ("head", "count" over `growable`): see Ring.
    rings: tuple[Ring, ...] = ()
    # Checks across parameters, after each was converted: raise KernelParamError naming the kernel.
    validate: Callable[[dict], None] | None = None
    # Parameter sets worth showing and testing when the defaults alone are not a valid call.
    examples: tuple[dict, ...] = ()
    # Kernels this one shares a pass with, when a query calls several of them (see Fusion).
    fusion: Fusion | None = None

    @property
    def ring_layout(self) -> tuple[Ring, ...]:
        return self.rings or ((Ring(self.growable),) if self.growable else ())

    @property
    def is_struct(self) -> bool:
        return len(self.outputs) > 1

    def signature(self) -> str:
        args = [*self.inputs, *(p.signature() for p in self.params)]
        returns = (
            "STRUCT(" + ", ".join(f"{o.name} {o.type}" for o in self.outputs) + ")"
            if self.is_struct
            else self.outputs[0].type
        )
        return f"{self.name}({', '.join(args)}) -> {returns}"

    # -- parameters ------------------------------------------------------------------------------
    def bind(self, positional: list, named: dict) -> dict:
        """Check and complete constant parameters, before any data is read."""
        if len(positional) > len(self.params):
            raise KernelParamError(
                f"{self.name}: takes {len(self.params)} parameter(s) after its {len(self.inputs)} input(s) "
                f"({self.signature()}), got {len(positional)}"
            )
        values = dict(zip((p.name for p in self.params), positional))
        for name, value in named.items():
            if name not in {p.name for p in self.params}:
                known = ", ".join(p.name for p in self.params) or "none"
                raise KernelParamError(f"{self.name}: unknown parameter {name!r} (parameters: {known})")
            if name in values:
                raise KernelParamError(f"{self.name}: parameter {name!r} given twice")
            values[name] = value
        bound = {}
        for p in self.params:
            if p.name not in values or values[p.name] is None:
                if p.default is REQUIRED:
                    raise KernelParamError(f"{self.name}: parameter {p.name!r} is required ({self.signature()})")
                bound[p.name] = None if p.default is None else _convert(self.name, p, p.default)
                continue
            bound[p.name] = _convert(self.name, p, values[p.name])
        if self.validate:
            self.validate(bound)
        return bound

    def new_state(self, params: dict, groups: int) -> dict[str, np.ndarray]:
        return self.state(params, groups)

    def run(self, state, cols, ts, gid, rows, params) -> np.ndarray:
        out = np.full((len(gid), len(self.outputs)), np.nan)
        self.step(state, cols, ts, gid, rows, params, out)
        return out


def _convert(kernel: str, p: Param, value):
    where = f"{kernel}: parameter {p.name!r}"
    if isinstance(value, Decimal):  # DuckDB folds 0.5 to DECIMAL
        value = int(value) if value == value.to_integral_value() else float(value)
    if p.kind == "window":
        if isinstance(value, Window):
            win = value
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            win = Window(rows=int(value))
        elif isinstance(value, float) and value.is_integer():
            win = Window(rows=int(value))
        elif _is_interval(value):
            win = Window(span_ns=_interval_ns(value))
        else:
            raise KernelParamError(f"{where} must be an INTEGER row count or an INTERVAL, got {value!r}")
        if win.rows <= 0 and win.span_ns <= 0:
            raise KernelParamError(f"{where} must be > 0, got {value!r}")
        return win
    if p.kind == "interval":
        if not _is_interval(value):
            raise KernelParamError(f"{where} must be an INTERVAL, got {value!r}")
        ns = _interval_ns(value)
        if ns <= 0:
            raise KernelParamError(f"{where} must be a positive INTERVAL, got {value!r}")
        return ns
    if p.kind == "str":
        return str(value)
    if p.kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or float(value) != int(value):
            raise KernelParamError(f"{where} must be an integer, got {value!r}")
        value = int(value)
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise KernelParamError(f"{where} must be a number, got {value!r}")
        value = float(value)
    if p.check and not _satisfies(value, p.check):
        raise KernelParamError(f"{where} must be {p.check}, got {value!r}")
    return value


def _satisfies(v: float, check: str) -> bool:
    if check.startswith(">="):
        return v >= float(check[2:])
    if check.startswith(">"):
        return v > float(check[1:])
    lo_open, hi_open = check[0] == "(", check[-1] == ")"
    lo, hi = (float(x) for x in check[1:-1].split(","))
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def _is_interval(value) -> bool:
    import datetime

    return isinstance(value, (datetime.timedelta, np.timedelta64)) or (
        hasattr(value, "months") and hasattr(value, "days")
    )


def _interval_ns(value) -> int:
    import datetime

    if isinstance(value, np.timedelta64):
        return int(value.astype("timedelta64[ns]").astype(np.int64))
    if isinstance(value, datetime.timedelta):
        return (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    raise TypeError(value)


def ensure_capacity(state: dict, names: tuple[str, ...], need: int, head: str = "head",
                    count: str = "count") -> None:
    """Grow the second axis of the named state arrays to at least `need`, keeping ring order.

    Ring buffers are stored with `head` (oldest) and `count`; growing unrolls every partition's
    ring so that its oldest element lands at index 0.
    """
    cap = state[names[0]].shape[1]
    if need <= cap:
        return
    new_cap = max(need, cap * 2)
    head, count = state[head], state[count]
    for name in names:
        old = state[name]
        new = np.zeros((old.shape[0], new_cap, *old.shape[2:]), dtype=old.dtype)
        for g in range(old.shape[0]):
            idx = (head[g] + np.arange(count[g])) % cap
            new[g, : count[g]] = old[g, idx]
        state[name] = new
    head[:] = 0
