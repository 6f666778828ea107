"""The collectors end to end against fake exchanges on loopback (real WebSocket servers, no mocks).

Each test scripts what the exchange sends, runs a collector into a database (or the CLI in a
child process), and checks the exact rows stored against the values written into the messages,
plus the gaps, reconnects and dead letters counted.
"""

import asyncio
import gc
import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pytest
from conftest import ROOT, run_cli
from cryptodb.ingest.collection_gc import COLLECTING_THRESHOLD, collecting_gc
from cryptodb.ingest.collector import Collector, CollectorSettings
from cryptodb.ingest.dead_letter_file import DeadLetterFile
from cryptodb.ingest.schema import UNKNOWN_SYMBOL
from cryptodb.ingest.sink import SinkCounts
from cryptodb.ingest.store_sink import StoreSink
from exchange_servers import (
    BinanceServer,
    CoinbaseServer,
    KrakenServer,
    coinbase_ticker,
    coinbase_trade,
)

import cryptodb

FAST = dict(stall_seconds=0.4, backoff_initial=0.01, backoff_max=0.05, healthy_seconds=60, flush_seconds=0.2,
            close_timeout=0.5, handle_signals=False)
T0 = "2026-01-02T03:04:05.123456789Z"


def ns(text: str) -> int:
    return int(np.datetime64(text.rstrip("Z"), "ns").astype("int64"))


def collect_until_done(server, exchange, sink, dead_letters=None, timeout=15.0, **kw):
    """Run a collector until the server's scenario says it is done, then stop it as SIGTERM would."""
    settings = CollectorSettings(**{**FAST, **kw.pop("settings", {})})
    collector = Collector(exchange, sink, url=server.url, dead_letters=dead_letters, settings=settings, **kw)

    async def main():
        run = asyncio.create_task(collector.run())
        finished = await asyncio.to_thread(server.done.wait, timeout)
        collector.stop()
        stats = await asyncio.wait_for(run, timeout)
        assert finished, "the scenario did not finish"
        return stats

    return asyncio.run(main())


def stored(db, table: str, columns: str, order: str = "ts") -> list[tuple]:
    """Rows as tuples; timestamp columns come back as integer nanoseconds."""
    arrow = db.sql(f"SELECT {columns} FROM {table} ORDER BY {order}").to_arrow_table()
    cols = []
    for col in arrow.columns:
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        cols.append(col.to_pylist())
    return list(zip(*cols))


# -- Coinbase ----------------------------------------------------------------------------------------
def test_coinbase_subscribe_snapshot_updates_and_heartbeats(db):
    async def scenario(c):
        requests = await c.accept_subscriptions(2)
        assert requests == [
            {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "ticker"},
            {"type": "subscribe", "channel": "heartbeats"}]
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "21932.98", "21931.98", "21933.98", "8000.21", "8038.07770286"),
                            coinbase_ticker("ETH-USD", "1500.5", "1500.25", "1500.75", "10", "12.5")], type="snapshot")
        await c.heartbeat(100)
        await c.ticker("2026-01-02T03:04:05.123456790Z",
                       [coinbase_ticker("BTC-USD", "21933", "21932.5", "21933.5", "0.001", "3", with_52w=False)])
        await c.heartbeat(101)
        await c.ticker("2026-01-02T03:04:06Z",
                       [coinbase_ticker("ETH-USD", "1501", "1500.99", "1501.01", "4", "5", last_size="0.25")])
        await c.sync()
        c.finish()

    with CoinbaseServer([scenario]) as server:
        stats = collect_until_done(server, "coinbase", StoreSink(db.store), products=["BTC-USD", "eth-usd"])
    # sequence_num: 0, 1 answer the two subscriptions; the data messages are 2, 4, 6.
    assert stored(db, "ticks", "exchange, symbol, ts, seq, price, size, bid, ask, bid_size, ask_size",
                  "ts, symbol") == [
        ("coinbase", "BTC-USD", ns(T0), 2, 21932.98, None, 21931.98, 21933.98, 8000.21, 8038.07770286),
        ("coinbase", "ETH-USD", ns(T0), 2, 1500.5, None, 1500.25, 1500.75, 10.0, 12.5),
        ("coinbase", "BTC-USD", ns(T0) + 1, 4, 21933.0, None, 21932.5, 21933.5, 0.001, 3.0),
        ("coinbase", "ETH-USD", ns("2026-01-02T03:04:06"), 6, 1501.0, 0.25, 1500.99, 1501.01, 4.0, 5.0),
    ]
    recv = [r[0] for r in stored(db, "ticks", "recv_ts")]
    assert all(abs(r - time.time_ns()) < 60e9 for r in recv)
    assert (stats.messages, stats.gaps, stats.heartbeat_gaps, stats.reconnects, stats.dead_letters) == (7, 0, 0, 0, 0)
    assert stats.rows_written == 4


