"""ingest.files: every format users bring, read back to the exact rows the fixture values imply.

Expected rows are computed here from the fixture values (µs * 1000, RFC3339 text -> ns by hand),
never from the importer's own output.
"""

from __future__ import annotations

import calendar
import gzip
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptodb.ingest.conform import conform
from cryptodb.ingest.files import FORMATS, ImportFormatError, detect_format, read_file
from cryptodb.ingest.schema import TABLES, TICKS

US = 1_000  # ns per µs


def rfc3339_ns(text: str) -> int:
    body = text.rstrip("Z")
    whole, _, frac = body.partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int(frac.ljust(9, "0") or 0)


def rows(table: pa.Table) -> list[dict]:
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        cols[name] = col.cast(pa.int64()) if pa.types.is_timestamp(col.type) else col
    return pa.table(cols).to_pylist()


def read_all(path, **kw) -> tuple[set[str], pa.Table]:
    chunks = list(read_file(path, **kw))
    names = {name for name, _ in chunks}
    assert len(names) == 1
    for name, chunk in chunks:
        assert chunk.schema == TABLES[name].arrow_schema
    return names, pa.concat_tables([c for _, c in chunks])


def write_text(path, text: str):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", newline="") as f:
            f.write(text)
    elif str(path).endswith(".zst"):
        with pa.output_stream(str(path), compression="zstd") as f:
            f.write(text.encode())
    else:
        path.write_text(text)
    return path


def tick(exchange, symbol, ts, recv_ts=None, seq=None, price=None, size=None, bid=None, ask=None,
         bid_size=None, ask_size=None):
    return dict(exchange=exchange, symbol=symbol, ts=ts, recv_ts=recv_ts, seq=seq, price=price, size=size,
                bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size)


# ------------------------------------------------------------------------------------ sabot

SABOT_TS = ["2023-06-23T20:31:26.122969572Z", "2023-06-23T20:31:26.122969573Z",
            "2023-06-23T20:31:26.1Z", "2023-06-23T20:31:27Z"]


def sabot_file(path):
    stats = ["1.5", "2.5", "3.5", "4.5"]
    table = pa.table({
        "type": ["ticker", "ticker_batch", None, "ticker"],
        "product_id": ["BTC-USD", "BTC-USD", "eth-usd", "ETH-USD"],
        "price": ["37000.01", "37000.02", "1900.5", "1901"],
        **{c: stats for c in ["volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
                              "price_percent_chg_24_h", "volume_3d", "open_24h"]},
        "best_bid": ["37000.00", None, "1900.25", "1900.75"],
        "best_ask": ["37000.02", None, "1900.75", "1901.25"],
        "best_bid_quantity": ["0.5", None, "10", "0.00000001"],
        "best_ask_quantity": ["0.00012", None, "3.25", ""],
        "last_size": ["0.001", "0.002", "1.5", "2"],
        "parent_timestamp": SABOT_TS,
        "parent_sequence_num": pa.array([17, 18, 19, None], pa.int64()),
    })
    pq.write_table(table, path)
    return path


def test_sabot_parquet_exact_rows_ns_and_ticker_filter(tmp_path, caplog):
    path = sabot_file(tmp_path / "sabot.parquet")
    assert detect_format(path) == "sabot-parquet"
    with caplog.at_level("INFO", logger="cryptodb"):
        names, got = read_all(path)
    assert names == {"ticks"}
    assert rows(got) == [
        tick("coinbase", "BTC-USD", rfc3339_ns(SABOT_TS[0]), seq=17, price=37000.01, size=0.001,
             bid=37000.0, ask=37000.02, bid_size=0.5, ask_size=0.00012),
        tick("coinbase", "ETH-USD", rfc3339_ns(SABOT_TS[2]), seq=19, price=1900.5, size=1.5,
             bid=1900.25, ask=1900.75, bid_size=10.0, ask_size=3.25),
        # no sequence number: the row's line in the file (3) keys it
        tick("coinbase", "ETH-USD", rfc3339_ns(SABOT_TS[3]), seq=3, price=1901.0, size=2.0,
             bid=1900.75, ask=1901.25, bid_size=1e-8, ask_size=None),
    ]
    assert rfc3339_ns(SABOT_TS[0]) % 1000 == 572  # the nanoseconds are really there
    assert "skipped 1 of 4 rows" in caplog.text


