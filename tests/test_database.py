"""The Python API: connect, sql, execute, run_script, insert_*, symbols, info, locking."""

import subprocess
import sys
import textwrap

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from conftest import BASE_NS, make_ticks

import cryptodb
from cryptodb.errors import CryptodbError, DatabaseLockedError


def test_in_memory_database_round_trip(db):
    data = make_ticks(300)
    result = db.insert_ticks(data)
    assert result.rows_written == 300
    rel = db.sql("SELECT * EXCLUDE (date) FROM ticks ORDER BY ts")
    back = rel.to_arrow_table()
    assert back.column("ts").cast(pa.int64()).to_pylist() == data.column("ts").cast(pa.int64()).to_pylist()
    assert back.column("price").to_pylist() == data.column("price").to_pylist()
    assert isinstance(rel.df(), pd.DataFrame) and isinstance(rel.pl(), pl.DataFrame)
    assert rel.fetchall()[0][1] == "BTC-USD"
    assert db.sql("SELECT count(*) FROM ticks WHERE date = DATE '2026-01-01'").fetchall() == [(300,)]


def test_insert_accepts_pandas_polars_and_subsets(db):
    frame = pd.DataFrame({"symbol": ["eth/usd", "ETH-USD"], "ts": ["2026-01-01T00:00:00.123456789Z",
                                                                   "2026-01-01T00:00:01Z"], "bid": [1.0, 2.0],
                          "ask": [1.5, 2.5]})
    assert db.insert_ticks(frame, exchange="kraken").rows_written == 2
    assert db.insert_ticks(pl.from_pandas(frame.assign(ts=["2026-01-02T00:00:00Z"] * 2)),
                           exchange="kraken").rows_written == 2
    rows = db.sql("SELECT symbol, exchange, epoch_ns(ts), price, bid FROM ticks ORDER BY ts").fetchall()
    assert rows[0] == ("ETH-USD", "kraken", BASE_NS + 123456789, None, 1.0)
    assert db.symbols() == ["ETH-USD"]


def test_insert_missing_required_columns_names_them(db):
    with pytest.raises(CryptodbError) as e:
        db.insert_ticks(pa.table({"symbol": ["BTC-USD"], "volume": [1.0]}), exchange="x")
    msg = str(e.value)
    assert "ts" in msg and "price or bid or ask" in msg and "volume" in msg
    with pytest.raises(CryptodbError, match="exchange"):
        db.insert_ticks(pa.table({"symbol": ["BTC-USD"], "ts": [BASE_NS], "price": [1.0]}))


def test_insert_other_tables(db):
    trades = pa.table({"symbol": ["BTC-USD"], "ts": pa.array([BASE_NS], pa.timestamp("ns")),
                       "trade_id": ["t1"], "price": [10.0], "size": [0.5], "side": ["SELL"]})
    assert db.insert_trades(trades, exchange="coinbase").rows_written == 1
    funding = pa.table({"symbol": ["BTCUSDT"], "ts": pa.array([BASE_NS], pa.timestamp("ns")),
                        "mark_price": [1.0], "funding_rate": [0.0001]})
    assert db.insert_funding(funding, exchange="binance").rows_written == 1
    assert db.sql("SELECT side FROM trades").fetchall() == [(-1,)]
    assert db.sql("SELECT symbol, funding_rate FROM funding").fetchall() == [("BTC-USDT", 0.0001)]
    with pytest.raises(CryptodbError, match="no stored table"):
        db.insert("quotes", trades)


def test_execute_runs_every_statement(db):
    results = db.execute("CREATE TABLE t AS SELECT 1 AS a; INSERT INTO t VALUES (2); SELECT sum(a) FROM t")
    assert [r.table is None for r in results] == [True, True, False]
    assert results[-1].table.column(0).to_pylist() == [3]


def test_run_script_params_and_defaults(db, tmp_path):
    script = tmp_path / "s.sql"
    script.write_text("SET VARIABLE n = coalesce(getvariable('n'), 3);\n"
                      "SELECT getvariable('n') * 2 AS doubled, getvariable('name') AS name;")
    assert db.run_script(script, name="x")[-1].table.to_pylist() == [{"doubled": 6, "name": "x"}]
    assert db.run_script(script, n=10)[-1].table.column("doubled").to_pylist() == [20]
    with pytest.raises(CryptodbError, match="no script 'nope'"):
        db.run_script("nope")


def test_shipped_overview_script(db):
    db.insert_ticks(make_ticks(100))
    db.insert_ticks(make_ticks(50, "ETH-USD", seed=3))
    table = db.run_script("overview")[-1].table
    assert table.column("symbol").to_pylist() == ["BTC-USD", "ETH-USD"]
    assert table.column("ticks").to_pylist() == [100, 50]


