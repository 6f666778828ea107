"""Ticker times kept as RFC3339 text and read for a whole batch when the rows are taken.

Two promises: the batch reader gives exactly what the one-text reader gives, for every text (values
checked against times computed here from integers, refusals against rfc3339_ns); and a message
whose time turns out unreadable at take still becomes a dead letter with its own payload, source,
receive time and reason, while every other row of the batch is kept.
"""

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
from cryptodb.ingest import coinbase, kraken
from cryptodb.ingest.feed import DATA
from cryptodb.ingest.messages import MessageError, decode, decode_batch
from cryptodb.ingest.rfc3339 import _CHUNK, rfc3339_ns, rfc3339_ns_array
from cryptodb.ingest.schema import UNKNOWN_SYMBOL
from hypothesis import given, settings
from hypothesis import strategies as st

RECV = 1_800_000_000_000_000_007
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EPOCH = dt.datetime(1970, 1, 1)


def text_of(ns: int, digits: int = 9, zone: str = "Z", sep: str = "T", offset_minutes: int = 0) -> str:
    """The RFC3339 text of `ns` (truncated to `digits` fractional digits), written with Python's
    datetime, shown in local time `offset_minutes` ahead of UTC when the zone is an offset."""
    secs, frac = divmod(ns, 1_000_000_000)
    local = EPOCH + dt.timedelta(seconds=secs, minutes=offset_minutes)
    text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S").rjust(19, "0")  # strftime drops year zeros on some libcs
    if digits:
        text += "." + f"{frac:09d}"[:digits]
    return text + zone


def truncated(ns: int, digits: int) -> int:
    unit = 10 ** (9 - digits)
    return ns - ns % unit


def ns(text: str) -> int:
    """numpy's own reading of a naive ISO time, as UTC nanoseconds."""
    return int(np.datetime64(text.rstrip("Z"), "ns").astype("int64"))


def single(text):
    """What rfc3339_ns makes of one text, with the int64 range the batch adds: (value, None) or (None, error)."""
    try:
        value = rfc3339_ns(text)
    except Exception as e:  # noqa: BLE001 - any refusal is compared by its message
        return None, str(e)
    if not INT64_MIN <= value <= INT64_MAX:
        return None, "beyond the nanosecond range"
    return value, None


def assert_batch_equals_single(texts):
    values, errors = rfc3339_ns_array(pa.array(texts, pa.string()))
    for i, text in enumerate(texts):
        if text is None:
            assert i not in errors and values[i] == 0
            continue
        value, error = single(text)
        if error is None:
            assert i not in errors, (text, errors.get(i))
            assert int(values[i]) == value, text
        else:
            assert i in errors, (text, int(values[i]))
            assert error in errors[i], (text, errors[i])
    return values, errors


# -- the batch reader ----------------------------------------------------------------------------------
# Instants from year 1 to 9999 (a day in, so that a zone offset stays inside): inside the int64
# nanosecond range (1677-2262) and beyond it.
instants = st.integers(-62_135_510_400 * 10**9, 253_402_214_399 * 10**9 + 999_999_999)
near_now = st.integers(1_500_000_000 * 10**9, 1_900_000_000 * 10**9)
int64_range = st.integers(INT64_MIN, INT64_MAX)


@st.composite
def written(draw, when=instants):
    t = draw(when)
    digits = draw(st.integers(0, 9))
    zone, offset = draw(st.sampled_from([("Z", 0), ("z", 0), ("", 0), ("+02:00", 120), ("-05:30", -330),
                                         ("+00:00", 0)]))
    sep = draw(st.sampled_from(["T", "T", "t", " "]))
    return text_of(t, digits, zone, sep, offset), truncated(t, digits)


@settings(max_examples=300)
@given(st.lists(written(st.one_of(instants, int64_range, near_now)), min_size=1, max_size=60))
def test_batch_reads_every_well_formed_time_as_written(cases):
    values, errors = assert_batch_equals_single([text for text, _ in cases])
    for i, (text, expected) in enumerate(cases):
        if INT64_MIN <= expected <= INT64_MAX:
            assert i not in errors and int(values[i]) == expected, text
        else:
            assert i in errors


