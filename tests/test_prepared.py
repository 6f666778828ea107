"""Plans kept between runs (`Engine(reuse_plans=True)`, what live mode uses on every micro-batch):
a replayed plan over new rows gives what a fresh plan gives, parameters are bound anew each run,
and batches that resume from saved state equal one pass."""

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import make_ticks

from cryptodb.engine import run as engine_run
from cryptodb.engine.gate import Engine, defined
from cryptodb.engine.resume import ResidentStates
from cryptodb.store import ParquetStore

# Two scopes (the second reads the first's aliases through an expression, as research's CUSUM
# does), a parameter read from a variable, a native window function and an outer ORDER BY.
QUERY = """
WITH base AS (
    SELECT symbol, ts, seq, price,
           log_return(price) OVER w AS ret,
           rolling_std(ret, 20) OVER w AS sd,
           ema(price, getvariable('span')) OVER w AS e
    FROM t WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq))
SELECT *,
       cusum_stat(ret / nullif(sd, 0), 0.5, 3.0) OVER w AS cs,
       cusum_alarm(ret / nullif(sd, 0), 0.5, 3.0) OVER w AS ca,
       row_number() OVER (PARTITION BY symbol ORDER BY ts) AS n
FROM base WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq)
ORDER BY symbol, ts, seq"""


def ticks(seed: int, n: int = 400) -> pa.Table:
    return pa.concat_tables([make_ticks(n, s, seed=seed + i, step_ns=3_000_017 * (i + 1))
                             for i, s in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"])])


def engine(tmp_path, reuse: bool, states=None) -> Engine:
    con = duckdb.connect()
    con.execute("SET VARIABLE span = 5")
    return Engine(con, ParquetStore(tmp_path / f"store-{reuse}"), kernel_states=states, reuse_plans=reuse)


def run(e: Engine, rows: pa.Table) -> pa.Table:
    e.con.register("t", rows)
    try:
        return e.run(QUERY).to_arrow_table()
    finally:
        e.con.unregister("t")


def test_a_replayed_plan_over_new_rows_equals_a_fresh_plan(tmp_path, monkeypatch):
    reused = engine(tmp_path, reuse=True)
    run(reused, ticks(1))
    parses = []
    real_parse = engine_run.parse
    monkeypatch.setattr(engine_run, "parse", lambda sql: parses.append(sql) or real_parse(sql))
    for seed in (2, 3):
        rows = ticks(seed, n=300 + 50 * seed)
        assert run(reused, rows).equals(run(engine(tmp_path, reuse=False), rows))
    assert len(parses) == 2  # the fresh engines parsed; the reusing one did not parse again


def test_parameters_are_bound_anew_on_every_run(tmp_path):
    reused = engine(tmp_path, reuse=True)
    rows = ticks(4)
    first = run(reused, rows)
    reused.con.execute("SET VARIABLE span = 30")
    second = run(reused, rows)
    fresh = engine(tmp_path, reuse=False)
    fresh.con.execute("SET VARIABLE span = 30")
    assert second.equals(run(fresh, rows))
    assert not second.column("e").equals(first.column("e"))


class SavedStates:
    """Encoded states by (call, partition), as a live backend keeps them once committed."""

    def __init__(self):
        self.saved = {}

    def load(self, call_id, partitions):
        return [self.saved.get((call_id, p)) for p in partitions]

    def save(self, call_id, states):
        self.saved.update({(call_id, p): b for p, b in states.items()})


@pytest.mark.parametrize("reuse", [False, True])
def test_batches_resuming_from_state_equal_one_pass(tmp_path, reuse):
    """States stay in memory from batch to batch; at some cuts they are saved and memory is
    dropped, as a restart would, and the next batch resumes from the saved ones."""
    rows = ticks(5).sort_by([("ts", "ascending"), ("symbol", "ascending")])
    one_pass = run(engine(tmp_path, reuse=False), rows)
    saved = SavedStates()
    batched = engine(tmp_path, reuse=reuse, states=ResidentStates(saved))
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, rows.num_rows), 12, replace=False))
    parts, restarts = [], 0
    for a, b in zip([0, *cuts], [*cuts, rows.num_rows]):
        batched.kernel_states.begin_batch()
        parts.append(run(batched, rows.slice(a, b - a)))
        if rng.random() < 0.4:
            for call, states in batched.kernel_states.changed():
                saved.save(call, states)
            batched = engine(tmp_path, reuse=reuse, states=ResidentStates(saved))
            restarts += 1
    assert restarts >= 3
    got = pa.concat_tables(parts).sort_by([("symbol", "ascending"), ("ts", "ascending"), ("seq", "ascending")])
    # row_number() is DuckDB's and restarts each batch; every kernel column carries on.
    kernels = ["ret", "sd", "e", "cs", "ca"]
    assert got.select(kernels).equals(one_pass.select(kernels))
    assert one_pass.column("ca").drop_null().to_numpy().any()  # alarms happen, so the check bites