def test_sabot_numbers_missing_optional_columns_and_exchange(tmp_path):
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({
        "product_id": ["SOL-USD"], "price": [20.5], "best_bid": [20.25],
        "parent_timestamp": ["2024-02-29T23:59:59.999999999Z"], "parent_sequence_num": [5],
    }), path)
    _, got = read_all(path, exchange="coinbase-intx")
    assert rows(got) == [tick("coinbase-intx", "SOL-USD", rfc3339_ns("2024-02-29T23:59:59.999999999Z"),
                              seq=5, price=20.5, bid=20.25)]


# ----------------------------------------------------------------------------------- tardis

QUOTES = """exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
binance,BTCUSDT,1700000000123456,1700000000124001,1.5,37000.1,37000.0,
coinbase,BTC-USD,1700000000123456,1700000000125002,0.25,36999.5,36999.0,2
binance,BTCUSDT,1700000000123456,1700000000126003,1.25,37000.2,37000.1,0.5
binance,ETHUSDT,1700000001000000,1700000001000004,10,1900.5,1900.4,7
binance,BTCUSDT,1700000002000001,1700000002000005,1,37001,37000.5,3
coinbase,BTC-USD,1700000002000002,1700000002000006,0.5,36999.75,36999.25,1.5
binance,BTCUSDT,1700000003000000,1700000003000007,2,37002,37001,4
"""


def expected_quotes() -> list[dict]:
    out = []
    for line_no, line in enumerate(QUOTES.splitlines()[1:]):
        ex, sym, ts, recv, ask_amount, ask, bid, bid_amount = line.split(",")
        out.append(tick(ex, {"BTCUSDT": "BTC-USDT", "ETHUSDT": "ETH-USDT"}.get(sym, sym), int(ts) * US,
                        int(recv) * US, seq=line_no, bid=float(bid), ask=float(ask),
                        bid_size=float(bid_amount) if bid_amount else None, ask_size=float(ask_amount)))
    return out


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.zst"])
def test_tardis_quotes(tmp_path, suffix):
    if suffix == ".csv.zst" and not pa.Codec.is_available("zstd"):
        pytest.skip("pyarrow built without zstd")
    path = write_text(tmp_path / f"binance_quotes_2023-11-14{suffix}", QUOTES)
    assert detect_format(path) == "tardis-quotes"
    names, got = read_all(path)
    assert names == {"ticks"}
    assert rows(got) == expected_quotes()