def test_coinbase_sequence_gap_and_heartbeat_jump_refresh_the_book(db):
    bid = {"side": "bid", "event_time": "1970-01-01T00:00:00Z", "price_level": "100.5", "new_quantity": "2"}
    ask = {"side": "offer", "event_time": "1970-01-01T00:00:00Z", "price_level": "101", "new_quantity": "3"}

    async def scenario(c):
        await c.accept_subscriptions(2)
        await c.level2("2026-01-02T00:00:01Z", "BTC-USD", [bid, ask], type="snapshot")  # seq 2
        await c.heartbeat(1)  # 3
        await c.level2("2026-01-02T00:00:02Z", "BTC-USD", [
            {"side": "bid", "event_time": "2026-01-02T00:00:01.500000001Z", "price_level": "100.5",
             "new_quantity": "0"}])  # 4
        await c.heartbeat(4, timestamp="2026-01-02T00:00:03Z")  # counter jumps 1 -> 4; seq 5
        await c.level2("2026-01-02T00:00:04Z", "BTC-USD", [
            {"side": "offer", "event_time": "2026-01-02T00:00:03.999Z", "price_level": "101.5",
             "new_quantity": "7"}], skip=2)  # seq 8: 6 and 7 lost
        # The collector asks for a fresh book: unsubscribe and subscribe level2 again.
        resub = await c.accept_subscriptions(2)
        assert [(r["type"], r["channel"]) for r in resub] == [("unsubscribe", "level2"), ("subscribe", "level2")]
        await c.level2("2026-01-02T00:00:05Z", "BTC-USD", [
            {**bid, "new_quantity": "1"}, {**ask, "price_level": "101.5", "new_quantity": "7"}], type="snapshot")
        await c.sync()
        c.finish()

    with CoinbaseServer([scenario]) as server:
        stats = collect_until_done(server, "coinbase", StoreSink(db.store), products=["BTC-USD"], channels=["level2"])
    assert stored(db, "book", "symbol, ts, seq, side, price, size, is_snapshot", "ts, seq, side DESC") == [
        ("BTC-USD", ns("2026-01-02T00:00:01"), 2, 1, 100.5, 2.0, True),
        ("BTC-USD", ns("2026-01-02T00:00:01"), 2, -1, 101.0, 3.0, True),
        ("BTC-USD", ns("2026-01-02T00:00:01.500000001"), 4, 1, 100.5, 0.0, False),
        ("BTC-USD", ns("2026-01-02T00:00:03.999"), 8, -1, 101.5, 7.0, False),
        ("BTC-USD", ns("2026-01-02T00:00:05"), 11, 1, 100.5, 1.0, True),
        ("BTC-USD", ns("2026-01-02T00:00:05"), 11, -1, 101.5, 7.0, True),
    ]
    assert (stats.gaps, stats.missing, stats.heartbeat_gaps, stats.resnapshots) == (1, 2, 1, 1)
    assert stats.reconnects == 0


def test_coinbase_dropped_connection_reconnects_resubscribes_and_drops_repeated_trades(db):
    def trade(n, side="BUY"):
        return coinbase_trade(str(n), "BTC-USD", f"{100 + n}.5", f"0.{n}", side, f"2026-01-02T00:00:0{n}.00000000{n}Z")

    async def first(c):
        await c.accept_subscriptions(3)
        await c.trades(T0, [trade(1), trade(2, "SELL"), trade(3)], type="snapshot")
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "101", "100", "102", "1", "1")])
        await c.trades(T0, [trade(4, "SELL")])
        await c.drop()  # mid-stream, no close frame

    async def second(c):
        requests = await c.accept_subscriptions(3)
        assert [r["channel"] for r in requests] == ["ticker", "market_trades", "heartbeats"]
        await c.trades(T0, [trade(2, "SELL"), trade(3), trade(4, "SELL")], type="snapshot")  # all seen before
        await c.trades(T0, [trade(5)])
        await c.sync()
        c.finish()

    with CoinbaseServer([first, second]) as server:
        stats = collect_until_done(server, "coinbase", StoreSink(db.store), products=["BTC-USD"],
                                   channels=["ticker", "market_trades"])
        assert len(server.connections["main"]) == 2
    assert stored(db, "trades", "symbol, ts, trade_id, price, size, side") == [
        ("BTC-USD", ns(f"2026-01-02T00:00:0{n}.00000000{n}"), str(n), 100 + n + 0.5, float(f"0.{n}"), side)
        for n, side in [(1, 1), (2, -1), (3, 1), (4, -1), (5, 1)]]
    assert stored(db, "ticks", "price") == [(101.0,)]
    assert (stats.reconnects, stats.duplicates, stats.gaps, stats.stalls) == (1, 3, 0, 0)