NOISE = "0123456789T:-.Zz+ _tx\u0663\u00b2\uff15"  # ASCII, an Arabic-Indic 3, a superscript 2, a fullwidth 5


@st.composite
def damaged(draw):
    text, _ = draw(written(near_now))
    i = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["replace", "insert", "delete"]))
    c = draw(st.sampled_from(NOISE))
    if kind == "replace" and i < len(text):
        return text[:i] + c + text[i + 1:]
    if kind == "delete":
        return text[:i] + text[i + 1:]
    return text[:i] + c + text[i:]


@settings(max_examples=300)
@given(st.lists(st.one_of(damaged(), written(near_now).map(lambda c: c[0]), st.text(max_size=35),
                          st.none()), min_size=1, max_size=60))
def test_batch_refuses_exactly_what_the_single_reader_refuses(texts):
    assert_batch_equals_single(texts)


def test_batch_edges_of_calendar_clock_and_range():
    texts = [
        "2024-02-29T12:00:00.5Z", "2023-02-29T12:00:00.5Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-12-31T24:00:00Z", "2026-12-31T23:60:00Z", "2026-12-31T23:59:60.25Z",
        "2026-12-31T23:59:61Z", "2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-02T03:04:05.Z",
        "2026-01-02T03:04:05.1234567891Z", "2026-01-02T03:04:05.123456789", "2026-01-02T03:04:05Z",
        "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z", "2261-12-31T23:59:59.999999999Z",
        "1677-09-21T00:12:43.145224192Z", "1677-09-21T00:12:43.145224191Z",
        "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z", "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z", "", "2026-01-02T03:04:05.12\u00b2Z", "\uff12026-01-02T03:04:05Z",
    ]
    values, errors = assert_batch_equals_single(texts)
    got = dict(zip(texts, values.tolist()))
    assert got["2024-02-29T12:00:00.5Z"] == ns("2024-02-29T12:00:00.5")
    assert got["2026-12-31T23:59:60.25Z"] == ns("2027-01-01T00:00:00.25")  # a leap second runs on
    assert got["1969-12-31T23:59:59.999999999Z"] == -1
    assert got["1677-09-21T00:12:43.145224192Z"] == INT64_MIN
    assert got["2262-04-11T23:47:16.854775807Z"] == INT64_MAX
    assert got["2261-12-31T23:59:59.999999999Z"] == ns("2261-12-31T23:59:59.999999999")
    refused = {texts[i] for i in errors}
    assert refused >= {"2023-02-29T12:00:00.5Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
                       "2026-12-31T24:00:00Z", "2026-12-31T23:59:61Z", "2026-01-02T03:04:05.Z",
                       "1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z", ""}


def test_batch_reads_slices_interleaved_lengths_and_across_its_passes():
    n = 2 * _CHUNK + 100  # read a slice at a time: refusals and odd texts on the seams too
    rng = np.random.default_rng(3)
    instants = (1_767_225_600 * 10**9 + rng.integers(0, 10**15, n)).tolist()
    digits = rng.integers(0, 10, n).tolist()
    texts = [text_of(t, d) for t, d in zip(instants, digits)]
    expected = [truncated(t, d) for t, d in zip(instants, digits)]
    odd = {_CHUNK - 1: "bad", _CHUNK: text_of(instants[_CHUNK], 9, "+01:00", offset_minutes=60), 2 * _CHUNK: None}
    for i, text in odd.items():
        texts[i] = text
    whole = pa.array(["x"] * 7 + texts)
    values, errors = rfc3339_ns_array(whole.slice(7))  # an array that starts inside its buffers
    assert errors == {_CHUNK - 1: "not an RFC3339 time: 'bad'"}
    expected[_CHUNK - 1] = expected[2 * _CHUNK] = 0
    expected[_CHUNK] = instants[_CHUNK]
    assert values.tolist() == expected