def test_tardis_quotes_chunked_same_rows(tmp_path):
    path = write_text(tmp_path / "q.csv.gz", QUOTES)
    chunks = list(read_file(path, batch_rows=2))
    assert [c.num_rows for _, c in chunks] == [2, 2, 2, 1]
    assert rows(pa.concat_tables(c for _, c in chunks)) == expected_quotes()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_progress_reaches_total(tmp_path, suffix):
    path = write_text(tmp_path / f"q{suffix}", QUOTES)
    calls = []
    list(read_file(path, batch_rows=3, progress=lambda done, total: calls.append((done, total))))
    size = path.stat().st_size
    assert calls[-1] == (size, size)
    assert all(total == size for _, total in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_parquet(tmp_path):
    path = sabot_file(tmp_path / "s.parquet")
    calls = []
    list(read_file(path, batch_rows=1, progress=lambda d, t: calls.append((d, t))))
    size = path.stat().st_size
    assert len(calls) >= 4 and calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,1700000000000001,1700000000000501,000123,buy,37000.5,0.01
binance,BTCUSDT,1700000000000002,1700000000000602,9007199254740993123,sell,37000.4,0.02
coinbase,ETH-USD,1700000000000003,1700000000000703,,unknown,1900,1.5
"""


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_tardis_trades(tmp_path, suffix):
    path = write_text(tmp_path / f"trades{suffix}", TRADES)
    assert detect_format(path) == "tardis-trades"
    names, got = read_all(path)
    assert names == {"trades"}
    base = 1700000000000000
    assert rows(got) == [
        dict(exchange="binance", symbol="BTC-USDT", ts=(base + 1) * US, recv_ts=(base + 501) * US,
             trade_id="000123", price=37000.5, size=0.01, side=1),
        dict(exchange="binance", symbol="BTC-USDT", ts=(base + 2) * US, recv_ts=(base + 602) * US,
             trade_id="9007199254740993123", price=37000.4, size=0.02, side=-1),
        dict(exchange="coinbase", symbol="ETH-USD", ts=(base + 3) * US, recv_ts=(base + 703) * US,
             trade_id="2", price=1900.0, size=1.5, side=None),
    ]


DERIV = (
    "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,"
    "open_interest,last_price,index_price,mark_price\n"
    "binance-futures,BTCUSDT,1700000000000000,1700000000001000,1700006400000000,0.0001,0.00012,12345.6,37010,"
    "37000.5,37005.25\n"
    "bitmex,ETHUSD,1700000001000000,1700000001002000,,-0.0002,,500,37011,37001,37006\n"
)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_tardis_derivative_ticker(tmp_path, suffix):
    path = write_text(tmp_path / f"deriv{suffix}", DERIV)
    assert detect_format(path) == "tardis-derivative-ticker"
    names, got = read_all(path)
    assert names == {"funding"}
    assert rows(got) == [
        dict(exchange="binance-futures", symbol="BTC-USDT", ts=1700000000000000 * US,
             recv_ts=1700000000001000 * US, mark_price=37005.25, index_price=37000.5, funding_rate=0.0001,
             predicted_rate=0.00012, next_funding_ts=1700006400000000 * US, open_interest=12345.6),
        dict(exchange="bitmex", symbol="ETH-USD", ts=1700000001000000 * US, recv_ts=1700000001002000 * US,
             mark_price=37006.0, index_price=37001.0, funding_rate=-0.0002, predicted_rate=None,
             next_funding_ts=None, open_interest=500.0),
    ]


BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
deribit,BTC-PERPETUAL,1700000000000000,1700000000000100,true,bid,36999.5,1000
deribit,BTC-PERPETUAL,1700000000000000,1700000000000100,true,ask,37000,2500
deribit,BTC-PERPETUAL,1700000000500000,1700000000500100,false,bid,36999.5,0
"""


def test_tardis_incremental_book(tmp_path):
    path = write_text(tmp_path / "book.csv.gz", BOOK)
    assert detect_format(path) == "tardis-book"
    names, got = read_all(path)
    assert names == {"book"}
    b = 1700000000000000

    def level(ts, seq, side, price, size, snap):
        return dict(exchange="deribit", symbol="BTC-PERPETUAL", ts=ts * US, recv_ts=(ts + 100) * US, seq=seq,
                    side=side, price=price, size=size, is_snapshot=snap)

    assert rows(got) == [level(b, 0, 1, 36999.5, 1000.0, True), level(b, 1, -1, 37000.0, 2500.0, True),
                         level(b + 500000, 2, 1, 36999.5, 0.0, False)]


# ---------------------------------------------------------------------------------- generic

def test_generic_csv_named_like_ticks(tmp_path):
    path = write_text(tmp_path / "mine.csv", "exchange,symbol,ts,price,size,bid,ask\n"
                      "Kraken,XBT/USD,2024-01-02T03:04:05.123456789Z,42000.5,0.1,42000,42001\n"
                      "kraken,BTC/USD,2024-01-02T03:04:06.5Z,42001,0.2,,42002\n")
    assert detect_format(path) == "csv"
    names, got = read_all(path)
    assert names == {"ticks"}
    assert rows(got) == [
        tick("kraken", "BTC-USD", rfc3339_ns("2024-01-02T03:04:05.123456789Z"), seq=0, price=42000.5,
             size=0.1, bid=42000.0, ask=42001.0),
        tick("kraken", "BTC-USD", rfc3339_ns("2024-01-02T03:04:06.5Z"), seq=1, price=42001.0, size=0.2,
             ask=42002.0),
    ]


def test_generic_csv_epoch_magnitude_and_forced_unit(tmp_path):
    text = "time,sym,px,qty,note\n1700000000123,ETH/USDT,1900.5,2,hello\n1000000000000,ETH/USDT,1901,3,x\n"
    path = write_text(tmp_path / "export.csv.gz", text)
    mapping = {"time": "ts", "sym": "symbol", "px": "price", "qty": "size", "note": ""}
    # 13 digits read as milliseconds ...
    _, got = read_all(path, mapping=mapping, exchange="okx", table="trades")
    assert [r["ts"] for r in rows(got)] == [1700000000123 * 10**6, 1000000000000 * 10**6]
    # ... unless the mapping says microseconds
    names, got = read_all(path, mapping={**mapping, "time": "ts:us"}, exchange="okx", table="trades")
    assert names == {"trades"}
    assert rows(got) == [
        dict(exchange="okx", symbol="ETH-USDT", ts=1700000000123 * US, recv_ts=None, trade_id="0",
             price=1900.5, size=2.0, side=None),
        dict(exchange="okx", symbol="ETH-USDT", ts=1000000000000 * US, recv_ts=None, trade_id="1",
             price=1901.0, size=3.0, side=None),
    ]


def test_generic_parquet_picks_trades_and_keeps_ids(tmp_path):
    path = tmp_path / "fills.parquet"
    pq.write_table(pa.table({
        "exchange": ["bybit", "bybit"], "symbol": ["BTCUSDT", "BTCUSDT"],
        "ts": pa.array([1_700_000_000_000_001, 1_700_000_000_000_002], pa.timestamp("us", tz="UTC")),
        "trade_id": ["007", "008"], "price": [37000.5, 37000.0], "size": [0.5, 0.25],
        "side": pa.array([1, -1], pa.int8()),
    }), path)
    assert detect_format(path) == "parquet"
    names, got = read_all(path)
    assert names == {"trades"}
    assert rows(got) == [
        dict(exchange="bybit", symbol="BTC-USDT", ts=1_700_000_000_000_001 * US, recv_ts=None,
             trade_id="007", price=37000.5, size=0.5, side=1),
        dict(exchange="bybit", symbol="BTC-USDT", ts=1_700_000_000_000_002 * US, recv_ts=None,
             trade_id="008", price=37000.0, size=0.25, side=-1),
    ]


def test_generic_parquet_mapping_and_table_argument(tmp_path):
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"t": [1_700_000_000, 1_700_000_001], "pair": ["SOL/USD", "SOL/USD"],
                             "last": ["20.5", "20.75"], "junk": [1, 2]}), path)
    mapping = {"t": "ts:s", "pair": "symbol", "last": "price", "junk": ""}
    names, got = read_all(path, mapping=mapping, exchange="kraken", table="ticks", batch_rows=1)
    assert names == {"ticks"}
    assert rows(got) == [tick("kraken", "SOL-USD", 1_700_000_000 * 10**9, seq=0, price=20.5),
                         tick("kraken", "SOL-USD", 1_700_000_001 * 10**9, seq=1, price=20.75)]