def test_a_statement_run_twice_in_a_batch_resumes_each_time_from_the_batch_before(tmp_path):
    """Two runs of one statement's text in a batch are two calls, each with its own states: the
    second does not resume from what the first left in the same batch."""
    rows = ticks(6).sort_by([("ts", "ascending"), ("symbol", "ascending")])
    one_pass = run(engine(tmp_path, reuse=False), rows)
    batched = engine(tmp_path, reuse=True, states=ResidentStates(SavedStates()))
    firsts, seconds = [], []
    for a, b in [(0, 300), (300, 700), (700, rows.num_rows)]:
        batched.kernel_states.begin_batch()
        firsts.append(run(batched, rows.slice(a, b - a)))
        seconds.append(run(batched, rows.slice(a, b - a)))
    for parts in (firsts, seconds):
        got = pa.concat_tables(parts).sort_by([("symbol", "ascending"), ("ts", "ascending"), ("seq", "ascending")])
        assert got.select(["ret", "sd", "e", "cs", "ca"]).equals(one_pass.select(["ret", "sd", "e", "cs", "ca"]))


def test_window_orders_are_shared_only_by_the_same_key_buffers():
    from cryptodb.engine.compute import WindowOrders

    orders = WindowOrders()
    table = pa.table({"symbol": ["a", "b", "a"], "ts": [3, 1, 2]})
    by = (["symbol"], [("ts", False, False)])
    gid, groups, rows, in_order, _, _ = first = orders.order(table, *by)
    assert list(gid) == [0, 1, 0] and groups == 2 and list(rows) == [2, 0, 1] and not in_order
    # A later scope's rows holding the very same key columns (plus others): ordered once.
    again = orders.order(pa.table({"x": [1.0, 2.0, 3.0], "symbol": table.column("symbol"), "ts": table.column("ts")}),
                         *by)
    assert all(a is b for a, b in zip(again, first))
    # Equal names and values elsewhere in memory, but another order: computed afresh.
    other = orders.order(pa.table({"symbol": ["a", "b", "a"], "ts": [1, 5, 2]}), *by)
    assert other[0] is not gid and list(other[2]) == [0, 1, 2] and other[3]


def test_a_reusing_engine_sees_the_kernel_views_it_defines_and_drops(tmp_path):
    """Such an engine reads the catalog's kernel views once, and again after it changes them."""
    reused = engine(tmp_path, reuse=True)
    reused.con.register("t", ticks(6, n=50))
    assert reused.run("SELECT count(*) FROM t").fetchall() == [(150,)]  # the (empty) views are read
    reused.run("CREATE VIEW smooth AS SELECT symbol, ts, ema(price, 3) OVER (PARTITION BY symbol ORDER BY ts) AS e "
               "FROM t")
    assert reused.run("SELECT count(e) FROM smooth").fetchall() == [(150 - 3 * 2,)]
    assert set(defined(reused.con)) == {"smooth"}
    reused.run("DROP VIEW smooth")  # a kernel view's drop: its definition leaves the catalog too
    assert defined(reused.con) == {}
    with pytest.raises(duckdb.CatalogException):
        reused.run("SELECT count(e) FROM smooth")