# -- late dead letters ---------------------------------------------------------------------------------
def cb_frame(timestamp, products=("BTC-USD",), seq=1, price="10.5"):
    tickers = [{"type": "ticker", "product_id": p, "price": price, "best_bid": "10", "best_bid_quantity": "1",
                "best_ask": "11", "best_ask_quantity": "2"} for p in products]
    return json.dumps({"channel": "ticker", "client_id": "", "timestamp": timestamp, "sequence_num": seq,
                       "events": [{"type": "update", "tickers": tickers}]})


def as_tuples(table: pa.Table, columns) -> list[tuple]:
    cols = [table.column(c) for c in columns]
    cols = [c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c for c in cols]
    return list(zip(*(c.to_pylist() for c in cols)))


def test_a_coinbase_time_found_bad_at_take_dead_letters_its_whole_message_only():
    p = coinbase.FEED.parser()
    frames = [cb_frame("2026-01-02T03:04:05.000000001Z", seq=1),
              cb_frame("2026-02-30T03:04:05.000000002Z", ("BTC-USD", "ETH-USD"), seq=2),  # no 30 February
              cb_frame("2026-01-02T03:04:05.3Z", ("ETH-USD",), seq=3),
              cb_frame("yesterday", seq=4),
              cb_frame("2026-01-02T03:04:06+01:00", seq=5)]
    results = [p.parse(f, RECV + i, "coinbase") for i, f in enumerate(frames)]
    assert [r[:2] for r in results] == [(DATA, i + 1) for i in range(5)]  # sequence numbers still count
    taken = p.take()
    assert as_tuples(taken["ticks"], ["symbol", "ts", "recv_ts", "seq", "price"]) == [
        ("BTC-USD", ns("2026-01-02T03:04:05.000000001"), RECV, 1, 10.5),
        ("ETH-USD", ns("2026-01-02T03:04:05.3"), RECV + 2, 3, 10.5),
        ("BTC-USD", ns("2026-01-02T02:04:06"), RECV + 4, 5, 10.5),
    ]
    dead = as_tuples(taken["dead_letters"], ["symbol", "ts", "recv_ts", "source", "reason", "payload"])
    assert [(d[0], d[1], d[2], d[3], d[5]) for d in dead] == [
        (UNKNOWN_SYMBOL, RECV + 1, RECV + 1, "coinbase", frames[1]),
        (UNKNOWN_SYMBOL, RECV + 3, RECV + 3, "coinbase", frames[3])]
    assert dead[0][4] == "unexpected message: not an RFC3339 time: '2026-02-30T03:04:05'"
    assert dead[1][4] == "unexpected message: not an RFC3339 time: 'yesterday'"
    assert p.dead == 2
    assert p.rejected_on_take == [("coinbase", frames[1], dead[0][4]), ("coinbase", frames[3], dead[1][4])]
    p.parse(frames[0], RECV, "coinbase")
    assert list(p.take()) == ["ticks"] and p.rejected_on_take == []


def test_late_dead_letters_name_the_source_of_their_own_frame_across_rollbacks():
    p = coinbase.FEED.parser()
    bad_symbol = cb_frame("2026-01-02T03:04:05Z", ("BTC-USD", "BAD SYMBOL!"))  # rolled back half way
    plan = [("a", cb_frame("bad-1")), ("a", cb_frame("2026-01-02T03:04:05Z")), ("b", bad_symbol),
            ("b", cb_frame("bad-2")), ("a", cb_frame("bad-3")), ("a", cb_frame("2026-01-02T03:04:06Z"))]
    kinds = [p.parse(f, RECV, source)[0] for source, f in plan]
    assert kinds == [DATA, DATA, "dead", DATA, DATA, DATA]
    taken = p.take()
    assert taken["ticks"].num_rows == 2
    dead = as_tuples(taken["dead_letters"], ["source", "payload"])
    assert dead == [("b", bad_symbol), ("a", plan[0][1]), ("b", plan[3][1]), ("a", plan[4][1])]


