"""Live mode against a real broker: features built batch by batch from saved kernel state equal
research over the same ticks, row for row, also across a crash and a restart."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pyarrow as pa
import pytest
from conftest import ROOT, run_cli
from cryptodb.ingest.messages import encode_rows
from cryptodb.ingest.replay import replay_to_kafka
from cryptodb.ingest.schema import TICKS

import cryptodb
from cryptodb.live.offline import OfflineMessage

SYMBOLS, TICKS_PER_RUN, SEED = 3, 3000, 5


def fresh_topic() -> str:
    return f"live-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A store of generated ticks and, computed from it by `research`, the expected features."""
    path = tmp_path_factory.mktemp("source") / "source.duckdb"
    with cryptodb.connect(path) as db:
        db.generate(symbols=SYMBOLS, ticks=TICKS_PER_RUN, seed=SEED)
        db.run_script("research")
        ticks = db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, symbol, seq").to_arrow_table()
        features = sorted_rows(db.sql("SELECT * FROM features").to_arrow_table())
    return ticks, features


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("symbol", "ascending"), ("ts", "ascending"), ("seq", "ascending")])


def expected_signals(features: pa.Table) -> list[tuple[str, int, str]]:
    """The signal rules of sql/live.sql, evaluated here on research's features: (symbol, ts ns, side)."""
    ts_ns = features.column("ts").cast(pa.int64())
    found = []
    for r in features.set_column(features.column_names.index("ts"), "ts", ts_ns).to_pylist():
        z, rsi = r["zscore"], r["rsi"]
        if z is not None and rsi is not None and z < -2 and rsi < 30:
            found.append((r["symbol"], r["ts"], "BUY"))
        elif z is not None and rsi is not None and z > 2 and rsi > 70:
            found.append((r["symbol"], r["ts"], "SELL"))
        elif (r["cusum_alarm"] or 0) != 0:
            found.append((r["symbol"], r["ts"], "REGIME CHANGE"))
    return sorted(found)


def publish(bootstrap: str, topic: str, ticks: pa.Table) -> None:
    replay_to_kafka(ticks.to_batches(max_chunksize=1000), bootstrap, topic)


def live_features(path) -> pa.Table:
    with cryptodb.connect(path, read_only=True) as db:
        return sorted_rows(db.sql("SELECT * FROM features").to_arrow_table())


def assert_same_rows(got: pa.Table, expected: pa.Table) -> None:
    assert got.column_names == expected.column_names
    assert got.num_rows == expected.num_rows
    for name in expected.column_names:
        a, b = got.column(name), expected.column(name)
        assert a.type == b.type, name
        if pa.types.is_floating(b.type):  # exactly equal, NULL where NULL (NaN never appears)
            x = a.to_numpy(zero_copy_only=False)
            y = b.to_numpy(zero_copy_only=False)
            assert np.array_equal(x, y, equal_nan=True), name
        else:
            assert a.to_pylist() == b.to_pylist(), name


def run_live(path, bootstrap, topic, *extra, env=None, check=True):
    return run_cli("--db", str(path), "live", "--bootstrap", bootstrap, "--topic", topic, "--group", topic,
                   "--batch-rows", "400", "--batch-ms", "200", "--idle-exit", "3", *extra, env=env, check=check,
                   timeout=180)


