"""Kernel calls that share one pass over the rows (udfs.kernel.Fusion).

Research's feature set asks for sma, rolling_std and the Bollinger bands of one price over one
window, the min and the max of it, VaR and CVaR of one return, the order flow imbalance of one
quote stream and its windowed sums, the lags, differences, first value and count of one price:
each family shares its window state (or, for ofi, the e_t series; for the lags, one ring of the
longest), so each group is computed in one pass and every call takes its own columns. Only one-shot
queries fuse: saved states (live mode) stay per call, whatever else a statement computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptodb.engine.calls import KernelCall
from cryptodb.udfs.kernel import KernelSpec


@dataclass
class FusedCall:
    """Runs in place of its members, as a call would: `spec` writes every member's outputs side by
    side; `members` maps each member's computation key to its columns [start, end)."""

    spec: KernelSpec
    params: dict
    name: str
    key: tuple
    members: dict[tuple, tuple[int, int]]


def fuse(calls: list[KernelCall], keys: list[tuple], arg_columns: list[list[str]]) -> dict[tuple, FusedCall]:
    """For each computation (a call key) that shares a pass with another: the fused call."""
    groups: dict[tuple, dict[tuple, KernelCall]] = {}
    for call, key, cols in zip(calls, keys, arg_columns):
        family = call.spec.fusion
        if family is not None:
            group = (family.family, family.key(call.params), tuple(cols), call.window_key())
            groups.setdefault(group, {}).setdefault(key, call)
    fused = {}
    for group, found in groups.items():
        limit = next(iter(found.values())).spec.fusion.limit or len(found)
        items = list(found.items())
        for start in range(0, len(items), limit):
            members = dict(items[start:start + limit])
            if len(members) > 1:
                fused.update(_fused_call(("fused", start, *group), members))
    return fused


def _fused_call(work_key: tuple, members: dict[tuple, KernelCall]) -> dict[tuple, FusedCall]:
    first = next(iter(members.values()))
    spans, start = {}, 0
    for key, call in members.items():
        spans[key] = (start, start + len(call.spec.outputs))
        start += len(call.spec.outputs)
    name = "+".join(call.name for call in members.values())
    pairs = [(call.spec, call.params) for call in members.values()]
    family = first.spec.fusion
    state = first.spec.state if family.state is None else (lambda params, groups: family.state(pairs, groups))
    spec = KernelSpec(
        name=name, doc="", inputs=first.spec.inputs, params=first.spec.params,
        outputs=tuple(o for call in members.values() for o in call.spec.outputs), state=state,
        step=family.step(pairs))
    fused = FusedCall(spec, first.params, name, work_key, spans)
    return {key: fused for key in members}
