"""The exchange parsers as pure functions: frames in, exact rows, control info and dead letters out.

Expected values are written out here from the messages the tests build (times through numpy's
own datetime parser), never taken from the parsers' output.
"""

import json
import random
import weakref

import numpy as np
import pyarrow as pa
import pytest
from cryptodb.ingest import binance, coinbase, kraken
from cryptodb.ingest.buffers import TableBuffer
from cryptodb.ingest.dedupe import RecentKeys
from cryptodb.ingest.feed import DATA, DEAD, HEARTBEAT, INFO, SUBSCRIBED, get_feed
from cryptodb.ingest.gaps import SequenceWatch
from cryptodb.ingest.rfc3339 import TimestampError, rfc3339_ns
from cryptodb.ingest.schema import DEAD_LETTERS, TABLES, TICKS, UNKNOWN_SYMBOL
from cryptodb.ingest.wire import decoder

RECV = 1_800_000_000_000_000_007


def ns(text: str) -> int:
    """Nanoseconds since the epoch by numpy's parser (naive = UTC), independent of ours."""
    return int(np.datetime64(text.rstrip("Z"), "ns").astype("int64"))


_taken = weakref.WeakKeyDictionary()  # parser -> {table: rows taken so far}


def rows(parser, table: str) -> list[tuple]:
    """Every row `parser` has handed out for `table` (through take(), as a sink gets them): tuples in
    column order without `exchange`, times as integer nanoseconds."""
    taken = _taken.setdefault(parser, {})
    for name, t in parser.take().items():
        columns = [c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c for c in t.columns[1:]]
        taken.setdefault(name, []).extend(zip(*(c.to_pylist() for c in columns)))
    return list(taken.get(table, []))


# -- RFC3339 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("2023-06-23T20:31:26.122969572Z", ns("2023-06-23T20:31:26.122969572")),
    ("2023-06-23T20:31:26.000000001Z", ns("2023-06-23T20:31:26.000000001")),
    ("2019-08-14T20:42:27.265Z", ns("2019-08-14T20:42:27.265")),
    ("2026-01-02T03:04:05Z", ns("2026-01-02T03:04:05")),
    ("2026-01-02T03:04:05.5Z", ns("2026-01-02T03:04:05.5")),
    ("2026-01-02 03:04:05.123456z", ns("2026-01-02T03:04:05.123456")),
    ("2026-01-02T03:04:05.123456789+02:00", ns("2026-01-02T01:04:05.123456789")),
    ("2026-01-02T03:04:05.1-05:30", ns("2026-01-02T08:34:05.1")),
    ("2026-01-02T03:04:05.25", ns("2026-01-02T03:04:05.25")),
    ("1970-01-01T00:00:00Z", 0),
    ("2024-02-29T23:59:59.999999999Z", ns("2024-02-29T23:59:59.999999999")),
])
def test_rfc3339_keeps_every_digit(text, expected):
    assert rfc3339_ns(text) == expected
    assert rfc3339_ns(text) == expected  # second time through the per-second cache


@pytest.mark.parametrize("text", ["2026-01-02T03:04:05.1234567891Z", "2026-13-02T03:04:05Z", "yesterday",
                                  "2026-01-02T03:04:05.12a456789Z", "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05+2"])
def test_rfc3339_refuses_what_it_cannot_read_exactly(text):
    with pytest.raises(TimestampError):
        rfc3339_ns(text)


def test_decimal_strings_become_the_same_floats_as_float():
    rng = random.Random(7)
    texts = [f"{rng.uniform(0, 1e6):.{rng.randint(0, 12)}f}" for _ in range(20_000)]
    texts += [repr(rng.random() * 10 ** rng.randint(-9, 9)) for _ in range(20_000)]
    texts += ["0", "1e-8", "123456789.123456789"]
    parsed = decoder(list[float], numbers_as_strings=True).decode(json.dumps(texts))
    assert parsed == [float(t) for t in texts]


# -- Coinbase ----------------------------------------------------------------------------------------
def cb_envelope(channel, events, timestamp="2026-01-02T03:04:05.123456789Z", seq=7):
    return json.dumps({"channel": channel, "client_id": "", "timestamp": timestamp, "sequence_num": seq,
                       "events": events})


