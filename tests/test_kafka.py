"""KafkaSink, replay and the broker command against a real broker (tansu on loopback)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import BASE_NS, make_ticks, run_cli
from cryptodb.ingest.conform import conform
from cryptodb.ingest.kafka_sink import KafkaDeliveryError, KafkaSink
from cryptodb.ingest.messages import decode, decode_batch
from cryptodb.ingest.schema import TICKS, TRADES
from cryptodb.ingest.ticker_envelope import encode_ticker_envelopes
from kafka import consume_topic, free_port

import cryptodb
from cryptodb.broker import accepts_connections

pytestmark = pytest.mark.slow


def fresh_topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def one_partition_topic(bootstrap: str) -> str:
    """A topic whose single partition shows the global order messages were produced in."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = fresh_topic()
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(10)
    return topic


def ticks_of(symbols: list[str], n: int) -> pa.Table:
    """Known ticks for several symbols, interleaved in time, with receive times a little later."""
    parts = [make_ticks(n, symbol=s, start_ns=BASE_NS + i * 333, seed=i) for i, s in enumerate(symbols)]
    t = conform(pa.concat_tables(parts), TICKS)
    t = t.sort_by([("ts", "ascending"), ("symbol", "ascending")])
    recv = pc.add(t.column("ts").cast(pa.int64()), pa.scalar(150_001, pa.int64())).cast(pa.timestamp("ns"))
    return t.set_column(t.schema.get_field_index("recv_ts"), "recv_ts", recv)


def by_partition_order(received):
    return sorted(received, key=lambda m: (m.partition, m.offset))


def rows_per_key(received) -> dict[bytes, list[bytes]]:
    """Each key's values in the order the consumer read them (offset order within its partition)."""
    out = defaultdict(list)
    for m in by_partition_order(received):
        out[m.key].append(m.value)
    return out


def test_json_sink_delivers_every_row_exactly_once_keyed_by_symbol(kafka_broker):
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD"]
    ticks = ticks_of(symbols, 400)
    trades = conform(pa.table({
        "exchange": ["coinbase"] * 3, "symbol": ["BTC-USD", "ETH-USD", "BTC-USD"],
        "ts": pa.array([BASE_NS + 1, BASE_NS + 2, BASE_NS + 3], pa.timestamp("ns")),
        "trade_id": ["a1", 'quote"and\\slash', "a3"], "price": [87000.5, 3000.25, 87001.0],
        "size": [0.1, 2.0, 0.3], "side": pa.array([1, -1, None], pa.int8())}), TRADES)
    topic = fresh_topic()
    with KafkaSink(kafka_broker, topic) as sink:
        for start in range(0, ticks.num_rows, 37):  # many small writes, as a collector makes per frame
            sink.write("ticks", ticks.slice(start, 37))
        sink.write("trades", trades)
        sink.write_raw("ticks", [("BTC-USD", b"ignored in json format")])
        sink.flush()
        assert sink.counts.rows == {"ticks": ticks.num_rows, "trades": 3}
        assert sink.counts.failed == 0

    received = consume_topic(kafka_broker, topic, expected=ticks.num_rows + 3)
    assert len(received) == ticks.num_rows + 3  # nothing lost, nothing twice
    for m in received:
        table, row = decode(m.value)
        assert m.key == row["symbol"].encode()
    # One partition per symbol, so a symbol's rows arrive in the order they were written.
    partitions = defaultdict(set)
    for m in received:
        partitions[m.key].add(m.partition)
    assert all(len(p) == 1 for p in partitions.values())
    for key, values in rows_per_key(received).items():
        decoded = decode_batch(values)
        expected_ticks = ticks.filter(pc.equal(ticks.column("symbol"), key.decode()))
        assert decoded.tables["ticks"].equals(expected_ticks)
        expected_trades = trades.filter(pc.equal(trades.column("symbol"), key.decode()))
        if expected_trades.num_rows:
            assert decoded.tables["trades"].equals(expected_trades)
        assert not decoded.rejected


def test_raw_sink_passes_envelopes_through_byte_for_byte(kafka_broker):
    ticks = ticks_of(["BTC-USD", "ETH-USD"], 50)
    envelopes = list(zip(ticks.column("symbol").to_pylist(), encode_ticker_envelopes(ticks)))
    envelopes.append(("BTC-USD", '{"channel": "heartbeats",  "note": "spacing and ünïcode kept"}'.encode()))
    topic = fresh_topic()
    with KafkaSink(kafka_broker, topic, format="raw") as sink:
        sink.write("ticks", ticks)  # normalised rows are not sent in raw format
        for start in range(0, len(envelopes), 7):
            sink.write_raw("ticks", envelopes[start:start + 7])
        sink.flush()
        assert sink.counts.rows == {"ticks": len(envelopes)}

    received = consume_topic(kafka_broker, topic, expected=len(envelopes))
    assert len(received) == len(envelopes)
    sent_per_key = defaultdict(list)
    for symbol, payload in envelopes:
        sent_per_key[symbol.encode()].append(payload)
    assert rows_per_key(received) == sent_per_key


