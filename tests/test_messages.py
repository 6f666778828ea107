"""The JSON form of rows on Kafka and the decoders live mode uses (no broker needed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from conftest import BASE_NS, make_ticks
from cryptodb.ingest.conform import conform
from cryptodb.ingest.messages import MessageError, decode, decode_all, decode_batch, encode_rows
from cryptodb.ingest.replay import file_batches
from cryptodb.ingest.schema import BOOK, FUNDING, TICKS, TRADES
from cryptodb.ingest.ticker_envelope import encode_ticker_envelopes

NS = pa.timestamp("ns")


def awkward_ticks() -> pa.Table:
    """Values a text encoding could damage: odd nanoseconds, tiny and huge doubles, NULLs."""
    rng = np.random.default_rng(7)
    n = 500
    prices = np.abs(rng.standard_normal(n)) * 10.0 ** rng.integers(-12, 12, n)  # exchanges refuse negatives
    t = conform(make_ticks(n, step_ns=999_999_937), TICKS)
    t = t.set_column(t.schema.get_field_index("price"), "price", pa.array(prices))
    recv = pa.array([None if i % 3 == 0 else BASE_NS + i * 7 + 1 for i in range(n)], pa.int64()).cast(NS)
    t = t.set_column(t.schema.get_field_index("recv_ts"), "recv_ts", recv)
    bid = t.column("bid").to_pylist()
    bid[5] = None
    return t.set_column(t.schema.get_field_index("bid"), "bid", pa.array(bid, pa.float64()))


def test_the_json_form_names_columns_and_carries_integer_nanoseconds():
    t = awkward_ticks().slice(0, 1)
    message = json.loads(encode_rows("ticks", t)[0])
    assert list(message) == ["table", *TICKS.names]
    assert message["table"] == "ticks"
    assert message["ts"] == t.column("ts").cast(pa.int64())[0].as_py()  # an integer, not text
    assert message["recv_ts"] is None


def test_every_value_decodes_back_exactly_one_by_one_and_in_batch():
    t = awkward_ticks()
    messages = encode_rows("ticks", t)
    assert decode_batch(messages).tables["ticks"].equals(t)
    as_ints = t.cast(pa.schema([(f.name, pa.int64() if f.type == NS else f.type) for f in t.schema]))
    for message, expected in zip(messages, as_ints.to_pylist()):
        assert decode(message) == ("ticks", expected)


@pytest.mark.parametrize("spec, data", [
    (TRADES, {"exchange": ["binance"], "symbol": ["ETH-USDT"], "ts": [BASE_NS + 3], "trade_id": ['x"y\\z\n'],
              "price": [1.5], "size": [2.0], "side": pa.array([-1], pa.int8())}),
    (FUNDING, {"exchange": ["binance"], "symbol": ["BTC-USDT"], "ts": [BASE_NS], "mark_price": [87000.1],
               "index_price": [86999.9], "funding_rate": [1e-4], "next_funding_ts": [BASE_NS + 8 * 3600 * 10**9]}),
    (BOOK, {"exchange": ["coinbase"], "symbol": ["BTC-USD"], "ts": [BASE_NS + 9], "seq": [3],
            "side": pa.array([1], pa.int8()), "price": [86000.0], "size": [0.0], "is_snapshot": [True]}),
])
def test_other_tables_round_trip(spec, data):
    t = conform(pa.table(data), spec)
    assert decode_batch(encode_rows(spec.name, t)).tables[spec.name].equals(t)


def test_non_finite_floats_travel_as_null():
    t = awkward_ticks().slice(0, 2)
    size = pa.array([math.nan, math.inf])
    t = t.set_column(t.schema.get_field_index("size"), "size", size)
    decoded = decode_batch(encode_rows("ticks", t)).tables["ticks"]
    assert decoded.column("size").to_pylist() == [None, None]


def test_raw_ticker_envelopes_decode_to_ticks_rows():
    t = awkward_ticks().slice(0, 20)
    envelopes = encode_ticker_envelopes(t)
    assert json.loads(envelopes[0])["events"][0]["tickers"][0]["product_id"] == "BTC-USD"
    decoded = decode_batch(envelopes).tables["ticks"]
    no_recv = t.set_column(t.schema.get_field_index("recv_ts"), "recv_ts", pa.nulls(20, NS))
    assert decoded.equals(no_recv)
    # A consumer that knows when each message arrived passes it on as the rows' receive time.
    arrived = [BASE_NS + 10 * i for i in range(20)]
    stamped = decode_batch(envelopes, recv_ns=arrived).tables["ticks"]
    assert stamped.column("recv_ts").cast(pa.int64()).to_pylist() == arrived


def test_an_envelope_with_several_tickers_gives_several_rows():
    envelope = {"channel": "ticker", "timestamp": "2026-01-01T00:00:00.000000001Z", "sequence_num": 7,
                "events": [{"type": "snapshot", "tickers": [
                    {"type": "ticker", "product_id": "BTC-USD", "price": "87000.5", "best_bid": "87000.4"},
                    {"type": "ticker", "product_id": "eth-usd", "price": "3000", "best_ask_quantity": "1.25"}]}]}
    rows = decode_all(json.dumps(envelope))
    assert [(t, r["symbol"], r["ts"], r["seq"], r["price"]) for t, r in rows] == [
        ("ticks", "BTC-USD", BASE_NS + 1, 7, 87000.5), ("ticks", "ETH-USD", BASE_NS + 1, 7, 3000.0)]
    assert rows[1][1]["ask_size"] == 1.25 and rows[1][1]["bid"] is None
    with pytest.raises(MessageError, match="2 rows"):
        decode(json.dumps(envelope))


def test_a_batch_keeps_message_order_across_forms_and_rejects_bad_messages_with_reasons():
    t = awkward_ticks().slice(0, 4)
    normalised = encode_rows("ticks", t)
    envelopes = encode_ticker_envelopes(t)
    batch = [normalised[0], envelopes[1], b'{"channel":"heartbeats","heartbeat_counter":3}', normalised[2],
             b"not json", b'{"table":"ticks","exchange":"coinbase","symbol":"BTC-USD","ts":5}',
             b'{"table":"quotes"}', b'{"table":"ticks","exchange":"c","symbol":"BTC-USD","ts":"1","price":1}',
             envelopes[3], b'{"channel":"level2"}']
    decoded = decode_batch(batch)
    assert decoded.ignored == 1
    assert [(r.index, r.reason.split(":")[0]) for r in decoded.rejected] == [
        (4, "malformed JSON"), (5, "ticks"), (6, "unknown table 'quotes' (known"), (7, "ticks"),
        (9, "unexpected channel 'level2'")]
    assert "missing price or bid or ask" in decoded.rejected[1].reason
    assert decoded.tables["ticks"].column("seq").to_pylist() == t.column("seq").to_pylist()


def test_a_batch_of_one_table_with_another_tables_field_rejects_only_that_message():
    t = awkward_ticks().slice(0, 3)
    messages = encode_rows("ticks", t)
    # Every message starts as a ticks row, so the batch is first read with the ticks fields only.
    odd = messages[1][:-1] + b',"trade_id":"42"}'
    decoded = decode_batch([messages[0], odd, messages[2]])
    assert [(r.index, r.reason) for r in decoded.rejected] == [(1, "ticks: unknown field 'trade_id'")]
    assert decoded.tables["ticks"].equals(pa.concat_tables([t.slice(0, 1), t.slice(2, 1)]))


def test_the_fast_path_and_the_one_by_one_path_agree():
    t = awkward_ticks()
    messages = encode_rows("ticks", t)
    fast = decode_batch(messages).tables["ticks"]
    slow = decode_batch(messages + [b"broken"]).tables["ticks"]  # one bad message: the slow path runs
    assert fast.equals(slow)


def test_replay_reads_a_csv_file_in_replay_order(tmp_path):
    a = make_ticks(5, symbol="ETH-USD", seed=1)
    b = make_ticks(5, symbol="BTC-USD", seed=2)
    csv = tmp_path / "ticks.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.concat_tables([a, b]), csv)
    total, batches = file_batches(csv, "ticks")
    rows = pa.Table.from_batches(list(batches))
    assert total == 10
    # Same ts for both symbols: the tie is broken by symbol, then seq.
    assert rows.column("symbol").to_pylist()[:2] == ["BTC-USD", "ETH-USD"]
    assert rows.column("ts").to_pylist() == sorted(rows.column("ts").to_pylist())
    assert rows.column("ts").cast(pa.int64()).to_pylist()[:2] == [BASE_NS, BASE_NS]


def test_kafka_modules_import_without_the_kafka_client():
    code = ("import sys, cryptodb.broker, cryptodb.ingest.kafka_sink, cryptodb.ingest.replay, "
            "cryptodb.ingest.messages; sys.exit('confluent_kafka' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