def cb_ticker(product="BTC-USD", **fields):
    t = {"type": "ticker", "product_id": product, "price": "21932.98", "volume_24_h": "16038.28770938",
         "low_24_h": "21835.29", "high_24_h": "23011.18", "low_52_w": "15460", "high_52_w": "48240",
         "price_percent_chg_24_h": "-4.15775596190603", "best_bid": "21931.98", "best_bid_quantity": "8000.21000000",
         "best_ask": "21933.98", "best_ask_quantity": "8038.07770286"}
    t.update(fields)
    return {k: v for k, v in t.items() if v is not None}


def test_coinbase_ticker_rows_take_the_envelope_time_and_sequence():
    p = coinbase.FEED.parser()
    tickers = [cb_ticker(), cb_ticker("eth-usd", price="1500.5")]
    frame = cb_envelope("ticker", [{"type": "snapshot", "tickers": tickers}])
    assert p.parse(frame, RECV, "coinbase") == (DATA, 7, None, "ticks", "ETH-USD", None)
    t = ns("2026-01-02T03:04:05.123456789")
    assert rows(p, "ticks") == [
        ("BTC-USD", t, RECV, 7, 21932.98, None, 21931.98, 21933.98, 8000.21, 8038.07770286),
        ("ETH-USD", t, RECV, 7, 1500.5, None, 21931.98, 21933.98, 8000.21, 8038.07770286),
    ]


def test_coinbase_ticker_without_52_week_fields_and_with_last_size():
    p = coinbase.FEED.parser()
    frame = cb_envelope("ticker", [{"type": "update", "tickers": [
        cb_ticker(low_52_w=None, high_52_w=None, last_size="0.00125")]}])
    assert p.parse(frame, RECV, "coinbase")[0] == DATA
    assert rows(p, "ticks")[0][4:6] == (21932.98, 0.00125)


def test_coinbase_ticker_message_of_several_events_and_one_without_tickers():
    p = coinbase.FEED.parser()
    two = cb_envelope("ticker", [{"type": "update", "tickers": [cb_ticker("BTC-USD", price="1")]},
                                 {"type": "update", "tickers": [cb_ticker("ETH-USD", price="2"),
                                                                cb_ticker("SOL-USD", price="3")]}], seq=3)
    assert p.parse(two, RECV, "coinbase")[:5] == (DATA, 3, None, "ticks", "SOL-USD")
    broken = cb_envelope("ticker", [{"type": "update", "tickers": [cb_ticker()]}, {"type": "update"}], seq=4)
    assert p.parse(broken, RECV, "coinbase")[:4] == (DEAD, 4, None, "ticks")
    assert p.parse(cb_envelope("ticker", [], seq=5), RECV, "coinbase")[:5] == (DATA, 5, None, "ticks", None)
    assert [(r[0], r[3], r[4]) for r in rows(p, "ticks")] == [("BTC-USD", 3, 1.0), ("ETH-USD", 3, 2.0),
                                                               ("SOL-USD", 3, 3.0)]
    assert rows(p, "dead_letters")[0][4] == "unexpected message: ticker event without tickers"


def test_coinbase_ticker_batch_has_no_book_and_leaves_it_null():
    p = coinbase.FEED.parser()
    ticker = cb_ticker(best_bid=None, best_bid_quantity=None, best_ask=None, best_ask_quantity=None)
    assert p.parse(cb_envelope("ticker_batch", [{"type": "update", "tickers": [ticker]}]), RECV, "c")[0] == DATA
    assert rows(p, "ticks")[0][4:] == (21932.98, None, None, None, None, None)