@pytest.mark.slow
@pytest.mark.parametrize("commit_ms", ["0", "700"])
def test_live_features_equal_research_row_for_row(kafka_broker, source, tmp_path, commit_ms):
    ticks, expected = source
    topic = fresh_topic()
    publish(kafka_broker, topic, ticks)
    path = tmp_path / "live.duckdb"
    proc = run_live(path, kafka_broker, topic, "--commit-ms", commit_ms)
    batches = proc.stderr.count("\nbatch ") + proc.stderr.startswith("batch ")
    assert batches >= 2  # several micro-batches, so state really carried over
    if commit_ms == "0":
        assert proc.stderr.count("committed (") == batches
    else:  # batches committed together: the states each one left stayed in memory for the next
        assert proc.stderr.count("committed (") < batches
    assert_same_rows(live_features(path), expected)
    with cryptodb.connect(path, read_only=True) as db:
        stored = db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, symbol, seq").to_arrow_table()
        assert stored.equals(ticks)
        signals = db.sql("SELECT * FROM signals").to_arrow_table()
    got = sorted(zip(signals.column("symbol").to_pylist(), signals.column("ts").cast(pa.int64()).to_pylist(),
                     signals.column("signal").to_pylist()))
    assert got == expected_signals(expected) and len(got) > 0
    # Signals print as they happen.
    first = signals.sort_by([("ts", "ascending")]).slice(0, 1).to_pylist()[0]
    assert f"{first['ts']} {first['symbol']} {first['signal']}" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", "rocksdb"])
def test_a_crash_before_commit_then_a_restart_equal_one_uninterrupted_run(kafka_broker, source, tmp_path, backend):
    ticks, expected = source
    topic = fresh_topic()
    publish(kafka_broker, topic, ticks)
    path = tmp_path / "live.duckdb"
    crashed = run_live(path, kafka_broker, topic, "--state-backend", backend,
                       env={"CRYPTODB_LIVE_EXIT_BEFORE_COMMIT": "3"}, check=False)
    assert crashed.returncode == 75, crashed.stderr  # died after writing batch 3's files
    proc = run_live(path, kafka_broker, topic, "--state-backend", backend)
    assert "removed" in proc.stderr and "did not commit" in proc.stderr
    assert_same_rows(live_features(path), expected)


def four_ticks() -> pa.Table:
    """BTC-USD on coinbase, seq 1 to 4, a millisecond apart."""
    base = 1_767_225_600_000_000_000
    return pa.table({
        "exchange": ["coinbase"] * 4, "symbol": ["BTC-USD"] * 4,
        "ts": pa.array([base + i * 1_000_000 for i in (1, 2, 3, 4)], pa.timestamp("ns")),
        "seq": pa.array([1, 2, 3, 4], pa.int64()), "price": [100.0, 101.0, 102.0, 103.0],
        "bid": [99.9, 100.9, 101.9, 102.9], "ask": [100.1, 101.1, 102.1, 103.1]})


@pytest.mark.slow
def test_bad_late_and_duplicate_messages(kafka_broker, tmp_path):
    from confluent_kafka import Producer

    topic = fresh_topic()
    good = four_ticks()
    late = good.slice(0, 1).set_column(3, "seq", pa.array([0], pa.int64()))  # before tick 1: late
    producer = Producer({"bootstrap.servers": kafka_broker})
    messages = encode_rows("ticks", good) + [b"{not json", encode_rows("ticks", good.slice(1, 1))[0]]
    for payload in messages:
        producer.produce(topic, key=b"BTC-USD", value=payload)
    producer.flush(10)
    path = tmp_path / "live.duckdb"
    run_live(path, kafka_broker, topic)
    producer.produce(topic, key=b"BTC-USD", value=encode_rows("ticks", late)[0])
    producer.produce(topic, key=b"BTC-USD", value=encode_rows("ticks", good.slice(3, 1))[0])  # stored already
    producer.flush(10)
    run_live(path, kafka_broker, topic)
    with cryptodb.connect(path, read_only=True) as db:
        assert db.sql("SELECT seq FROM ticks ORDER BY ts, seq").fetchall() == [(1,), (2,), (3,), (4,)]
        letters = db.sql("SELECT reason, payload FROM dead_letters ORDER BY reason").fetchall()
        assert db.sql("SELECT count(*) FROM features").fetchall() == [(4,)]
    assert len(letters) == 2
    assert "late tick" in letters[0][0] and '"seq":0' in letters[0][1]
    assert letters[1][1] == "{not json"