def stored_ticks() -> pa.Table:
    return conform(pa.table({
        "exchange": ["coinbase"] * 3, "symbol": ["BTC-USD", "BTC-USD", "ETH-USD"],
        "ts": pa.array([1_687_552_286_122_969_572, 1_687_552_286_122_969_572, 1_687_638_686_000_000_001],
                       pa.timestamp("ns")),
        "recv_ts": pa.array([1_687_552_286_200_000_000, None, 1_687_638_686_100_000_000], pa.timestamp("ns")),
        "seq": [7, 8, 9], "price": [30000.5, 30000.25, 1900.0], "size": [0.1, None, 2.0],
        "bid": [30000.0, 30000.0, 1899.5], "ask": [30001.0, 30001.0, 1900.5],
        "bid_size": [1.0, 1.5, None], "ask_size": [2.0, 2.5, 3.0],
    }), TICKS)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_duckdb_copy_round_trip_with_date_column(tmp_path, kind):
    duckdb = pytest.importorskip("duckdb")
    original = stored_ticks()
    path = tmp_path / f"ticks.{kind}"
    con = duckdb.connect()
    con.register("ticks", original)
    con.execute(f"COPY (SELECT *, CAST(ts AS DATE) AS date FROM ticks) TO '{path}' (FORMAT {kind})")
    con.close()
    assert "date" in (pq.ParquetFile(path).schema_arrow.names if kind == "parquet" else path.read_text())
    assert detect_format(path) == kind
    names, got = read_all(path)
    assert names == {"ticks"}
    assert got.equals(original)