def test_coinbase_market_trades_side_time_and_repeats():
    p = coinbase.FEED.parser()
    trades = [
        {"trade_id": "11", "product_id": "ETH-USD", "price": "1260.01", "size": "0.3", "side": "BUY",
         "time": "2019-08-14T20:42:27.265Z"},
        {"trade_id": "12", "product_id": "ETH-USD", "price": "1260.02", "size": "1.5", "side": "SELL",
         "time": "2019-08-14T20:42:27.265123456Z"},
    ]
    assert p.parse(cb_envelope("market_trades", [{"type": "snapshot", "trades": trades}]), RECV, "c")[:4] == \
        (DATA, 7, None, "trades")
    # The same trades again (a resubscribe snapshot) plus a new one: only the new one is kept.
    again = trades + [{**trades[0], "trade_id": "13", "price": "1261"}]
    p.parse(cb_envelope("market_trades", [{"type": "snapshot", "trades": again}], seq=8), RECV + 1, "c")
    assert rows(p, "trades") == [
        ("ETH-USD", ns("2019-08-14T20:42:27.265"), RECV, "11", 1260.01, 0.3, 1),
        ("ETH-USD", ns("2019-08-14T20:42:27.265123456"), RECV, "12", 1260.02, 1.5, -1),
        ("ETH-USD", ns("2019-08-14T20:42:27.265"), RECV + 1, "13", 1261.0, 0.3, 1),
    ]
    assert p.duplicates == 2


def test_coinbase_trades_message_failing_half_way_leaves_nothing_behind():
    p = coinbase.FEED.parser()
    good = {"trade_id": "1", "product_id": "BTC-USD", "price": "10", "size": "1", "side": "BUY",
            "time": "2026-01-02T03:04:05.1Z"}
    bad_time = {**good, "trade_id": "2", "time": "not a time"}
    kind, *_ = p.parse(cb_envelope("market_trades", [{"type": "update", "trades": [good, bad_time]}]), RECV, "c")
    assert kind == DEAD and rows(p, "trades") == []
    fixed = {**bad_time, "time": "2026-01-02T03:04:05.2Z"}
    p.parse(cb_envelope("market_trades", [{"type": "update", "trades": [good, fixed]}], seq=8), RECV, "c")
    assert [r[3] for r in rows(p, "trades")] == ["1", "2"]  # trade 1 was not remembered by the failed message


def test_coinbase_level2_snapshot_takes_the_envelope_time_updates_their_own():
    p = coinbase.FEED.parser()
    snapshot = {"type": "snapshot", "product_id": "BTC-USD", "updates": [
        {"side": "bid", "event_time": "1970-01-01T00:00:00Z", "price_level": "21921.73", "new_quantity": "0.06317902"},
        {"side": "offer", "event_time": "1970-01-01T00:00:00Z", "price_level": "21921.74", "new_quantity": "1.5"},
    ]}
    update = {"type": "update", "product_id": "BTC-USD", "updates": [
        {"side": "offer", "event_time": "2026-01-02T03:04:05.999999999Z", "price_level": "21921.74",
         "new_quantity": "0"}]}
    assert p.parse(cb_envelope("l2_data", [snapshot], seq=3), RECV, "c")[:4] == (DATA, 3, None, "book")
    p.parse(cb_envelope("l2_data", [update], timestamp="2026-01-02T03:04:06.000000001Z", seq=4), RECV, "c")
    t = ns("2026-01-02T03:04:05.123456789")
    assert rows(p, "book") == [
        ("BTC-USD", t, RECV, 3, 1, 21921.73, 0.06317902, True),
        ("BTC-USD", t, RECV, 3, -1, 21921.74, 1.5, True),
        ("BTC-USD", ns("2026-01-02T03:04:05.999999999"), RECV, 4, -1, 21921.74, 0.0, False),
    ]


def test_coinbase_control_messages():
    p = coinbase.FEED.parser()
    hb = cb_envelope("heartbeats", [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
                                     "heartbeat_counter": "3049"}], seq=11)
    assert p.parse(hb, RECV, "c") == (HEARTBEAT, 11, 3049, None, None, None)
    hb_int = cb_envelope("heartbeats", [{"current_time": "x", "heartbeat_counter": 3050}], seq=12)
    assert p.parse(hb_int, RECV, "c")[:3] == (HEARTBEAT, 12, 3050)
    subs = cb_envelope("subscriptions", [{"subscriptions": {"ticker": ["BTC-USD"]}}], seq=0)
    assert p.parse(subs, RECV, "c") == (SUBSCRIBED, 0, None, None, None, {"ticker": ["BTC-USD"]})
    assert p.buffered() == 0 and p.dead == 0