def test_ticks_waiting_for_a_commit_count_as_stored(tmp_path):
    """With --commit-ms, a tick repeated from a batch not committed yet is a duplicate (not a late
    tick), and the batches' rows reach the store at their commit, once."""
    from cryptodb.live.runner import LiveOptions, LiveRunner

    good = four_ticks()
    late = good.slice(2, 1).set_column(3, "seq", pa.array([0], pa.int64()))
    payloads = encode_rows("ticks", good.slice(0, 3)) + encode_rows("ticks", good.slice(1, 1)) + \
        encode_rows("ticks", late) + encode_rows("ticks", good.slice(3, 1))
    messages = [OfflineMessage(p, i, topic="t", key=b"BTC-USD") for i, p in enumerate(payloads)]
    path = tmp_path / "live.duckdb"
    with cryptodb.connect(path) as db:
        runner = LiveRunner(db, LiveOptions(topic="t", commit_ms=60_000, print_signals=False))
        runner.open()
        try:
            first = runner.process(messages[:3], 1)
            second = runner.process(messages[3:], 2)
            assert first.committed_ms is None and second.committed_ms is None
            assert (second.ticks, second.duplicates, second.dead_letters) == (1, 1, 1)
            assert not db.store.files("ticks")  # nothing is written before the commit
            assert len(runner.commit(2)) == len(messages)  # both batches' messages committed
        finally:
            runner.close()
        assert db.sql("SELECT seq FROM ticks ORDER BY ts, seq").fetchall() == [(1,), (2,), (3,), (4,)]
        assert db.sql("SELECT count(*) FROM features").fetchall() == [(4,)]
        assert "late tick" in db.sql("SELECT reason FROM dead_letters").fetchall()[0][0]


@pytest.mark.slow
def test_sigterm_finishes_the_batch_commits_and_exits_0(kafka_broker, source, tmp_path):
    ticks, _ = source
    topic = fresh_topic()
    publish(kafka_broker, topic, ticks)
    path = tmp_path / "live.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "cryptodb", "--db", str(path), "live", "--bootstrap",
                             kafka_broker, "--topic", topic, "--group", topic, "--batch-rows", "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    seen = ""
    while "batch 1:" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # Whatever was committed is whole: every stored tick has its features, and a restart
    # completes the rest exactly.
    with cryptodb.connect(path, read_only=True) as db:
        n_ticks = db.sql("SELECT count(*) FROM ticks").fetchall()[0][0]
        n_features = db.sql("SELECT count(*) FROM features").fetchall()[0][0]
    assert 0 < n_ticks == n_features <= ticks.num_rows