def test_coinbase_stall_without_heartbeats_reconnects(db):
    async def first(c):
        await c.accept_subscriptions(2)
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "10", "9", "11", "1", "1")])
        await c.stay_silent(10)  # neither data nor heartbeats: the collector must give up on us

    async def second(c):
        await c.accept_subscriptions(2)
        await c.ticker("2026-01-02T03:04:06Z", [coinbase_ticker("BTC-USD", "12", "11", "13", "1", "1")])
        await c.sync()
        c.finish()

    with CoinbaseServer([first, second]) as server:
        started = time.monotonic()
        stats = collect_until_done(server, "coinbase", StoreSink(db.store), products=["BTC-USD"])
        assert time.monotonic() - started < 5
    assert stored(db, "ticks", "price, seq") == [(10.0, 2), (12.0, 2)]
    assert (stats.stalls, stats.reconnects, stats.gaps) == (1, 1, 0)


def test_coinbase_malformed_and_unexpected_messages_go_to_dead_letters(db):
    malformed = '{"channel": "ticker", "timestamp": "2026-01-02T03:04:05Z", "events": [{'
    error = '{"type": "error", "message": "rate limit exceeded"}'

    async def scenario(c):
        await c.accept_subscriptions(2)
        await c.send_text(malformed)
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "not a number", "1", "2", "1", "1")])
        await c.envelope("candles", [{"type": "update", "candles": []}], T0)
        await c.send_text(error)
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "10", "9", "11", "1", "1")])
        await c.sync()
        c.finish()

    with CoinbaseServer([scenario]) as server:
        stats = collect_until_done(server, "coinbase", StoreSink(db.store), products=["BTC-USD"])
    assert stored(db, "ticks", "price, seq") == [(10.0, 4)]
    dead = stored(db, "dead_letters", "exchange, symbol, source, reason, payload, ts = recv_ts", "ts")
    bad_ticker = json.loads(dead[1][4])
    assert bad_ticker["events"][0]["tickers"][0]["price"] == "not a number"
    assert [(d[0], d[1], d[2], d[5]) for d in dead] == [("coinbase", UNKNOWN_SYMBOL, "coinbase", True)] * 4
    assert (dead[0][4], dead[3][4]) == (malformed, error) and json.loads(dead[2][4])["channel"] == "candles"
    assert dead[0][3].startswith("malformed JSON")
    assert "$.events[0].tickers[0].price" in dead[1][3]
    assert dead[2][3] == "unexpected channel 'candles'"
    assert dead[3][3] == "exchange error: rate limit exceeded"
    # Bad messages with a readable sequence number are not gaps.
    assert (stats.dead_letters, stats.gaps, stats.reconnects) == (4, 0, 0)