def test_coinbase_bad_messages_are_dead_letters_with_payload_reason_and_time():
    p = coinbase.FEED.parser()
    bad_price = cb_envelope("ticker", [{"type": "update", "tickers": [cb_ticker(price="abc")]}], seq=5)
    number_side = cb_envelope("l2_data", [{"type": "update", "product_id": "BTC-USD", "updates": [
        {"side": 1, "event_time": "2026-01-02T03:04:05Z", "price_level": "1", "new_quantity": "1"}]}], seq=6)
    frames = ['{"channel": "ticker", "events": [', bad_price, number_side,
              cb_envelope("candles", [], seq=7), '{"type": "error", "message": "failure to subscribe"}']
    results = [p.parse(f, RECV + i, "coinbase") for i, f in enumerate(frames)]
    assert [r[0] for r in results] == [DEAD] * 5
    # What can still be read is reported: the sequence number (not a gap) and the table (a book to refresh).
    assert [(r[1], r[3]) for r in results] == [(None, None), (5, "ticks"), (6, "book"), (7, None), (None, None)]
    dead = rows(p, "dead_letters")
    assert [(d[0], d[1], d[2], d[3], d[5]) for d in dead] == [
        (UNKNOWN_SYMBOL, RECV + i, RECV + i, "coinbase", f) for i, f in enumerate(frames)]
    reasons = [d[4] for d in dead]
    assert reasons[0].startswith("malformed JSON")
    assert "$.events[0].tickers[0].price" in reasons[1]
    assert "$.events[0].updates[0].side" in reasons[2]
    assert reasons[3] == "unexpected channel 'candles'"
    assert reasons[4] == "exchange error: failure to subscribe"
    assert p.dead == 5 and rows(p, "ticks") == [] and rows(p, "book") == []


def test_coinbase_refuses_nan_and_negative_prices():
    p = coinbase.FEED.parser()
    for price in ("NaN", "-1", "inf"):
        assert p.parse(cb_envelope("ticker", [{"type": "update", "tickers": [cb_ticker(price=price)]}]), RECV, "c")[0] \
            == DEAD
    assert rows(p, "ticks") == []


def test_coinbase_plan_one_subscribe_per_channel_plus_heartbeats():
    feed = get_feed("coinbase")
    channels = feed.resolve_channels(["ticker", "trades", "book"])
    assert channels == ["ticker", "market_trades", "level2"]
    (plan,) = feed.connections(["BTC-USD", "ETH-USD"], channels)
    assert plan.url == "wss://advanced-trade-ws.coinbase.com" and plan.sequenced
    assert [json.loads(m) for m in plan.subscribe] == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "ticker"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]
    assert [json.loads(m)["type"] for m in plan.resnapshot] == ["unsubscribe", "subscribe"]
    assert feed.connections(["BTC-USD"], ["ticker"])[0].resnapshot == ()
    assert len(feed.default_products) == 14
    with pytest.raises(ValueError, match="no channel 'candles'"):
        feed.resolve_channels(["candles"])


# -- Binance -----------------------------------------------------------------------------------------
def bn(stream, data):
    return json.dumps({"stream": stream, "data": data})


def test_binance_book_ticker_trade_and_mark_price():
    p = binance.FEED.parser()
    book = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
            "A": "40.66000000"}
    assert p.parse(bn("bnbusdt@bookTicker", book), RECV, "spot") == (DATA, None, None, "ticks", "BNB-USDT", None)
    trade = {"e": "trade", "E": 1672515782136, "s": "BNBUSDT", "t": 12345, "p": "0.001", "q": "100",
             "T": 1672515782134, "m": True, "M": True}
    p.parse(bn("bnbusdt@trade", trade), RECV, "spot")
    p.parse(bn("bnbusdt@trade", {**trade, "t": 12346, "m": False}), RECV, "spot")
    p.parse(bn("bnbusdt@trade", trade), RECV, "spot")  # a repeat
    mark = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
            "i": "11784.62659091", "P": "11784.25641265", "r": "-0.00038167", "T": 1562306400000}
    assert p.parse(bn("btcusdt@markPrice@1s", mark), RECV, "futures")[3] == "funding"
    assert rows(p, "ticks") == [("BNB-USDT", RECV, RECV, 400900217, None, None, 25.3519, 25.3652, 31.21, 40.66)]
    assert rows(p, "trades") == [
        ("BNB-USDT", 1672515782134 * 1_000_000, RECV, "12345", 0.001, 100.0, -1),
        ("BNB-USDT", 1672515782134 * 1_000_000, RECV, "12346", 0.001, 100.0, 1),
    ]
    assert p.duplicates == 1
    assert rows(p, "funding") == [("BTC-USDT", 1562305380000 * 1_000_000, RECV, 11794.15, 11784.62659091,
                                   -0.00038167, None, 1562306400000 * 1_000_000, None)]


