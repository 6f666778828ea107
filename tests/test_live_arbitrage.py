"""`cryptodb live --script arbitrage` against a real broker: alerts, opportunities and funding carry
computed batch by batch (books reading the stored quotes before each batch, streak kernels and
open opportunities carried over) equal `cryptodb run arbitrage` over the same ticks, also across
a crash and a restart; and the ordering policy keeps each exchange's feed apart."""

from __future__ import annotations

import io
import json
import re
import uuid

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import BASE_NS, run_cli
from cryptodb.ingest.messages import encode_rows
from cryptodb.ingest.replay import replay_to_kafka
from cryptodb.ingest.schema import FUNDING, TICKS
from kafka import consume_topic

import cryptodb
from cryptodb.errors import CryptodbError
from cryptodb.live.order import apply_order_policy, new_watermarks
from cryptodb.live.runner import LiveOptions, live
from cryptodb.live.script import _default_settings, load_live_script

EXCHANGES = "coinbase,binance,kraken"
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
PARAMS = {"fee_bps": 0.5}  # low enough fees for a few hundred opportunities in 4,000 ticks
ALERT_ORDER = [("ts", "ascending"), ("symbol", "ascending"), ("direction", "ascending"), ("signal", "ascending")]
OPPORTUNITY_ORDER = [("symbol", "ascending"), ("direction", "ascending"), ("opportunity", "ascending")]


def funding_rows(ticks: pa.Table) -> pa.Table:
    """A Binance funding row for BTC-USD every 20 s, marked 3 bps over the generated quotes."""
    btc = ticks.filter(pc.and_(pc.equal(ticks.column("symbol"), "BTC-USD"),
                               pc.equal(ticks.column("exchange"), "binance")))
    ts = btc.column("ts").cast(pa.int64()).to_numpy()
    at = np.arange(ts[0] + 10**9, ts[-1], 20 * 10**9)
    mid = np.interp(at, ts, (btc.column("bid").to_numpy() + btc.column("ask").to_numpy()) / 2)
    n = len(at)
    return pa.table({
        "exchange": ["binance"] * n, "symbol": ["BTC-USD"] * n, "ts": pa.array(at, pa.timestamp("ns")),
        "mark_price": mid * 1.0003, "index_price": mid, "funding_rate": np.linspace(-1e-4, 3e-4, n),
        "next_funding_ts": pa.array(np.full(n, BASE_NS + 8 * 3600 * 10**9), pa.timestamp("ns"))})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Generated quotes of three symbols on three exchanges, some funding rows, and what
    `cryptodb run arbitrage` computes over them: the reference live mode must equal."""
    path = tmp_path_factory.mktemp("arbitrage") / "source.duckdb"
    with cryptodb.connect(path) as db:
        db.generate(symbols=SYMBOLS, ticks=4000, seed=11, exchange=EXCHANGES)
        ticks = db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, symbol, seq").to_arrow_table()
        db.insert_funding(funding_rows(ticks))
        funding = db.sql(f"SELECT {', '.join(FUNDING.names)} FROM funding ORDER BY ts").to_arrow_table()
        db.run_script("arbitrage", **PARAMS)
        reference = {name: db.sql(f"SELECT * FROM {name}").to_arrow_table()
                     for name in ("arbitrage_alerts", "arbitrage_opportunities", "funding_carry")}
    return ticks, funding, reference


def new_topic(bootstrap: str, partitions: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"arb-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for done in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        done.result(30)
    return topic


def publish(bootstrap: str, ticks: pa.Table, funding: pa.Table) -> str:
    """A topic of three partitions, so batches interleave the symbols' time lines."""
    topic = new_topic(bootstrap, 3)
    replay_to_kafka(ticks.to_batches(max_chunksize=1000), bootstrap, topic)
    replay_to_kafka(funding.to_batches(), bootstrap, topic, table="funding")
    return topic


def stored(path) -> dict[str, pa.Table]:
    with cryptodb.connect(path, read_only=True) as db:
        return {name: db.sql(f"SELECT * FROM {name}").to_arrow_table()
                for name in ("arbitrage_alerts", "arbitrage_opportunities", "funding_carry")}