@pytest.mark.parametrize("raw", [False, True])
def test_coinbase_ticker_with_a_bad_time_is_a_dead_letter_and_its_batch_is_kept(db, raw):
    """Ticker times are read when a flush takes the rows: a bad one is found then, and its message
    still goes to dead_letters whole (payload, reason), is not sent on raw, and costs no other row."""
    sent = []

    class RawRows(StoreSink):  # rows (and dead letters) to the store, envelopes kept here
        def write_raw(self, table, messages):
            sent.extend(payload for _, payload in messages)

    async def scenario(c):
        await c.accept_subscriptions(2)
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "10", "9", "11", "1", "1")])
        await c.ticker("2026-02-30T00:00:00.5Z", [coinbase_ticker("BTC-USD", "12", "11", "13", "1", "1"),
                                                  coinbase_ticker("ETH-USD", "2", "1", "3", "1", "1")])
        await c.ticker("2026-01-02T03:04:06.5Z", [coinbase_ticker("ETH-USD", "20", "19", "21", "1", "1")])
        await c.sync()
        c.finish()

    with CoinbaseServer([scenario]) as server:
        stats = collect_until_done(server, "coinbase", RawRows(db.store), products=["BTC-USD", "ETH-USD"],
                                   settings={"raw": raw})
    if raw:
        assert [json.loads(p)["sequence_num"] for p in sent] == [2, 4]
        assert stored(db, "ticks", "price") == []
    else:
        assert stored(db, "ticks", "symbol, ts, seq, price") == [("BTC-USD", ns(T0), 2, 10.0),
                                                                 ("ETH-USD", ns("2026-01-02T03:04:06.5"), 4, 20.0)]
    (dead,) = stored(db, "dead_letters", "symbol, source, reason, payload")
    assert dead[:3] == (UNKNOWN_SYMBOL, "coinbase", "unexpected message: not an RFC3339 time: '2026-02-30T00:00:00'")
    assert json.loads(dead[3])["sequence_num"] == 3 and json.loads(dead[3])["timestamp"] == "2026-02-30T00:00:00.5Z"
    assert (stats.dead_letters, stats.gaps) == (1, 0)


def test_dead_letters_go_to_a_file_when_rows_go_elsewhere(tmp_path):
    """The Kafka case: rows to one sink, dead letters to a JSON-lines file."""

    class Rows:
        def __init__(self):
            self.tables, self.counts = [], SinkCounts()

        def write(self, table, rows):
            self.tables.append((table, rows))
            self.counts.add(table, rows.num_rows)

        def write_raw(self, table, messages):
            pass

        def flush(self):
            pass

        def close(self):
            pass

    async def scenario(c):
        await c.accept_subscriptions(2)
        await c.send_text("garbage")
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "10", "9", "11", "1", "1")])
        await c.sync()
        c.finish()

    rows, path = Rows(), tmp_path / "dead.jsonl"
    with CoinbaseServer([scenario]) as server:
        collect_until_done(server, "coinbase", rows, dead_letters=DeadLetterFile(path), products=["BTC-USD"])
    assert [t for t, _ in rows.tables] == ["ticks"]
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert (record["exchange"], record["symbol"], record["payload"]) == ("coinbase", UNKNOWN_SYMBOL, "garbage")
    assert record["reason"].startswith("malformed JSON") and record["ts"] == record["recv_ts"]


# -- Binance -----------------------------------------------------------------------------------------
def test_binance_spot_and_futures_streams(db):
    def book(u, bid):
        return {"u": u, "s": "BTCUSDT", "b": bid, "B": "1.50000000", "a": "43000.10000000", "A": "0.25000000"}

    trade = {"e": "trade", "E": 1767323045124, "s": "ETHUSDT", "t": 9001, "p": "2500.01000000", "q": "0.40000000",
             "T": 1767323045123, "m": True, "M": True}

    async def spot_first(c):
        assert sorted(c.streams) == ["btcusdt@bookTicker", "btcusdt@trade", "ethusdt@bookTicker", "ethusdt@trade"]
        await c.stream("btcusdt@bookTicker", book(1000, "43000.00000000"))
        await c.stream("ethusdt@trade", trade)
        await c.stream("btcusdt@bookTicker", {**book(1001, "x"), "b": "x"})  # malformed number
        await c.drop()

    async def spot_second(c):
        await c.stream("ethusdt@trade", trade)  # a repeat after the reconnect
        await c.stream("ethusdt@trade", {**trade, "t": 9002, "m": False, "T": 1767323046000})
        await c.stream("btcusdt@bookTicker", book(1002, "43000.05000000"))
        await c.sync()
        c.finish()

    async def futures(c):
        assert sorted(c.streams) == ["btcusdt@markPrice@1s", "ethusdt@markPrice@1s"]
        await c.stream("btcusdt@markPrice@1s", {"e": "markPriceUpdate", "E": 1767323045000, "s": "BTCUSDT",
                                                "p": "43010.50000000", "i": "43001.25000000", "P": "43005.0",
                                                "r": "0.00010000", "T": 1767340800000})
        await c.send_text("{not json")
        await c.stay_silent(30)

    with BinanceServer({"spot": [spot_first, spot_second], "futures": [futures]}) as server:
        stats = collect_until_done(server, "binance", StoreSink(db.store), products=["BTC-USDT", "ETH-USDT"],
                                   channels=["ticker", "trades", "funding"], settings={"stall_seconds": 30})
        assert all(p.startswith("/stream?streams=") for p in server.paths)
    ticks = stored(db, "ticks", "symbol, seq, price, bid, ask, bid_size, ask_size, ts = recv_ts", "seq")
    assert ticks == [("BTC-USDT", 1000, None, 43000.0, 43000.1, 1.5, 0.25, True),
                     ("BTC-USDT", 1002, None, 43000.05, 43000.1, 1.5, 0.25, True)]
    assert stored(db, "trades", "symbol, ts, trade_id, price, size, side") == [
        ("ETH-USDT", 1767323045123 * 1_000_000, "9001", 2500.01, 0.4, -1),
        ("ETH-USDT", 1767323046000 * 1_000_000, "9002", 2500.01, 0.4, 1)]
    assert stored(db, "funding", "symbol, ts, mark_price, index_price, funding_rate, predicted_rate, "
                                 "next_funding_ts, open_interest") == [
        ("BTC-USDT", 1767323045000 * 1_000_000, 43010.5, 43001.25, 0.0001, None, 1767340800000 * 1_000_000, None)]
    dead = stored(db, "dead_letters", "symbol, source, reason", "symbol")
    assert [d[:2] for d in dead] == [("BTC-USDT", "binance-spot"), (UNKNOWN_SYMBOL, "binance-futures")]
    assert "$.b" in dead[0][2] and dead[1][2].startswith("malformed JSON")
    assert (stats.reconnects, stats.duplicates, stats.dead_letters) == (1, 1, 2)


