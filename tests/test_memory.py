"""The pool of mappings behind large kernel outputs (cryptodb.engine.memory): a mapping goes back to
the pool only when nothing can read it any more (numpy views, Arrow buffers, query results), is
handed out again for the same size, and is unmapped after its decay; results never change."""

import gc
import os
import threading
import time

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import make_ticks

from cryptodb.engine import memory
from cryptodb.engine import run as engine_run
from cryptodb.engine.gate import Engine
from cryptodb.store import ParquetStore

pytestmark = pytest.mark.skipif(not memory.tuning_enabled(), reason="the pool is Linux-only")


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def pooled(a: np.ndarray) -> bool:
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview)


def test_a_mapping_is_reused_once_its_array_is_gone_and_never_while_it_lives():
    pool = memory.MappingPool(decay_s=60)
    a = pool.empty((1000, 3), order="F")
    a[:] = 1.0
    b = pool.empty((1000, 3), order="F")
    assert address(b) != address(a)
    first = address(a)
    del a
    gc.collect()
    c = pool.empty((1000, 3), order="F")
    assert address(c) == first
    assert c.flags.f_contiguous and c.flags.writeable and c.shape == (1000, 3)
    del b, c


def test_an_arrow_buffer_over_a_column_keeps_its_mapping_out_of_the_pool():
    pool = memory.MappingPool(decay_s=60)
    out = pool.empty((4096, 2), order="F")
    out[:, 1] = np.arange(4096.0)
    column = pa.Array.from_buffers(pa.float64(), 4096, [None, pa.py_buffer(np.ascontiguousarray(out[:, 1]))])
    del out
    gc.collect()
    other = pool.empty((4096, 2), order="F")
    other[:] = -1.0
    assert column.to_numpy().tolist() == list(range(4096))
    del column
    gc.collect()
    assert address(pool.empty((4096, 2), order="F")) != address(other)  # `other` still lives


def test_released_mappings_are_kept_then_unmapped_after_the_decay_or_above_the_limit():
    def release_three(pool: memory.MappingPool) -> None:
        arrays = [pool.empty((1 << 18,)) for _ in range(3)]  # 2 MB each
        del arrays
        gc.collect()

    kept = memory.MappingPool(decay_s=60)
    release_three(kept)
    assert kept.free_bytes() == 3 * (2 << 20)
    kept.purge(older_than=0)
    assert kept.free_bytes() == 0

    decaying = memory.MappingPool(decay_s=0.05)
    release_three(decaying)
    deadline = time.monotonic() + 5
    while decaying.free_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert decaying.free_bytes() == 0

    capped = memory.MappingPool(decay_s=60, free_limit=2 << 20)
    release_three(capped)
    assert capped.free_bytes() == 2 << 20


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs fork")
def test_a_forked_child_still_unmaps_what_it_releases(monkeypatch):
    monkeypatch.setattr(memory._POOL, "decay_s", 0.05)
    held = memory.output_array(memory.POOL_MIN_BYTES // 8, 1)
    del held
    gc.collect()  # the parent's purge timer is running; a forked child has no such thread
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        deadline = time.monotonic() + 5
        while memory._POOL.free_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.write(write, b"1" if memory._POOL.free_bytes() == 0 else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"


def test_arrays_released_on_other_threads_return_safely():
    pool = memory.MappingPool(decay_s=60)
    errors = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(200):
            a = pool.empty((int(rng.integers(1, 4)) * 1000, 1), order="F")
            a[:, 0] = seed
            time.sleep(0)
            if not (a[:, 0] == seed).all():  # another thread was handed the same mapping
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_output_array_uses_the_pool_above_its_size_only(monkeypatch):
    big = memory.output_array(memory.POOL_MIN_BYTES // 8, 1)
    small = memory.output_array(10, 2)
    assert pooled(big) and not pooled(small)
    assert big.flags.f_contiguous and small.flags.f_contiguous
    monkeypatch.setenv("CRYPTODB_MALLOC_TUNING", "0")
    assert not pooled(memory.output_array(memory.POOL_MIN_BYTES // 8, 1))


QUERY = """
SELECT symbol, ts, rsi(price, 14) OVER w AS rsi, bbands_upper(price, 20) OVER w AS up,
       bbands_lower(price, 20) OVER w AS lo, rolling_max(price, 30) OVER w AS hi,
       historical_var(log_return, 0.05, 50) OVER w AS v
FROM (SELECT *, ln(price / lag(price) OVER (PARTITION BY symbol ORDER BY ts, seq)) AS log_return FROM t)
WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq)
ORDER BY symbol, ts"""


def test_query_results_are_the_same_from_the_pool_and_stay_intact_while_later_queries_reuse_it(
        tmp_path, monkeypatch):
    con = duckdb.connect()
    t = pa.concat_tables([make_ticks(3000, s, seed=i) for i, s in enumerate(["BTC-USD", "ETH-USD"])])
    con.register("t", t)
    engine = Engine(con, ParquetStore(tmp_path / "store"))
    monkeypatch.setenv("CRYPTODB_MALLOC_TUNING", "0")
    expected = engine_run.run_statement(engine, QUERY).to_arrow_table()
    monkeypatch.delenv("CRYPTODB_MALLOC_TUNING")
    monkeypatch.setattr(memory, "POOL_MIN_BYTES", 0)
    first = engine_run.run_statement(engine, QUERY).to_arrow_table()
    assert first.equals(expected)
    for _ in range(3):  # each run's outputs come from mappings earlier runs released
        later = engine_run.run_statement(engine, QUERY).to_arrow_table()
        assert later.equals(expected)
        del later
        gc.collect()
    assert first.equals(expected)
