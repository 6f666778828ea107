"""hold and hold_long_short: the position between entry and exit signals, against a plain loop."""

import numpy as np
import pytest
from cryptodb.udfs import registry
from hypothesis import given, settings
from hypothesis import strategies as st

import cryptodb


def loop(long_entry, long_exit, short_entry, short_exit):
    """The rule as written in udfs/position.py, one row at a time (None = NULL)."""
    held, out = 0, []
    for le, lx, se, sx in zip(long_entry, long_exit, short_entry, short_exit):
        if None in (le, lx, se, sx):
            out.append(None)
            continue
        if (held == 1 and lx) or (held == -1 and sx):
            held = 0
        if held == 0:
            go_long, go_short = le and not lx, se and not sx
            held = 1 if go_long and not go_short else -1 if go_short and not go_long else 0
        out.append(held)
    return out


def run(name, *cols):
    spec = registry.kernels()[name]
    n = len(cols[0])
    arrays = [np.array([np.nan if v is None else float(v) for v in c]) for c in cols]
    out = spec.run(spec.new_state({}, 1), arrays, np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n), {})
    return [None if np.isnan(v) else int(v) for v in out[:, 0]]


flags = st.lists(st.sampled_from([True, False, True, False, None]), min_size=4, max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(flags, min_size=1, max_size=60))
def test_long_short_equals_the_loop(rows):
    cols = list(zip(*rows))
    assert run("hold_long_short", *cols) == loop(*cols)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_hold_is_the_long_side(rows):
    entry, exit_ = zip(*rows)
    never = [False] * len(rows)
    assert run("hold", entry, exit_) == loop(entry, exit_, never, never)


def test_rules_by_example():
    #                    entry  exit   entry+exit (flat: ignored)   entry   exit+entry_short -> reversal
    assert loop([1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]) == \
        [1, 0, 0, 0, 1, -1]
    assert run("hold_long_short", [1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1], [0] * 6) == \
        [1, 0, 0, 0, 1, -1]


def test_in_sql_per_partition():
    with cryptodb.connect() as db:
        rows = db.sql("""
            WITH t AS (SELECT i, i % 2 AS k, (i // 2) % 5 = 0 AS e, (i // 2) % 5 = 3 AS x FROM range(40) r(i))
            SELECT k, i, hold(e, x) OVER (PARTITION BY k ORDER BY i) AS h FROM t ORDER BY k, i""").fetchall()
    for k in (0, 1):
        held = [h for kk, _, h in rows if kk == k]
        assert held == [1, 1, 1, 0, 0] * 4
    with pytest.raises(Exception, match="ORDER BY"):
        with cryptodb.connect() as db:
            db.sql("SELECT hold(true, false) OVER () FROM range(3)").fetchall()