@pytest.mark.slow
def test_readers_query_while_live_writes(kafka_broker, source, tmp_path):
    ticks, expected = source
    topic = fresh_topic()
    path = tmp_path / "live.duckdb"
    cryptodb.connect(path).close()  # the catalog exists before live starts
    publish(kafka_broker, topic, ticks)
    proc = subprocess.Popen([sys.executable, "-m", "cryptodb", "--db", str(path), "live", "--bootstrap",
                             kafka_broker, "--topic", topic, "--group", topic, "--batch-rows", "300",
                             "--idle-exit", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    counts = []
    while proc.poll() is None:
        reader = run_cli("--db", str(path), "sql", "-r", "--format", "csv",
                         "SELECT (SELECT count(*) FROM ticks) AS t")
        assert reader.returncode == 0, reader.stderr
        counts.append(int(reader.stdout.splitlines()[1]))
    assert proc.returncode == 0, proc.stderr.read()
    assert counts == sorted(counts) and counts[-1] <= ticks.num_rows
    assert_same_rows(live_features(path), expected)


@pytest.mark.slow
def test_export_sends_features_keyed_by_symbol_from_run_and_from_live(kafka_broker, source, tmp_path):
    import json

    from kafka import consume_topic

    ticks, expected = source
    path = tmp_path / "store.duckdb"
    with cryptodb.connect(path) as db:
        db.insert_ticks(ticks)
    once = fresh_topic()
    run_cli("--db", str(path), "run", "export", "--param", f"bootstrap={kafka_broker}", "--param", f"topic={once}",
            check=True)
    received = consume_topic(kafka_broker, once, expected=expected.num_rows)
    assert len(received) == expected.num_rows
    rows = {(m.key.decode(), json.loads(m.value)["seq"]): json.loads(m.value) for m in received}
    for want in expected.to_pylist()[:: 97]:
        got = rows[(want["symbol"], want["seq"])]
        assert got["symbol"] == want["symbol"]
        for name in ("rsi", "zscore", "macd_hist", "var_95"):
            assert got[name] == want[name]  # JSON carries the shortest exact repr of each double

    source_topic, features_topic = fresh_topic(), fresh_topic()
    publish(kafka_broker, source_topic, ticks)
    live_path = tmp_path / "live.duckdb"
    run_live(live_path, kafka_broker, source_topic, "--script", "export", "--param", f"topic={features_topic}")
    streamed = consume_topic(kafka_broker, features_topic, expected=expected.num_rows)
    assert sorted((m.key.decode(), json.loads(m.value)["seq"]) for m in streamed) == sorted(rows)
    assert_same_rows(live_features(live_path), expected)


@pytest.mark.slow
def test_a_broker_outage_is_waited_out_and_loses_nothing(source, tmp_path):
    from kafka import free_port

    from cryptodb.broker import start_broker

    ticks, _ = source
    topic = fresh_topic()
    path = tmp_path / "live.duckdb"
    broker = start_broker(free_port(), log_file=tmp_path / "tansu.log")
    try:
        publish(broker.bootstrap, topic, ticks)
        proc = subprocess.Popen([sys.executable, "-m", "cryptodb", "--db", str(path), "live", "--bootstrap",
                                 broker.bootstrap, "--topic", topic, "--batch-rows", "500", "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        seen = ""
        deadline = time.monotonic() + 120
        while "batch 6:" not in seen and time.monotonic() < deadline:  # 3,000 ticks: batch 6 is the last
            seen += proc.stderr.readline()
    finally:
        broker.stop()
    time.sleep(4)  # the broker is gone: live keeps retrying instead of failing
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "broker:" in err and "will retry" in err  # said once, not a crash
    with cryptodb.connect(path, read_only=True) as db:
        assert db.sql("SELECT count(*) FROM ticks").fetchall()[0][0] == ticks.num_rows
        assert db.sql("SELECT count(*) FROM features").fetchall()[0][0] == ticks.num_rows


@pytest.mark.slow
@pytest.mark.parametrize("commit_ms", ["0", "400"])
def test_kill_9_at_random_points_then_restart_equals_one_uninterrupted_run(kafka_broker, source, tmp_path,
                                                                           commit_ms):
    import random

    ticks, expected = source
    topic = fresh_topic()
    publish(kafka_broker, topic, ticks)
    path = tmp_path / "live.duckdb"
    rng = random.Random(7)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "cryptodb", "--db", str(path), "live", "--bootstrap",
                                 kafka_broker, "--topic", topic, "--batch-rows", "150", "--commit-ms", commit_ms,
                                 "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        # The first batch is under way (or, once an earlier run consumed everything, no batch
        # comes at all: then the wait ends after a few seconds).
        line = proc.stderr.readline() if select.select([proc.stderr], [], [], 10)[0] else ""
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        assert line.startswith("batch") or proc.returncode == -9
    finished = run_live(path, kafka_broker, topic, "--quiet")
    assert finished.returncode == 0
    assert_same_rows(live_features(path), expected)
    with cryptodb.connect(path, read_only=True) as db:
        signals = db.sql("SELECT symbol, epoch_ns(ts), signal FROM signals ORDER BY symbol, ts").fetchall()
        stored = db.sql("SELECT count(*), count(DISTINCT (symbol, ts, seq)) FROM ticks").fetchall()[0]
    assert stored == (ticks.num_rows, ticks.num_rows)
    assert signals == expected_signals(expected)  # nothing lost, nothing twice
