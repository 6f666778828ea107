"""The Parquet store: exact round trip, sorted atomic files, de-duplication, compaction."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BASE_NS, make_ticks
from cryptodb.ingest.conform import conform
from cryptodb.ingest.schema import TICKS, TRADES

from cryptodb.store import ParquetStore


@pytest.fixture
def store(tmp_path):
    s = ParquetStore(tmp_path / "data")
    s.init()
    return s


def stored(store, table="ticks") -> pa.Table:
    parts = []
    for f in store.files(table):
        t = pq.read_table(f.path)
        parts.append(t.append_column("symbol", pa.array([f.symbol] * t.num_rows)))
    return pa.concat_tables(parts).select(TICKS.names if table == "ticks" else TRADES.names)


def test_round_trip_keeps_nanoseconds_and_values(store):
    data = conform(make_ticks(1000), TICKS)
    store.append("ticks", data)
    back = stored(store).sort_by("ts")
    assert back.equals(data.sort_by("ts"))
    ts = back.column("ts").cast(pa.int64()).to_numpy()
    assert (ts % 1000 != 0).any()  # the fixture's odd steps reach below the microsecond


def test_files_are_time_sorted_partitioned_and_named_by_range(store):
    a = make_ticks(500, "BTC-USD", seed=1)
    b = make_ticks(500, "ETH-USD", seed=2)
    shuffled = pa.concat_tables([a, b]).take(np.random.default_rng(0).permutation(1000))
    store.append("ticks", conform(shuffled, TICKS))
    files = store.files("ticks")
    assert {f.symbol for f in files} == {"BTC-USD", "ETH-USD"}
    for f in files:
        assert f.path.parent.name == "date=2026-01-01"
        assert f.path.parent.parent.name == f"symbol={f.symbol}"
        ts = pq.read_table(f.path, columns=["ts"]).column("ts").cast(pa.int64()).to_numpy()
        assert (np.diff(ts) >= 0).all()
        assert (f.min_ts, f.max_ts) == (ts[0], ts[-1])
        assert "symbol" not in pq.read_schema(f.path).names  # the partition lives in the path
    assert not list((store.root / "_staging").iterdir())


def test_rows_split_at_midnight_into_date_partitions(store):
    day = 86_400_000_000_000
    data = make_ticks(10, start_ns=BASE_NS + day - 5 * 1_000_003)
    store.append("ticks", conform(data, TICKS))
    dates = sorted(f.date for f in store.files("ticks"))
    assert dates == ["2026-01-01", "2026-01-02"]
    counts = {f.date: pq.read_metadata(f.path).num_rows for f in store.files("ticks")}
    assert counts == {"2026-01-01": 5, "2026-01-02": 5}


def test_duplicates_dropped_within_and_across_appends(store):
    data = conform(make_ticks(100), TICKS)
    first = store.append("ticks", pa.concat_tables([data, data.slice(10, 5)]))
    assert (first.rows_written, first.duplicates) == (100, 5)
    overlap = conform(make_ticks(100, start_ns=BASE_NS + 50 * 1_000_003, seq_start=51), TICKS)
    second = store.append("ticks", overlap)
    assert (second.rows_written, second.duplicates) == (50, 50)
    assert stored(store).num_rows == 150
    # Same ts and exchange but another sequence number is a different tick, not a duplicate.
    other_seq = data.slice(0, 3).set_column(4, "seq", pa.array([900, 901, 902], pa.int64()))
    assert store.append("ticks", other_seq).rows_written == 3


def test_trades_deduplicate_by_trade_id(store):
    trades = pa.table({"exchange": ["coinbase"] * 3, "symbol": ["BTC-USD"] * 3,
                       "ts": pa.array([BASE_NS, BASE_NS, BASE_NS + 1], pa.timestamp("ns")),
                       "trade_id": ["a", "b", "c"], "price": [1.0, 2.0, 3.0], "side": ["buy", "sell", "buy"]})
    assert store.append("trades", conform(trades, TRADES)).rows_written == 3
    again = store.append("trades", conform(trades.slice(1), TRADES))
    assert again.rows_written == 0 and again.duplicates == 2


def test_compaction_merges_files_keeps_rows_and_order(store):
    for i in range(5):
        store.append("ticks", conform(make_ticks(200, start_ns=BASE_NS + i * 200 * 1_000_003,
                                                 seq_start=1 + i * 200, seed=i), TICKS))
    store.append("ticks", conform(make_ticks(50, "ETH-USD"), TICKS))
    before = stored(store).sort_by([("symbol", "ascending"), ("ts", "ascending")])
    assert len(store.files("ticks")) == 6
    [result] = store.compact("ticks")
    assert (result.partitions, result.files_before, result.files_after) == (1, 6, 2)
    after = stored(store).sort_by([("symbol", "ascending"), ("ts", "ascending")])
    assert after.equals(before)
    btc = [f for f in store.files("ticks") if f.symbol == "BTC-USD"]
    assert len(btc) == 1
    ts = pq.read_table(btc[0].path, columns=["ts"]).column("ts").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) > 0).all()
    # The replaced version is gone: nothing can reach it through the table's symlink.
    assert [v.name for v in (store.root / "_versions" / "ticks").iterdir()] == ["v000002"]


def test_compaction_shares_untouched_files(store):
    store.append("ticks", conform(make_ticks(10, "ETH-USD"), TICKS))
    for i in range(2):
        store.append("ticks", conform(make_ticks(10, start_ns=BASE_NS + i * 10**9, seq_start=1 + 10 * i), TICKS))
    eth_before = [f.path for f in store.files("ticks") if f.symbol == "ETH-USD"][0]
    inode = eth_before.stat().st_ino
    store.compact("ticks")
    eth_after = [f.path for f in store.files("ticks") if f.symbol == "ETH-USD"][0]
    assert eth_after != eth_before and eth_after.stat().st_ino == inode  # linked, not copied


def test_append_after_compaction_goes_to_current_version(store):
    for i in range(2):
        store.append("ticks", conform(make_ticks(10, start_ns=BASE_NS + i * 10**9, seq_start=1 + 10 * i), TICKS))
    store.compact("ticks")
    store.append("ticks", conform(make_ticks(10, start_ns=BASE_NS + 5 * 10**9, seq_start=100), TICKS))
    assert stored(store).num_rows == 30
    assert all(store.table_path("ticks").resolve() in f.path.parents for f in store.files("ticks"))


def test_empty_table_has_schema(store):
    import duckdb

    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{store.glob('ticks')}', hive_partitioning=true)")
    assert rel.fetchall() == []
    assert "price" in rel.columns