# -- Kraken ------------------------------------------------------------------------------------------
def kraken_trade(n, side="buy"):
    return {"symbol": "BTC/USD", "side": side, "price": 42000 + n, "qty": n / 10, "ord_type": "market",
            "trade_id": 500 + n, "timestamp": f"2026-01-02T00:00:0{n}.00000{n}Z"}


def test_kraken_ticker_and_trades_with_json_numbers(db):
    ticker = {"symbol": "BTC/USD", "bid": 42000.1, "bid_qty": 0.5, "ask": 42000.2, "ask_qty": 1.25, "last": 42000.15,
              "volume": 1234.5, "vwap": 41900, "low": 41000, "high": 43000, "change": 150, "change_pct": 0.36,
              "timestamp": "2026-01-02T00:00:00.123456Z"}

    async def first(c):
        requests = await c.accept_subscriptions(2)
        assert requests == [
            {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}},
            {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}]
        await c.channel("ticker", "snapshot", [ticker])
        await c.channel("trade", "snapshot", [kraken_trade(1), kraken_trade(2, "sell")])
        await c.heartbeat()
        await c.channel("ticker", "update", [{**ticker, "last": "42001"}])  # a string: refused
        await c.channel("trade", "update", [kraken_trade(3)])
        await c.drop()

    async def second(c):
        await c.accept_subscriptions(2)
        await c.channel("ticker", "snapshot", [ticker])  # the same ticker again: the store drops it
        await c.channel("trade", "snapshot", [kraken_trade(2, "sell"), kraken_trade(3), kraken_trade(4)])
        await c.sync()
        c.finish()

    with KrakenServer([first, second]) as server:
        stats = collect_until_done(server, "kraken", StoreSink(db.store), products=["BTC-USD"],
                                   channels=["ticker", "trades"])
    assert stored(db, "ticks", "symbol, ts, seq, price, size, bid, ask, bid_size, ask_size") == [
        ("BTC-USD", ns("2026-01-02T00:00:00.123456"), 0, 42000.15, None, 42000.1, 42000.2, 0.5, 1.25)]
    assert stored(db, "trades", "symbol, ts, trade_id, price, size, side") == [
        ("BTC-USD", ns(f"2026-01-02T00:00:0{n}.00000{n}"), str(500 + n), 42000.0 + n, n / 10, side)
        for n, side in [(1, 1), (2, -1), (3, 1), (4, 1)]]
    (dead,) = stored(db, "dead_letters", "symbol, reason, payload")
    assert "Expected `float`, got `str`" in dead[1] and json.loads(dead[2])["data"][0]["last"] == "42001"
    assert (stats.reconnects, stats.duplicates, stats.dead_letters) == (1, 2, 1)