# ----------------------------------------------------------------------------------- errors

def test_missing_column_names_format_path_and_column(tmp_path):
    path = write_text(tmp_path / "q.csv", QUOTES.replace(",bid_price", "", 1))
    with pytest.raises(ImportFormatError, match=r"tardis-quotes file .*q\.csv: missing column\(s\): bid_price"):
        list(read_file(path, format="tardis-quotes"))
    with pytest.raises(ImportFormatError, match=r"cannot tell the format .*q\.csv: columns seen: exchange, "):
        detect_format(path)


def test_unknown_column_generic(tmp_path):
    path = write_text(tmp_path / "x.csv", "exchange,symbol,ts,price,colour\ncoinbase,BTC-USD,1,2,red\n")
    with pytest.raises(ImportFormatError, match=r"csv file .*x\.csv -> ticks: unknown column\(s\): colour"):
        list(read_file(path, format="csv"))
    with pytest.raises(ImportFormatError, match=r"columns seen: exchange, symbol, ts, price, colour"):
        list(read_file(path))


def test_unknown_column_sabot(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"product_id": ["BTC-USD"], "price": ["1"], "parent_timestamp": [SABOT_TS[0]],
                             "mystery": [1]}), path)
    with pytest.raises(ImportFormatError, match=r"sabot-parquet file .*s\.parquet: unknown column\(s\): mystery"):
        list(read_file(path, format="sabot-parquet"))


def test_missing_exchange_for_generic(tmp_path):
    path = write_text(tmp_path / "x.csv", "symbol,ts,price\nBTC-USD,2024-01-01T00:00:00Z,1\n")
    with pytest.raises(ImportFormatError, match=r"missing column\(s\): exchange.*pass exchange="):
        list(read_file(path))


def test_mapping_names_absent_column(tmp_path):
    path = write_text(tmp_path / "x.csv", "symbol,ts,price\nBTC-USD,2024-01-01T00:00:00Z,1\n")
    with pytest.raises(ImportFormatError, match=r"mapping names column\(s\) not in the file: when"):
        list(read_file(path, mapping={"when": "ts"}, exchange="x"))


def test_unknown_format_lists_known(tmp_path):
    path = write_text(tmp_path / "q.csv", QUOTES)
    with pytest.raises(ImportFormatError, match="unknown import format 'tardis-quote'; known formats: auto, ") as e:
        list(read_file(path, format="tardis-quote"))
    assert all(name in str(e.value) for name in FORMATS)
    assert isinstance(e.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot import .*nope\.csv: no such file"):
        list(read_file(tmp_path / "nope.csv"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        detect_format(tmp_path / "nope.parquet")


def test_wrong_container_and_bad_values(tmp_path):
    path = write_text(tmp_path / "q.csv", QUOTES)
    with pytest.raises(ImportFormatError, match="reads parquet files, this is csv"):
        read_file(path, format="sabot-parquet")
    bad = write_text(tmp_path / "bad.csv", QUOTES.replace("37000.1", "lots", 1))
    with pytest.raises(ImportFormatError, match=r"tardis-quotes file .*bad\.csv: .*lots"):
        list(read_file(bad))


def test_bad_mapping_and_table(tmp_path):
    path = write_text(tmp_path / "x.csv", "t,symbol,price\n1,BTC-USD,1\n")
    with pytest.raises(ImportFormatError, match="epoch unit must be one of s, ms, us, ns"):
        read_file(path, mapping={"t": "ts:minutes"}, exchange="x")
    with pytest.raises(ImportFormatError, match="epoch unit only applies to time columns, not price"):
        read_file(path, mapping={"t": "ts", "price": "price:s"}, exchange="x")
    with pytest.raises(ImportFormatError, match="unknown table 'quotes'; known tables: ticks, trades"):
        read_file(path, mapping={"t": "ts"}, exchange="x", table="quotes")
    quotes = write_text(tmp_path / "q.csv", QUOTES)
    with pytest.raises(ImportFormatError, match="tardis-quotes imports into ticks, not trades"):
        read_file(quotes, table="trades")
    with pytest.raises(ImportFormatError, match="mapping= applies to the generic csv/parquet formats only"):
        read_file(quotes, format="tardis-quotes", mapping={"symbol": "symbol"})