@settings(max_examples=60)
@given(st.lists(st.tuples(near_now, st.integers(0, 9)), min_size=1, max_size=40))
def test_coinbase_ticker_times_keep_every_nanosecond(times):
    p = coinbase.FEED.parser()
    for i, (t, digits) in enumerate(times):
        assert p.parse(cb_frame(text_of(t, digits), seq=i), RECV, "c")[0] == DATA
    ts = p.take()["ticks"].column("ts").cast(pa.int64()).to_pylist()
    assert ts == [truncated(t, d) for t, d in times]


def test_kraken_time_found_bad_at_take_takes_its_whole_message_and_no_time_is_the_receive_time():
    def frame(*timestamps):
        data = [{"symbol": "BTC/USD", "bid": 1.0, "bid_qty": 2.0, "ask": 3.0, "ask_qty": 4.0, "last": 2.5,
                 **({"timestamp": t} if t is not None else {})} for t in timestamps]
        return json.dumps({"channel": "ticker", "type": "update", "data": data})

    p = kraken.FEED.parser()
    frames = [frame("2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.1234567890Z"), frame(None),
              frame("2026-01-02T03:04:05.5Z")]
    assert [p.parse(f, RECV + i, "kraken")[0] for i, f in enumerate(frames)] == [DATA] * 3
    taken = p.take()
    assert as_tuples(taken["ticks"], ["ts", "recv_ts"]) == [(RECV + 1, RECV + 1),
                                                            (ns("2026-01-02T03:04:05.5"), RECV + 2)]
    (dead,) = as_tuples(taken["dead_letters"], ["payload", "reason", "ts"])
    assert dead == (frames[0], "unexpected message: bad fraction in RFC3339 time '2026-01-02T03:04:05.1234567890Z'",
                    RECV)


def test_decode_batch_rejects_an_envelope_whose_time_is_bad_and_keeps_the_order_of_the_rest():
    payloads = [cb_frame("2026-01-02T03:04:05.1Z", seq=1).encode(), cb_frame("2026-13-01T00:00:00Z", seq=2).encode(),
                cb_frame("2026-01-02T03:04:05.2Z", ("BTC-USD", "ETH-USD"), seq=3).encode()]
    batch = decode_batch(payloads, recv_ns=[RECV, RECV + 1, RECV + 2])
    assert as_tuples(batch.tables["ticks"], ["symbol", "ts", "recv_ts", "seq"]) == [
        ("BTC-USD", ns("2026-01-02T03:04:05.1"), RECV, 1),
        ("BTC-USD", ns("2026-01-02T03:04:05.2"), RECV + 2, 3),
        ("ETH-USD", ns("2026-01-02T03:04:05.2"), RECV + 2, 3)]
    assert [(r.index, r.payload, r.reason) for r in batch.rejected] == [
        (1, payloads[1], "unexpected message: not an RFC3339 time: '2026-13-01T00:00:00'")]
    with pytest.raises(MessageError, match="not an RFC3339 time"):
        decode(payloads[1])
    assert decode(payloads[0])[1]["ts"] == ns("2026-01-02T03:04:05.1")


def test_buffer_rollback_forgets_the_sources_of_the_rows_it_drops():
    from cryptodb.ingest.buffers import TableBuffer
    from cryptodb.ingest.schema import TICKS

    buf = TableBuffer(TICKS, "coinbase", times_as_text=True)

    def add(text, frame, source):
        if source != buf.source:
            buf.source_from(len(buf), source)
        buf.rows.append(("BTC-USD", None, RECV, 1, 1.0, None, None, None, None, None, text))
        buf.origins.append(frame)

    add("2026-01-02T03:04:05Z", "f1", "a")
    mark = len(buf)
    add("bad", "f2", "b")  # rolled back: source b never delivered anything
    buf.rollback(mark)
    assert buf.source == "a"
    add("also bad", "f3", "a")
    add("2026-01-02T03:04:06Z", "f4", "c")
    table = buf.take()
    assert table.column("ts").cast(pa.int64()).to_pylist() == [ns("2026-01-02T03:04:05"), ns("2026-01-02T03:04:06")]
    assert buf.rejected == [("f3", "a", RECV, "not an RFC3339 time: 'also bad'")]
    assert buf.source is None and len(buf) == 0 and buf.take() is None