# -- the command -------------------------------------------------------------------------------------
def test_cli_ingest_coinbase_bounded_run(db_path, tmp_path):
    async def scenario(c):
        await c.accept_subscriptions(3)
        await c.ticker(T0, [coinbase_ticker("BTC-USD", "100.25", "100", "100.5", "2", "3")])
        await c.trades(T0, [coinbase_trade("77", "BTC-USD", "100.25", "0.5", "SELL", T0)])
        await c.send_text("][")
        await c.heartbeat(1)

    with CoinbaseServer([scenario]) as server:
        # 3 subscription replies + ticker + trades + garbage + heartbeat = 7 messages
        proc = run_cli("--db", str(db_path), "ingest", "coinbase", "--products", "BTC-USD",
                       "--channels", "ticker,trades", "--url", server.url, "--max-messages", "7",
                       "--stall-seconds", "5", "--status-seconds", "0.1", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "coinbase: 7 messages, 3 rows written" in proc.stderr
    status = [line for line in proc.stderr.splitlines() if "msg/s" in line]
    assert status[-1].endswith("3 rows written, 0 buffered, 0 gaps, 0 reconnects, 1 dead letters")
    with cryptodb.connect(db_path, read_only=True) as db:
        assert stored(db, "ticks", "symbol, ts, price, bid, ask") == [("BTC-USD", ns(T0), 100.25, 100.0, 100.5)]
        assert stored(db, "trades", "trade_id, price, size, side") == [("77", 100.25, 0.5, -1)]
        assert stored(db, "dead_letters", "payload") == [("][",)]
    info = run_cli("--db", str(db_path), "info", "--format", "csv", check=True)
    assert "dead_letters,1," in info.stdout


def test_cli_ingest_to_parquet_folder(tmp_path):
    async def scenario(c):
        await c.accept_subscriptions(2)
        await c.ticker(T0, [coinbase_ticker("ETH-USD", "2000", "1999", "2001", "1", "1")])

    out = tmp_path / "store"
    with CoinbaseServer([scenario]) as server:
        proc = run_cli("ingest", "coinbase", "--products", "ETH-USD", "--to", "parquet", "--out", str(out),
                       "--url", server.url, "--max-messages", "3", timeout=60)
    assert proc.returncode == 0, proc.stderr
    files = list((out / "ticks").glob("symbol=ETH-USD/date=2026-01-02/*.parquet"))
    assert len(files) == 1


def test_cli_ingest_rejects_unknown_channel():
    proc = run_cli("ingest", "coinbase", "--channels", "candles", "--to", "parquet", "--out", "/nonexistent/x")
    assert proc.returncode == 1
    assert "cryptodb: error: coinbase has no channel 'candles'" in proc.stderr


def test_sigterm_flushes_everything_received_and_exits_0(db_path):
    count = 200

    async def scenario(c):
        await c.accept_subscriptions(2)
        for i in range(count):
            await c.ticker(f"2026-01-02T00:00:00.{i:09d}Z",
                           [coinbase_ticker("BTC-USD", f"{100 + i}.5", "100", "101", "1", "1")])
        await c.sync()  # the client has read every frame (not necessarily parsed them)
        c.finish()
        await c.heartbeat(1)

    with CoinbaseServer([scenario]) as server:
        # Nothing is flushed before the signal: big batches, long interval.
        proc = subprocess.Popen(
            [sys.executable, "-m", "cryptodb", "--db", str(db_path), "ingest", "coinbase", "--products", "BTC-USD",
             "--url", server.url, "--flush-rows", "1000000", "--flush-seconds", "600", "--stall-seconds", "60"],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert server.done.wait(30), "the collector never connected"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    with cryptodb.connect(db_path, read_only=True) as db:
        prices = [p for (p,) in stored(db, "ticks", "price")]
    assert prices == [100 + i + 0.5 for i in range(count)]


def test_collector_stops_from_another_thread_and_keeps_status_updates(db):
    seen, thresholds = [], []

    def status(stats):
        seen.append(stats)
        thresholds.append(gc.get_threshold()[0])

    async def scenario(c):
        await c.accept_subscriptions(2)
        for counter in range(5):
            await c.heartbeat(counter)
            await asyncio.sleep(0.05)
        c.finish()

    with CoinbaseServer([scenario]) as server:
        collector = Collector("coinbase", StoreSink(db.store), ["BTC-USD"], url=server.url,
                              settings=CollectorSettings(**{**FAST, "status_seconds": 0.05}), status=status)
        thread = threading.Thread(target=collector.run_forever)
        thread.start()
        assert server.done.wait(10)
        collector.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert seen and seen[-1].messages == 7 and seen[-1].heartbeat_gaps == 0
    # While it ran, the garbage collector looked at buffered rows less often; it is reset after.
    assert set(thresholds) == {max(COLLECTING_THRESHOLD, gc.get_threshold()[0])}


def test_collecting_gc_raises_the_young_threshold_for_the_block_only():
    before = gc.get_threshold()
    with collecting_gc(before[0] + 1000):
        assert gc.get_threshold() == (before[0] + 1000, *before[1:])
        with collecting_gc(10):  # never lowered
            assert gc.get_threshold()[0] == before[0] + 1000
    assert gc.get_threshold() == before


@pytest.mark.parametrize("exchange", ["coinbase", "binance", "kraken"])
def test_cli_ingest_help_lists_the_options(exchange):
    proc = run_cli("ingest", exchange, "--help", check=True)
    for option in ("--products", "--channels", "--to", "--url", "--flush-rows", "--max-messages", "--duration"):
        assert option in proc.stdout


def test_an_older_database_gains_the_dead_letters_table(db_path):
    import shutil

    import duckdb

    cryptodb.connect(db_path).close()
    con = duckdb.connect(str(db_path))
    con.execute("DROP VIEW dead_letters")  # as a catalog written before the collectors existed
    con.close()
    data = db_path.with_suffix(".data")
    (data / "dead_letters").unlink()
    shutil.rmtree(data / "_versions" / "dead_letters")
    with cryptodb.connect(db_path) as db:
        assert db.sql("SELECT count(*) FROM dead_letters").fetchall() == [(0,)]
        assert "dead_letters" in [s["table"] for s in db.info()]


def test_importing_the_cli_and_the_collector_stays_light():
    code = ("import sys, cryptodb, cryptodb.cli, cryptodb.ingest.collector, cryptodb.ingest.store_sink; "
            "print([m for m in ('websockets', 'msgspec', 'confluent_kafka', 'numba') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("format", ["json", "raw"])
def test_cli_ingest_to_kafka_with_dead_letters_in_a_file(kafka_broker, tmp_path, format):
    import uuid

    from cryptodb.ingest.messages import decode
    from kafka import consume_topic

    tickers = [coinbase_ticker("BTC-USD", "100.5", "100", "101", "1", "2"),
               coinbase_ticker("ETH-USD", "20.25", "20", "21", "3", "4")]

    async def scenario(c):
        await c.accept_subscriptions(2)
        for i, t in enumerate(tickers):
            await c.ticker(f"2026-01-02T00:00:0{i}.00000000{i}Z", [t])
        await c.send_text("{oops")

    topic, dead = f"ingest-{uuid.uuid4().hex[:8]}", tmp_path / "dead.jsonl"
    with CoinbaseServer([scenario]) as server:
        proc = run_cli("ingest", "coinbase", "--products", "BTC-USD,ETH-USD", "--to", "kafka", "--bootstrap",
                       kafka_broker, "--topic", topic, "--format", format, "--dead-letters", str(dead),
                       "--url", server.url, "--max-messages", "5", timeout=120)
    assert proc.returncode == 0, proc.stderr
    received = sorted(consume_topic(kafka_broker, topic, expected=2), key=lambda m: m.key)
    assert [m.key for m in received] == [b"BTC-USD", b"ETH-USD"]
    if format == "raw":  # the exchange's envelope, unchanged
        assert [json.loads(m.value)["events"][0]["tickers"][0] for m in received] == tickers
    else:
        rows = [decode(m.value)[1] for m in received]
        assert [(r["symbol"], r["ts"], r["seq"], r["price"], r["bid"], r["ask_size"]) for r in rows] == [
            ("BTC-USD", ns("2026-01-02T00:00:00"), 2, 100.5, 100.0, 2.0),
            ("ETH-USD", ns("2026-01-02T00:00:01.000000001"), 3, 20.25, 20.0, 4.0)]
    (line,) = dead.read_text().splitlines()
    assert json.loads(line)["payload"] == "{oops"