def test_file_database_persists_and_views_survive_reopen(db_path):
    with cryptodb.connect(db_path) as d:
        d.insert_ticks(make_ticks(10))
        d.sql("CREATE TABLE notes AS SELECT 'hello' AS t")
    assert db_path.exists() and db_path.with_suffix(".data").is_dir()
    with cryptodb.connect(db_path, read_only=True) as d:
        assert d.sql("SELECT count(*) FROM ticks").fetchall() == [(10,)]
        assert d.sql("SELECT * FROM notes").fetchall() == [("hello",)]
        with pytest.raises(CryptodbError, match="read-only"):
            d.insert_ticks(make_ticks(1))


def test_read_only_on_missing_database(tmp_path):
    with pytest.raises(CryptodbError, match="cryptodb init"):
        cryptodb.connect(tmp_path / "nope.duckdb", read_only=True)


def catalog_holder(db_path, then: str) -> subprocess.Popen:
    """Another process that opens the catalog read-write, prints "ready", then runs `then`."""
    cryptodb.connect(db_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, cryptodb
            d = cryptodb.connect({str(db_path)!r})
            d.sql("SELECT 1").fetchall()
            print("ready", flush=True)
        """) + textwrap.dedent(then)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_locked_database_names_the_holder(db_path):
    holder = catalog_holder(db_path, "sys.stdin.read()")
    try:
        with pytest.raises(DatabaseLockedError) as e:
            cryptodb.connect(db_path, read_only=True).sql("SELECT 1")
        assert f"process {holder.pid}" in str(e.value) and "python" in str(e.value)
        # Appending does not need the catalog: a writer of data works while the catalog is held.
        with cryptodb.connect(db_path) as d:
            assert d.insert_ticks(make_ticks(5)).rows_written == 5
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_reader_waits_out_a_writers_brief_hold(db_path):
    """Live mode opens the catalog read-write for a moment to add views; a reader arriving then
    waits for it (cryptodb.database.READER_LOCK_WAIT_S) instead of failing."""
    holder = catalog_holder(db_path, """
        time.sleep(0.5)
        d.close()
        time.sleep(30)
    """)
    try:
        with cryptodb.connect(db_path, read_only=True) as d:
            assert d.sql("SELECT 42").fetchall() == [(42,)]
        assert holder.poll() is None  # the writer's process still runs: it let go of the file only
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_info_counts(db):
    db.insert_ticks(make_ticks(20))
    db.insert_ticks(make_ticks(7, "SOL-USD"))
    info = {r["table"]: r for r in db.info()}
    assert info["ticks"]["rows"] == 27 and info["ticks"]["symbols"] == 2
    assert info["ticks"]["first_ts"] == BASE_NS
    assert info["trades"]["rows"] == 0


def test_storage_version_is_readable_by_duckdb_14(db_path):
    with cryptodb.connect(db_path) as d:
        d.insert_ticks(make_ticks(3))
        tags = d.sql("SELECT tags FROM duckdb_databases() WHERE database_name = 'crypto'").fetchall()
    assert tags[0][0]["storage_version"].startswith("v1.4")


def test_catalog_opens_in_duckdb_14(db_path):
    """A BI tool on DuckDB 1.4 reads the catalog (make test installs 1.4 beside the main env)."""
    from conftest import ROOT

    compat = ROOT / ".venv" / "compat-duckdb14"
    if not (compat / "duckdb").is_dir():
        pytest.skip("duckdb 1.4 not installed beside the venv (make test installs it)")
    with cryptodb.connect(db_path) as d:
        d.insert_ticks(make_ticks(4))
    code = (f"import duckdb; c = duckdb.connect({str(db_path)!r}, read_only=True);"
            "print(duckdb.__version__, c.sql('SELECT count(*), max(epoch_ns(ts)) FROM ticks').fetchall())")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(compat)!r}); {code}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1.4")
    assert f"(4, {BASE_NS + 3 * 1_000_003})" in out.stdout


def test_light_import():
    code = ("import cryptodb, sys; heavy = [m for m in ('numba', 'prompt_toolkit', 'confluent_kafka', "
            "'websockets') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_installed_layout_has_no_top_level_ingest():
    import importlib.util

    for name in ("udfs", "ingest", "repl"):
        assert importlib.util.find_spec(f"cryptodb.{name}") is not None
    out = subprocess.run([sys.executable, "-c", "import ingest"], capture_output=True, text=True, cwd="/")
    assert out.returncode != 0
