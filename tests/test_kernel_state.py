"""Per-partition state survives a save/restore between batches, for every kernel, even when
the partitions are numbered differently in the next batch (as live mode does)."""

import numpy as np
import pytest
from cryptodb.udfs import registry
from cryptodb.udfs.kernel import Window
from cryptodb.udfs.state import assemble, extract, from_bytes, to_bytes
from test_kernel_contract import SECOND, inputs_for, market, param_sets

KERNELS = registry.kernels()
CASES = [(n, i) for n, s in KERNELS.items()
         for i in ((False, True) if any(p.kind == "window" for p in s.params) else (False,))]


@pytest.mark.parametrize("name,interval", CASES, ids=[f"{n}{'-interval' if i else ''}" for n, i in CASES])
def test_save_restore_between_batches_with_renumbered_partitions(name, interval):
    spec = KERNELS[name]
    n, groups = 900, 3
    gid, ts, base, nulls = market(n, groups, 11)
    cols = inputs_for(spec, base, nulls, n)
    given = dict(param_sets(spec)[0])
    if interval:
        given.update({p.name: Window(span_ns=7 * SECOND) for p in spec.params if p.kind == "window"})
    params = spec.bind([], given)
    whole = spec.run(spec.new_state(params, groups), cols, ts, gid, np.arange(n), params)

    cut = 500
    first = spec.new_state(params, groups)
    out = np.full_like(whole, np.nan)
    out[:cut] = spec.run(first, cols, ts, gid, np.arange(cut), params)[:cut]
    saved = {g: to_bytes(extract(spec, first, g)) for g in range(groups)}

    # Next batch: partitions numbered in reverse, plus one that was never seen.
    renumber = {g: groups - g for g in range(groups)}  # 0 is the new, empty partition
    rows = [None] + [from_bytes(saved[g]) for g in sorted(saved, key=lambda g: renumber[g])]
    second = assemble(spec, params, rows)
    new_gid = np.array([renumber[g] for g in gid], dtype=np.int64)
    rest = spec.run(second, cols, ts, new_gid, np.arange(cut, n), params)
    out[cut:] = rest[cut:]
    np.testing.assert_array_equal(out, whole)  # exactly: live mode must equal one research pass


@pytest.mark.parametrize("name", ["historical_var", "historical_cvar"])
def test_tail_risk_resumed_at_every_cut_equals_one_pass_exactly_with_ties(name):
    """Returns of a price that moves by whole ticks tie at every level. Restoring a state rebuilds the sorted low
    tail at another size than one pass keeps; CVaR's sum must come out bit for bit the same."""
    spec = KERNELS[name]
    rng = np.random.default_rng(5)
    n = 3000
    x = np.round(rng.normal(0, 1.5, n)) * 1e-4  # a few price ticks: many ties at every level
    gid, ts = np.zeros(n, np.int64), np.arange(n, dtype=np.int64)
    params = spec.bind([0.05, 250], {})
    whole = spec.run(spec.new_state(params, 1), [x], ts, gid, np.arange(n), params)
    out = np.full_like(whole, np.nan)
    state = spec.new_state(params, 1)
    cuts = [0, *sorted(rng.choice(np.arange(1, n), 40, replace=False)), n]
    for a, b in zip(cuts[:-1], cuts[1:]):
        out[a:b] = spec.run(state, [x], ts, gid, np.arange(a, b), params)[a:b]
        state = assemble(spec, params, [from_bytes(to_bytes(extract(spec, state, 0)))])
    np.testing.assert_array_equal(out, whole)