def test_binance_delivery_contract_without_funding():
    p = binance.FEED.parser()
    mark = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15", "i": "11784.6", "r": "",
            "T": 0}
    p.parse(bn("btcusdt@markPrice@1s", mark), RECV, "futures")
    assert rows(p, "funding")[0][5:8] == (None, None, None)


def test_binance_bad_messages_and_replies():
    p = binance.FEED.parser()
    bad = bn("ethusdt@bookTicker", {"u": 1, "s": "ETHUSDT", "b": "x", "B": "1", "a": "2", "A": "1"})
    assert p.parse(bad, RECV, "spot")[0] == DEAD
    assert p.parse(bn("ethusdt@depth", {}), RECV, "spot")[0] == DEAD
    assert p.parse('{"code": 2, "msg": "Invalid request"}', RECV, "spot")[0] == DEAD
    assert p.parse('{"result": null, "id": 1}', RECV, "spot")[0] == INFO
    assert p.parse("not json", RECV, "spot")[0] == DEAD
    dead = rows(p, "dead_letters")
    assert [d[0] for d in dead] == ["ETH-USDT", "ETH-USDT", UNKNOWN_SYMBOL, UNKNOWN_SYMBOL]
    assert "$.b" in dead[0][4] and dead[1][4] == "unexpected stream 'ethusdt@depth'"
    assert dead[2][4] == "exchange error 2: Invalid request"


def test_binance_plan_spot_and_futures_connections():
    feed = get_feed("binance")
    channels = feed.resolve_channels(["ticker", "trades", "funding"])
    spot, futures = feed.connections(["BTC-USDT", "ETH-USDT"], channels)
    assert spot.url == ("wss://stream.binance.com:9443/stream?streams="
                        "btcusdt@bookTicker/ethusdt@bookTicker/btcusdt@trade/ethusdt@trade")
    assert futures.url == "wss://fstream.binance.com/stream?streams=btcusdt@markPrice@1s/ethusdt@markPrice@1s"
    (only,) = feed.connections(["BTC-USDT"], ["markPrice"], url="ws://127.0.0.1:1")
    assert only.url == "ws://127.0.0.1:1/stream?streams=btcusdt@markPrice@1s"
    assert feed.default_products[0] == "BTC-USDT"


# -- Kraken ------------------------------------------------------------------------------------------
def kr_ticker(**fields):
    t = {"symbol": "BTC/USD", "bid": 26000.1, "bid_qty": 0.5, "ask": 26000.2, "ask_qty": 1.25, "last": 26000.15,
         "volume": 1000.5, "vwap": 25900.0, "low": 25000, "high": 27000, "change": 100.0, "change_pct": 0.39,
         "timestamp": "2026-01-02T03:04:05.123456Z"}
    t.update(fields)
    return t


def test_kraken_ticker_and_trades_are_json_numbers():
    p = kraken.FEED.parser()
    frame = json.dumps({"channel": "ticker", "type": "snapshot", "data": [kr_ticker(), kr_ticker(symbol="XBT/EUR",
                                                                                                  last=1)]})
    assert p.parse(frame, RECV, "kraken") == (DATA, None, None, "ticks", "BTC-USD", None)
    t = ns("2026-01-02T03:04:05.123456")
    assert rows(p, "ticks") == [("BTC-USD", t, RECV, 0, 26000.15, None, 26000.1, 26000.2, 0.5, 1.25),
                                ("BTC-EUR", t, RECV, 0, 1.0, None, 26000.1, 26000.2, 0.5, 1.25)]
    trades = [{"symbol": "BTC/USD", "side": "buy", "price": 26000.5, "qty": 0.01, "ord_type": "market",
               "trade_id": 4665906, "timestamp": "2023-09-25T07:49:37.708706Z"},
              {"symbol": "BTC/USD", "side": "sell", "price": 26000, "qty": 2, "ord_type": "limit",
               "trade_id": 4665907, "timestamp": "2023-09-25T07:49:37.708707Z"}]
    p.parse(json.dumps({"channel": "trade", "type": "snapshot", "data": trades}), RECV, "kraken")
    p.parse(json.dumps({"channel": "trade", "type": "update", "data": trades[1:]}), RECV, "kraken")
    assert rows(p, "trades") == [
        ("BTC-USD", ns("2023-09-25T07:49:37.708706"), RECV, "4665906", 26000.5, 0.01, 1),
        ("BTC-USD", ns("2023-09-25T07:49:37.708707"), RECV, "4665907", 26000.0, 2.0, -1),
    ]
    assert p.duplicates == 1