def test_failed_deliveries_are_counted_logged_and_raised_by_flush(caplog):
    nobody = f"127.0.0.1:{free_port()}"
    rows = ticks_of(["BTC-USD"], 5)
    sink = KafkaSink(nobody, "lost", config={"message.timeout.ms": 1000})
    with caplog.at_level(logging.ERROR, logger="cryptodb.kafka"):
        sink.write("ticks", rows)
        with pytest.raises(KafkaDeliveryError, match=r"5 message\(s\) to topic 'lost' .* could not be delivered"):
            sink.flush(timeout=30)
    assert sink.counts.failed == 5 and sink.counts.total == 0
    assert any("delivery to topic lost" in r.getMessage() for r in caplog.records)
    sink.flush()  # reported once: a later flush with nothing new to report passes
    sink.close()


def stored_ticks(path) -> pa.Table:
    with cryptodb.connect(path, read_only=True) as db:
        return db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, symbol, seq").to_arrow_table()


def test_replay_from_the_database_equals_the_store_row_for_row(kafka_broker, db_path):
    with cryptodb.connect(db_path) as db:
        db.generate(symbols=3, ticks=3000, seed=1)
    expected = stored_ticks(db_path)
    assert expected.num_rows == 3000
    topic = one_partition_topic(kafka_broker)

    proc = run_cli("--db", str(db_path), "replay", "--to", "kafka", "--bootstrap", kafka_broker, "--topic", topic,
                   check=True)
    assert re.search(r"replayed 3,000 ticks .* in [\d.]+ s \([\d,]+ msg/s\)", proc.stderr), proc.stderr

    received = by_partition_order(consume_topic(kafka_broker, topic, expected=3000))
    assert len(received) == 3000
    decoded = decode_batch([m.value for m in received])
    assert not decoded.rejected
    # One partition: the consumer sees the global replay order (ts, symbol, seq), hence each
    # symbol's own order too, and every value exactly as stored.
    assert decoded.tables["ticks"].equals(expected)
    assert [m.key.decode() for m in received] == expected.column("symbol").to_pylist()


def test_replay_raw_envelopes_from_a_file_at_a_rate(kafka_broker, db_path, tmp_path):
    with cryptodb.connect(db_path) as db:
        db.generate(symbols=3, ticks=3000, seed=1)
    stored = stored_ticks(db_path)
    file = tmp_path / "ticks.parquet"
    pq.write_table(stored.sort_by([("symbol", "descending"), ("ts", "descending")]), file)  # out of order
    btc = stored.filter(pc.equal(stored.column("symbol"), "BTC-USD"))
    rate = 4 * btc.num_rows  # a quarter of a second's worth
    topic = fresh_topic()

    proc = run_cli("replay", "--from", str(file), "--format", "raw", "--symbols", "btc-usd", "--rate", str(rate),
                   "--bootstrap", kafka_broker, "--topic", topic, check=True)
    seconds = float(re.search(r" in ([\d.]+) s ", proc.stderr).group(1))
    assert seconds >= 0.2, proc.stderr  # paced, not sent at once

    received = by_partition_order(consume_topic(kafka_broker, topic, expected=btc.num_rows))
    assert len(received) == btc.num_rows and {m.key for m in received} == {b"BTC-USD"}
    assert received[0].value.startswith(b'{"channel":"ticker"')
    decoded = decode_batch([m.value for m in received]).tables["ticks"]
    no_recv = btc.set_column(btc.schema.get_field_index("recv_ts"), "recv_ts",
                             pa.nulls(btc.num_rows, pa.timestamp("ns")))  # envelopes carry no receive time
    assert decoded.equals(no_recv)


def test_replay_errors_name_the_problem(kafka_broker, db_path):
    with cryptodb.connect(db_path):
        pass
    proc = run_cli("--db", str(db_path), "replay", "--bootstrap", kafka_broker, "--topic", fresh_topic())
    assert proc.returncode == 1 and "no ticks to replay" in proc.stderr
    proc = run_cli("--db", str(db_path), "replay", "--rate", "fast")
    assert proc.returncode == 2 and "--rate wants messages per second" in proc.stderr


def test_broker_background_then_stop_via_the_cli(tmp_path, kafka_broker):
    port = free_port()
    pid_file = tmp_path / "broker.pid"
    files = ("--port", str(port), "--pid-file", str(pid_file))

    started = run_cli("broker", "--background", *files, check=True, timeout=30)
    assert started.stdout.strip() == f"127.0.0.1:{port}"
    assert "in memory only" in started.stderr
    pid = int(pid_file.read_text())
    assert accepts_connections(port)
    assert (tmp_path / "broker.log").exists()
    assert run_cli("broker", "status", *files).stdout.strip() == f"127.0.0.1:{port}"

    taken = run_cli("broker", "--background", "--port", kafka_broker.rsplit(":", 1)[1],
                    "--pid-file", str(tmp_path / "other.pid"))
    assert taken.returncode == 1 and "already listens" in taken.stderr

    stopped = run_cli("broker", "stop", *files, check=True, timeout=30)
    assert f"pid {pid}" in stopped.stderr
    assert not pid_file.exists()
    deadline = time.monotonic() + 5
    while accepts_connections(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not accepts_connections(port)
    again = run_cli("broker", "stop", *files, check=True)
    assert "no background broker" in again.stderr