def assert_equals_history(got: dict[str, pa.Table], reference: dict[str, pa.Table]) -> None:
    alerts = reference["arbitrage_alerts"]
    assert alerts.num_rows > 100 and set(alerts.column("signal").to_pylist()) == {"ARB OPEN", "ARB CLOSE"}
    assert got["arbitrage_alerts"].sort_by(ALERT_ORDER).equals(alerts.sort_by(ALERT_ORDER))
    # A history run also keeps an opportunity the data ends inside of (still_open); live stores
    # one when it closes, and until then only its ARB OPEN alert has been printed.
    opportunities = reference["arbitrage_opportunities"]
    closed = opportunities.filter(pc.invert(opportunities.column("still_open")))
    assert got["arbitrage_opportunities"].sort_by(OPPORTUNITY_ORDER).equals(closed.sort_by(OPPORTUNITY_ORDER))
    assert closed.num_rows > 50 and max(closed.column("instants").to_pylist()) > 1
    carry = reference["funding_carry"]
    assert carry.num_rows > 5 and carry.column("spot").null_count < carry.num_rows
    assert got["funding_carry"].sort_by([("ts", "ascending")]).equals(carry.sort_by([("ts", "ascending")]))


def printed_alerts(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ARB OPEN " in line or " ARB CLOSE " in line]


@pytest.mark.slow
def test_live_arbitrage_equals_a_history_run(kafka_broker, source, tmp_path):
    ticks, funding, reference = source
    topic = publish(kafka_broker, ticks, funding)
    out = io.StringIO()  # a batch's alerts print before its status line: both go here, in order
    # Batches fill to 150 ticks (all are published first) long before batch_ms: their boundaries,
    # and so the opportunities that span them, do not depend on how busy the machine is.
    with cryptodb.connect(tmp_path / "live.duckdb") as db:
        totals = live(db, LiveOptions(bootstrap=kafka_broker, topic=topic, group=topic, script="arbitrage",
                                      params=PARAMS, state_backend="duckdb", batch_rows=150, batch_ms=1_000,
                                      signals_topic=f"{topic}-alerts", idle_exit=2),
                      out=out, status=lambda line: out.write(f"== {line}\n"))
    assert totals.batches >= 20 and totals.ticks == ticks.num_rows
    got = stored(tmp_path / "live.duckdb")
    assert_equals_history(got, reference)
    # Opportunities span batches: opened in one, closed in a later one.
    batch, opened, spanning = 1, {}, 0
    for line in out.getvalue().splitlines():
        alert = re.search(r" (\S+) ARB (OPEN|CLOSE) direction=(.+?) opportunity=(\d+) ", line)
        if line.startswith("== batch"):
            batch += 1
        elif alert and alert.group(2) == "OPEN":
            opened[alert.group(1, 3, 4)] = batch
        elif alert:
            spanning += opened.pop(alert.group(1, 3, 4)) < batch
    assert spanning >= 10
    # Printed as they happened, batch after batch: the same alerts, in time order within a batch.
    alerts = reference["arbitrage_alerts"]
    assert len(printed_alerts(out.getvalue())) == alerts.num_rows
    first = alerts.sort_by(ALERT_ORDER).slice(0, 1).to_pylist()[0]
    assert f"{first['ts']} {first['symbol']} {first['signal']} direction={first['direction']}" in out.getvalue()
    # And produced to the signals topic, keyed by symbol.
    sent = [json.loads(m.value) | {"key": m.key.decode()}
            for m in consume_topic(kafka_broker, f"{topic}-alerts", expected=alerts.num_rows)]
    assert sorted((m["key"], m["symbol"], m["signal"], m["direction"], m["opportunity"]) for m in sent) == sorted(
        (r["symbol"], r["symbol"], r["signal"], r["direction"], r["opportunity"]) for r in alerts.to_pylist())


@pytest.mark.slow
def test_a_crash_before_commit_then_a_restart_from_the_cli(kafka_broker, source, tmp_path):
    ticks, funding, reference = source
    topic = publish(kafka_broker, ticks, funding)
    path = tmp_path / "live.duckdb"
    args = ["--db", str(path), "live", "--script", "arbitrage", "--bootstrap", kafka_broker, "--topic", topic,
            "--group", topic, "--batch-rows", "300", "--batch-ms", "200", "--idle-exit", "2",
            "--state-backend", "rocksdb", "--param", "fee_bps=0.5"]
    crashed = run_cli(*args, env={"CRYPTODB_LIVE_EXIT_BEFORE_COMMIT": "4"}, timeout=180)
    assert crashed.returncode == 75, crashed.stderr  # died after writing batch 4's files
    proc = run_cli(*args, check=True, timeout=180)
    assert "removed" in proc.stderr and "did not commit" in proc.stderr
    assert_equals_history(stored(path), reference)
    # Each alert printed once: those of committed batches by the first run, the rest by the second.
    both = printed_alerts(crashed.stdout) + printed_alerts(proc.stdout)
    assert len(both) == len(set(both)) == reference["arbitrage_alerts"].num_rows


@pytest.mark.slow
def test_batches_committed_together_then_a_crash_and_a_restart(kafka_broker, source, tmp_path):
    """With --commit-ms, books read the ticks of batches not committed yet as stored, and alerts go
    out before their commit: after a crash the stored tables are whole and once, and every alert
    was printed, those of the batches after the last commit twice."""
    ticks, funding, reference = source
    topic = publish(kafka_broker, ticks, funding)
    path = tmp_path / "live.duckdb"
    args = ["--db", str(path), "live", "--script", "arbitrage", "--bootstrap", kafka_broker, "--topic", topic,
            "--group", topic, "--batch-rows", "150", "--batch-ms", "200", "--commit-ms", "600", "--idle-exit", "2",
            "--param", "fee_bps=0.5"]
    crashed = run_cli(*args, env={"CRYPTODB_LIVE_EXIT_BEFORE_COMMIT": "8"}, timeout=180)
    assert crashed.returncode == 75, crashed.stderr
    assert crashed.stderr.count("committed (") < crashed.stderr.count("\nbatch ")  # commits took several batches
    proc = run_cli(*args, check=True, timeout=180)
    assert_equals_history(stored(path), reference)
    printed = printed_alerts(crashed.stdout) + printed_alerts(proc.stdout)
    want = reference["arbitrage_alerts"].num_rows
    assert len(set(printed)) == want and len(printed) > want


@pytest.mark.slow
def test_an_exchange_silent_across_a_batch_boundary_ends_its_open_opportunity(kafka_broker, tmp_path):
    """Batches of three quotes; tolerance 1 s, fee 1 bps a leg. a -> b opens at 100 ms (batch 1);
    a says nothing more until 3 s, so at 2 s (batch 2) its book is stale and the run ends there,
    though none of a's quotes is within the tolerance of batch 2; at 3 s (batch 3) a second one opens."""
    from confluent_kafka import Producer

    rows = [("a", 0, 1, 99.90, 100.00), ("b", 0, 1, 99.90, 100.00), ("b", 100, 2, 100.05, 100.15),
            ("b", 2000, 3, 100.06, 100.16), ("b", 2100, 4, 100.06, 100.16), ("b", 2200, 5, 100.06, 100.16),
            ("a", 3000, 2, 99.90, 100.00), ("b", 3050, 6, 100.06, 100.16), ("b", 3100, 7, 100.06, 100.16)]
    ex, ms, seq, bid, ask = zip(*rows)
    quotes = pa.table({"exchange": list(ex), "symbol": ["X-USD"] * len(rows),
                       "ts": pa.array(BASE_NS + np.array(ms, np.int64) * 10**6, pa.timestamp("ns")),
                       "seq": pa.array(seq, pa.int64()), "bid": list(bid), "ask": list(ask)})
    topic = new_topic(kafka_broker, 1)  # one partition: the batches hold the quotes in this order
    producer = Producer({"bootstrap.servers": kafka_broker})
    for payload in encode_rows("ticks", quotes):
        producer.produce(topic, key=b"X-USD", value=payload)
    producer.flush(10)
    params = {"fee_bps": 1, "tolerance": "1 second"}
    with cryptodb.connect(tmp_path / "live.duckdb") as db:
        totals = live(db, LiveOptions(bootstrap=kafka_broker, topic=topic, group=topic, script="arbitrage",
                                      params=params, state_backend="memory", batch_rows=3, batch_ms=2000,
                                      idle_exit=1.5), out=io.StringIO(), status=lambda line: None)
        got = db.sql("SELECT (epoch_ns(ts) - ?) // 1000000, signal, direction, opportunity FROM arbitrage_alerts "
                     "ORDER BY ts", params=[BASE_NS]).fetchall()
    assert totals.batches == 3
    assert got == [(100, "ARB OPEN", "a -> b", 1), (2000, "ARB CLOSE", "a -> b", 1), (3000, "ARB OPEN", "a -> b", 2)]
    with cryptodb.connect() as db:  # and a history run over the same quotes says the same
        db.insert_ticks(quotes)
        db.run_script("arbitrage", **params)
        assert db.sql("SELECT (epoch_ns(ts) - ?) // 1000000, signal, direction, opportunity FROM arbitrage_alerts "
                      "ORDER BY ts", params=[BASE_NS]).fetchall() == got


# -- the ordering policy, per (exchange, symbol) --------------------------------------------------
def quotes(rows) -> pa.Table:
    """Ticks as live mode decodes them; rows: (exchange, symbol, ms after BASE, seq)."""
    ex, sym, ms, seq = zip(*rows)
    given = {"exchange": list(ex), "symbol": list(sym), "ts": BASE_NS + np.array(ms, np.int64) * 10**6,
             "seq": list(seq), "price": [100.0] * len(ex)}
    return pa.table({f.name: pa.array(given.get(f.name, [None] * len(ex)), f.type) for f in TICKS.arrow_schema})


def test_streams_of_one_symbol_on_several_exchanges_are_ordered_apart():
    first = quotes([("coinbase", "BTC-USD", 10, 7), ("binance", "BTC-USD", 5, 3)])
    kept, late, dup = apply_order_policy(first, {}, lambda rows: set())
    marks = new_watermarks(kept)
    assert marks == {("binance", "BTC-USD"): (BASE_NS + 5 * 10**6, 3), ("coinbase", "BTC-USD"): (BASE_NS + 10**7, 7)}
    # Binance at 8 ms is after its own last tick though before Coinbase's; the same (ts, seq) on
    # two exchanges are two ticks; only a tick behind its own exchange's mark is late.
    second = quotes([("binance", "BTC-USD", 8, 4), ("kraken", "BTC-USD", 10, 7), ("coinbase", "BTC-USD", 9, 8)])
    kept, late, dup = apply_order_policy(second, marks, lambda rows: set())
    assert kept.column("exchange").to_pylist() == ["binance", "kraken"] and dup == 0
    assert len(late) == 1 and "late tick" in late[0]["reason"] and "coinbase BTC-USD" in late[0]["reason"]


def test_a_watermark_kept_per_symbol_before_holds_for_every_exchange_without_its_own():
    legacy = {(None, "BTC-USD"): (BASE_NS + 10**7, 7)}
    kept, late, dup = apply_order_policy(quotes([("binance", "BTC-USD", 9, 1), ("binance", "BTC-USD", 11, 2)]),
                                         legacy, lambda rows: {("binance", "BTC-USD", BASE_NS + 9 * 10**6, 1)})
    assert kept.column("seq").to_pylist() == [2] and dup == 1 and not late


# -- bad input ------------------------------------------------------------------------------------
def test_live_mode_refuses_a_since_it_sets_itself_and_a_bad_tolerance(tmp_path):
    with pytest.raises(CryptodbError, match=r"sets since per batch itself: drop --param since"):
        load_live_script("arbitrage", {"since": "2026-01-01"}, duckdb.connect())
    with pytest.raises(CryptodbError, match="parameter tolerance: .*Could not convert string 'soon' to INTERVAL"):
        load_live_script("arbitrage", {"tolerance": "soon"}, duckdb.connect())
    script = tmp_path / "mine.sql"
    script.write_text("-- @live lookahead tolerance\nSELECT 1;\n")
    with pytest.raises(CryptodbError, match=r"write `-- @live VERB NAME` with VERB one of alerts, carry, lookback"):
        load_live_script(str(script), {}, duckdb.connect())


@pytest.mark.slow
def test_a_store_table_written_with_other_columns_is_refused(kafka_broker, source, tmp_path):
    """As a store whose `signals` predate the exchange column: its files and new ones could not be read together."""
    ticks, _, _ = source
    topic = publish(kafka_broker, ticks.slice(0, 50), FUNDING.arrow_schema.empty_table())
    with cryptodb.connect(tmp_path / "live.duckdb") as db:
        old = {"symbol": ["BTC-USD"], "ts": pa.array([BASE_NS], pa.timestamp("ns")), "signal": ["BUY"], "price": [1.0]}
        db.store.replace_table("signals", pa.table(old))
        with pytest.raises(CryptodbError, match=r"store table signals has columns \(symbol, ts, signal, price\) "
                                                r"but sql/live.sql writes \(symbol, ts, signal, exchange, "):
            live(db, LiveOptions(bootstrap=kafka_broker, topic=topic, group=topic, state_backend="memory",
                                 idle_exit=2, print_signals=False), status=lambda line: None)
        assert db.sql("SELECT count(*) FROM signals").fetchall() == [(1,)]


def test_cli_help_names_the_arbitrage_script():
    proc = run_cli("live", "--help", check=True)
    assert "arbitrage" in proc.stdout and "ARB OPEN" in proc.stdout


def test_script_tables_only_read_afterwards_stay_in_arrow_and_changed_ones_in_duckdb(tmp_path):
    from cryptodb.engine.gate import Engine
    from cryptodb.store import ParquetStore

    script = tmp_path / "tables.sql"
    script.write_text(
        "CREATE TEMP TABLE features AS SELECT symbol, price FROM ticks;\n"
        "CREATE TEMP TABLE signals AS SELECT symbol, price FROM features WHERE price > 1;\n"
        "INSERT INTO signals SELECT 'X', 0.0;\n")
    con = duckdb.connect()
    live_script = load_live_script(str(script), {}, con)
    assert live_script.held == [("features", "SELECT symbol, price FROM ticks"), None, None]
    engine = Engine(con, ParquetStore(tmp_path / "store"))
    for prices in ([1.0, 2.0], [3.0, 0.5]):  # a second batch replaces what the first left
        con.register("ticks", pa.table({"symbol": ["A", "B"], "price": prices}))
        out = live_script.run(engine, con)
        assert out.stored["features"].to_pylist() == [{"symbol": s, "price": p} for s, p in zip("AB", prices)]
        kept = [{"symbol": s, "price": p} for s, p in zip("AB", prices) if p > 1]
        assert out.stored["signals"].to_pylist() == kept + [{"symbol": "X", "price": 0.0}]
        assert out.alerts["signals"].num_rows == len(kept) + 1


def test_defaults_run_once_and_every_other_statement_every_batch(tmp_path):
    """A `SET VARIABLE v = coalesce(getvariable('v'), literal)::TYPE` gives the same value again
    from the second batch on, so it runs once; a variable the script changes per batch, or sets
    twice, is set on every batch."""
    from cryptodb.engine.gate import Engine
    from cryptodb.store import ParquetStore

    script = tmp_path / "variables.sql"
    script.write_text(
        "SET VARIABLE k = coalesce(getvariable('k'), 2)::DOUBLE;\n"
        "SET VARIABLE n = coalesce(getvariable('n'), 0) + 1;\n"  # a counter: not a default
        "SET VARIABLE m = coalesce(getvariable('m'), 5);\n"
        "SET VARIABLE m = getvariable('m') * 2;\n"  # m is set twice
        "CREATE TEMP TABLE features AS SELECT getvariable('k') * getvariable('n') AS kn, getvariable('m') AS m "
        "FROM ticks;\n")
    con = duckdb.connect()
    live_script = load_live_script(str(script), {"k": 3}, con)
    assert live_script.once == [True, False, False, False, False]
    engine = Engine(con, ParquetStore(tmp_path / "store"), reuse_plans=True)
    con.register("ticks", pa.table({"price": [1.0]}))
    seen = [live_script.run(engine, con).stored["features"].to_pylist()[0] for _ in range(3)]
    assert seen == [{"kn": 3.0 * n, "m": 5 * 2 ** n} for n in (1, 2, 3)]
    reset = ["SET VARIABLE r = coalesce(getvariable('r'), 1)", "RESET VARIABLE r"]
    assert _default_settings(reset, ("live",)) == [False, False]


def test_since_keeps_nanoseconds(tmp_path):
    """`since` starts the instants at a nanosecond: live mode sets it to a batch's first funding
    row or quote, which a cast to microseconds rounded up past that row half the time (the row
    then never got its carry)."""
    with cryptodb.connect(tmp_path / "db.duckdb") as db:
        db.generate(symbols=["BTC-USD"], ticks=600, seed=5, exchange="binance")
        ticks = db.sql(f"SELECT {', '.join(TICKS.names)} FROM ticks ORDER BY ts, seq").to_arrow_table()
        rows = funding_rows(ticks)
        ts = rows.column("ts").cast(pa.int64()).to_numpy() // 1000 * 1000 + 777  # rounds up to a microsecond
        rows = rows.set_column(rows.schema.get_field_index("ts"), "ts", pa.array(ts, pa.timestamp("ns")))
        db.insert_funding(rows)
        first = int(ts[1])
        db.sql(f"SET VARIABLE since = make_timestamp_ns({first})")  # as the live runner sets it
        db.run_script("arbitrage", **PARAMS)
        carried = db.sql("SELECT epoch_ns(ts) FROM funding_carry ORDER BY ts").fetchall()
    assert [t for (t,) in carried] == [int(t) for t in ts if t >= first]