def test_kraken_refuses_strings_where_numbers_belong():
    p = kraken.FEED.parser()
    frame = json.dumps({"channel": "ticker", "type": "update", "data": [kr_ticker(last="26000.15")]})
    assert p.parse(frame, RECV, "kraken")[0] == DEAD
    assert "Expected `float`, got `str`" in rows(p, "dead_letters")[0][4]
    assert rows(p, "ticks") == []


def test_kraken_control_messages():
    p = kraken.FEED.parser()
    assert p.parse('{"channel": "heartbeat"}', RECV, "k")[0] == HEARTBEAT
    status = {"channel": "status", "type": "update", "data": [{"version": "2.0.0", "system": "online"}]}
    assert p.parse(json.dumps(status), RECV, "k")[0] == INFO
    reply = {"method": "subscribe", "result": {"channel": "ticker", "symbol": "BTC/USD"}, "success": True}
    assert p.parse(json.dumps(reply), RECV, "k")[0] == SUBSCRIBED
    error = {"method": "subscribe", "success": False, "error": "Currency pair not supported XYZ/USD"}
    assert p.parse(json.dumps(error), RECV, "k")[0] == DEAD
    assert rows(p, "dead_letters")[0][4] == "exchange error: Currency pair not supported XYZ/USD"


def test_kraken_plan():
    (plan,) = get_feed("kraken").connections(["BTC-USD", "ETH-USD"], ["ticker", "trade"])
    assert [json.loads(m) for m in plan.subscribe] == [
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD", "ETH/USD"]}},
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}},
    ]


# -- the pieces underneath ---------------------------------------------------------------------------
def test_buffers_build_the_exact_schema_and_roll_back():
    buf = TableBuffer(TICKS, "coinbase")
    buf.rows.append(("BTC-USD", 1_767_323_045_123_456_789, RECV, 1, 1.5, None, 1.0, 2.0, None, 3.0))
    mark = len(buf)
    buf.rows.append(("ETH-USD", 1, 2, 3, 4.0, None, None, None, None, None))
    buf.rollback(mark)
    table = buf.take()
    assert table.schema == TICKS.arrow_schema and len(buf) == 0 and buf.take() is None
    assert table.column("ts").cast(pa.int64()).to_pylist() == [1_767_323_045_123_456_789]
    assert table.to_pylist()[0]["exchange"] == "coinbase"
    dead = TableBuffer(DEAD_LETTERS, "kraken")
    dead.rows.append((UNKNOWN_SYMBOL, RECV, RECV, "kraken", "why", "{}"))
    assert dead.take().schema == TABLES["dead_letters"].arrow_schema


def test_recent_keys_forget_the_oldest_beyond_capacity():
    keys = RecentKeys(capacity=3)
    assert [keys.add(k) for k in "abca"] == [True, True, True, False]
    assert keys.add("d") and len(keys) == 3
    assert keys.add("a")  # forgotten: the oldest went when d came
    assert not keys.add("d")


def test_sequence_watch_counts_jumps_not_repeats():
    w = SequenceWatch("s")
    assert [w.check(v) for v in (5, 6, 9, 10, 10, 8, 11)] == [0, 0, 2, 0, 0, 0, 0]
    assert (w.gaps, w.missing, w.backwards) == (1, 2, 2)
    w.reset()
    assert w.check(0) == 0  # a new connection starts over
