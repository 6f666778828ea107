"""The SQL kernel engine: query shapes, golden fixtures against DuckDB's own window functions,
TA-Lib on the store, the no-sort and sort paths, parameters, views, and error messages."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import talib
from conftest import BASE_NS, make_ticks
from hypothesis import given, settings
from hypothesis import strategies as st

import cryptodb
from cryptodb.errors import CryptodbError

GOLDEN = Path(__file__).parent / "golden" / "kernels.sql"
W = "WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq)"


@pytest.fixture(scope="module")
def market():
    """Three symbols, 3000 ticks each, unique millisecond timestamps, inserted in shuffled order."""
    with cryptodb.connect() as db:
        tables = [make_ticks(3000, sym, seed=i, step_ns=1_000_000 * (i + 1) + 7_000_000)
                  for i, sym in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"])]
        for t in tables:
            db.insert_ticks(t)
        yield db


def golden_cases():
    text = GOLDEN.read_text()
    cases = []
    for block in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        name, _, body = block.partition("\n")
        query, _, expected = body.partition("-- expected")
        cases.append(pytest.param(query.strip(), expected.strip(), id=name.strip()))
    return cases


@pytest.mark.parametrize("query,expected", golden_cases())
def test_golden_fixtures(market, query, expected):
    market.sql("CREATE OR REPLACE TEMP TABLE gold AS SELECT * FROM ticks")
    got = market.sql(query).df().sort_values(["symbol", "ts", "seq"]).reset_index(drop=True)
    want = market.sql(expected).df().sort_values(["symbol", "ts", "seq"]).reset_index(drop=True)
    assert list(got.columns) == list(want.columns) and len(got) == len(want) > 0
    for col in got.columns[3:]:
        a, b = got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float)
        assert (np.isnan(a) == np.isnan(b)).all(), col
        np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-9, atol=1e-12)


def per_symbol(df: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return df[df.symbol == symbol].sort_values("ts")


def test_issue_example_query(market):
    q = """
    WITH r AS (
      SELECT symbol, ts, price, log_return(price) OVER w AS ret,
             rsi(price, 14) OVER w AS rsi,
             (macd(price) OVER w).hist AS macd_hist,
             zscore(price, 100) OVER w AS z
      FROM ticks WHERE ts >= '2026-01-01'
      WINDOW w AS (PARTITION BY symbol ORDER BY ts))
    SELECT *, realized_var(ret, INTERVAL 5 MINUTE) OVER (PARTITION BY symbol ORDER BY ts) AS rv FROM r
    """
    df = market.sql(q).df()
    assert list(df.columns) == ["symbol", "ts", "price", "ret", "rsi", "macd_hist", "z", "rv"]
    for sym in ("BTC-USD", "SOL-USD"):
        d = per_symbol(df, sym)
        price = d.price.to_numpy()
        np.testing.assert_allclose(d.rsi.to_numpy(dtype=float), talib.RSI(price, 14), rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(d.macd_hist.to_numpy(dtype=float), talib.MACD(price)[2], rtol=1e-9,
                                   atol=1e-12, equal_nan=True)
        ret = pd.Series(np.r_[np.nan, np.diff(np.log(price))], index=d.ts.to_numpy())
        ref = (ret ** 2).rolling("5min").sum().where(ret.notna())
        np.testing.assert_allclose(d.rv.to_numpy(dtype=float), ref.to_numpy(), rtol=1e-9, equal_nan=True)


def test_inline_and_named_windows_and_several_windows(market):
    df = market.sql(f"""
        SELECT symbol, ts, seq, ema(price, 10) OVER w AS a,
               ema(price, 10) OVER (PARTITION BY symbol ORDER BY ts, seq) AS b,
               ema(price, 10) OVER (ORDER BY ts, seq) AS across,
               sma(price, 5) OVER (PARTITION BY left(symbol, 3) ORDER BY ts) AS by_expr
        FROM ticks {W}""").df()
    assert (df.a.isna() == df.b.isna()).all() and np.allclose(df.a.dropna(), df.b.dropna())
    everything = df.sort_values(["ts", "seq"], kind="stable")
    ref = talib.EMA(everything_prices(market, everything), 10)
    np.testing.assert_allclose(everything.across.to_numpy(dtype=float), ref, rtol=1e-9, equal_nan=True)
    d = per_symbol(df, "ETH-USD")
    prices = market.sql("SELECT price FROM ticks WHERE symbol = 'ETH-USD' ORDER BY ts").df().price.to_numpy()
    np.testing.assert_allclose(d.by_expr.to_numpy(dtype=float), talib.SMA(prices, 5), rtol=1e-9, equal_nan=True)


def everything_prices(db, ordered: pd.DataFrame) -> np.ndarray:
    prices = db.sql("SELECT symbol, ts, seq, price FROM ticks").df()
    return ordered[["symbol", "ts", "seq"]].merge(prices, on=["symbol", "ts", "seq"]).price.to_numpy()


def test_struct_fields_and_aliases(market):
    df = market.sql(f"""SELECT symbol, ts, macd(price) OVER w AS m, (macd(price) OVER w).signal AS s,
                               macd_signal(price) OVER w AS s2, bbands_upper(price, 20) OVER w AS up,
                               (bbands(price, 20) OVER w).upper AS up2
                        FROM ticks {W}""").df()
    assert np.allclose(df.s.dropna(), df.s2.dropna()) and df.s.isna().sum() == df.s2.isna().sum()
    assert np.allclose(df.up.dropna(), df.up2.dropna())
    first = df.m.dropna().iloc[0]
    assert set(first) == {"macd", "signal", "hist"}


def test_mixed_with_native_windows_outer_group_by_join_and_limit(market):
    q = f"""
    WITH f AS (SELECT symbol, ts, price, lag(price) OVER w AS prev, rsi(price, 14) OVER w AS r
               FROM ticks WHERE price > 0 {W})
    SELECT f.symbol, count(*) AS n, avg(f.r) AS avg_rsi, max(m.last_ts) AS last_ts
    FROM f JOIN (SELECT symbol, max(ts) AS last_ts FROM ticks GROUP BY symbol) m ON m.symbol = f.symbol
    WHERE f.prev IS NOT NULL
    GROUP BY f.symbol ORDER BY f.symbol LIMIT 2"""
    rows = market.sql(q).fetchall()
    assert [r[0] for r in rows] == ["BTC-USD", "ETH-USD"] and rows[0][1] == 2999
    prices = market.sql("SELECT price FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts").df().price.to_numpy()
    assert rows[0][2] == pytest.approx(np.nanmean(talib.RSI(prices, 14)[1:]), rel=1e-9)


def test_where_applies_before_kernels_and_outer_order_does_not_matter(market):
    inner = market.sql(f"""SELECT ts, ema(price, 5) OVER w AS e FROM ticks
                           WHERE symbol = 'BTC-USD' AND seq % 2 = 0 {W} ORDER BY ts DESC""").df()
    prices = market.sql("SELECT price FROM ticks WHERE symbol = 'BTC-USD' AND seq % 2 = 0 ORDER BY ts").df()
    ref = talib.EMA(prices.price.to_numpy(), 5)
    np.testing.assert_allclose(inner.e.to_numpy(dtype=float)[::-1], ref, rtol=1e-9, equal_nan=True)


def test_subquery_and_kernel_over_kernel_output(market):
    df = market.sql(f"""
        SELECT symbol, ts, ema(r, 5) OVER w AS smooth
        FROM (SELECT symbol, ts, seq, rsi(price, 14) OVER w AS r FROM ticks {W}) sub
        {W}""").df()
    d = per_symbol(df, "BTC-USD")
    prices = market.sql("SELECT price FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts").df().price.to_numpy()
    r = talib.RSI(prices, 14)
    ref = np.full(len(r), np.nan)
    ref[14:] = talib.EMA(r[14:], 5)  # NULL rows are skipped by the kernel, as TA-Lib over non-NULLs
    np.testing.assert_allclose(d.smooth.to_numpy(dtype=float), ref, rtol=1e-9, equal_nan=True)


def test_parameters_positional_named_and_variables(market):
    base = market.sql(f"SELECT ts, sma(price, 7) OVER w AS s FROM ticks WHERE symbol = 'ETH-USD' {W}").df()
    pos = market.sql(f"SELECT ts, sma(price, ?) OVER w AS s FROM ticks WHERE symbol = ? {W}",
                     params=[7, "ETH-USD"]).df()
    named = market.sql(f"SELECT ts, sma(price, $n) OVER w AS s FROM ticks WHERE symbol = $sym {W}",
                       params={"n": 7, "sym": "ETH-USD"}).df()
    market.set_params(n=7)
    variable = market.sql(f"SELECT ts, sma(price, getvariable('n')) OVER w AS s FROM ticks "
                          f"WHERE symbol = 'ETH-USD' {W}").df()
    kw = market.sql(f"SELECT ts, sma(price, n := 7) OVER w AS s FROM ticks WHERE symbol = 'ETH-USD' {W}").df()
    for other in (pos, named, variable, kw):
        pd.testing.assert_frame_equal(other, base)


def test_create_table_copy_and_insert(market, tmp_path):
    market.sql(f"CREATE OR REPLACE TABLE feat AS SELECT symbol, ts, rsi(price, 14) OVER w AS r FROM ticks {W}")
    assert market.sql("SELECT count(*), count(r) FROM feat").fetchall() == [(9000, 9000 - 3 * 14)]
    out = tmp_path / "f.parquet"
    market.sql(f"COPY (SELECT symbol, ts, rsi(price, 14) OVER w AS r FROM ticks {W}) TO '{out}'")
    assert market.sql(f"SELECT count(r) FROM '{out}'").fetchall() == [(9000 - 3 * 14,)]
    market.sql(f"INSERT INTO feat SELECT symbol, ts, rsi(price, 3) OVER w FROM ticks {W}")
    assert market.sql("SELECT count(*) FROM feat").fetchall() == [(18000,)]


def test_kernel_views_persist_and_plain_duckdb_sees_stored_rows(db_path):
    import duckdb

    with cryptodb.connect(db_path) as db:
        db.insert_ticks(make_ticks(500))
        db.sql(f"CREATE VIEW momentum AS SELECT symbol, ts, rsi(price, 14) OVER w AS r FROM ticks {W}")
        expected = db.sql("SELECT * FROM momentum ORDER BY ts").df()
    with cryptodb.connect(db_path) as db:
        again = db.sql("SELECT * FROM momentum ORDER BY ts").df()
        pd.testing.assert_frame_equal(again, expected)
        db.insert_ticks(make_ticks(10, start_ns=BASE_NS + 10**12, seq_start=10_000))
        assert db.sql("SELECT count(*) FROM momentum").fetchall() == [(510,)]  # fresh through cryptodb
        db.sql("CREATE VIEW calm AS SELECT * FROM momentum WHERE r < 50")  # a view over a kernel view
        assert db.sql("SELECT count(*) FROM calm").fetchall() == \
            db.sql("SELECT count(*) FROM momentum WHERE r < 50").fetchall()
    plain = duckdb.connect(str(db_path), read_only=True)
    stored = plain.sql("SELECT * FROM momentum ORDER BY ts").df()
    plain.close()
    pd.testing.assert_frame_equal(stored, expected)  # rows as of the last refresh
    with cryptodb.connect(db_path) as db:
        assert db.refresh_views() == ["calm", "momentum"]  # calm reads a kernel view: it is one too
        db.sql("DROP VIEW calm")
        db.sql("DROP VIEW momentum")
        with pytest.raises(Exception, match="momentum"):
            db.sql("SELECT * FROM momentum")


def test_storage_order_and_sorted_paths_agree(tmp_path):
    """Files written out of time order (late data) force the sort path; results are identical."""
    ticks = make_ticks(2000, seed=3)
    q = f"SELECT ts, seq, rsi(price, 14) OVER w AS r, zscore(price, 30) OVER w AS z FROM ticks {W} ORDER BY ts"
    with cryptodb.connect(tmp_path / "a.duckdb") as ordered:
        ordered.insert_ticks(ticks)
        want = ordered.sql(q).df()
    with cryptodb.connect(tmp_path / "b.duckdb") as shuffled:
        for chunk in np.array_split(np.random.default_rng(1).permutation(2000), 7):
            shuffled.insert_ticks(ticks.take(pa.array(np.sort(chunk))))
        assert len(shuffled.store.files("ticks")) == 7
        got = shuffled.sql(q).df()
    pd.testing.assert_frame_equal(got, want)


def test_sort_path_is_used_and_equals_presorted():
    from cryptodb.engine.compute import processing_order

    gid = np.array([0, 1, 0, 1, 0])
    in_order = (np.array([1, 1, 2, 5, 3]),)
    rows, stored = processing_order(gid, in_order, 2)
    assert stored and rows.tolist() == [0, 1, 2, 3, 4]
    out_of_order = (np.array([3, 1, 2, 5, 1]),)
    rows, stored = processing_order(gid, out_of_order, 2)
    assert not stored and [r for r in rows if gid[r] == 0] == [4, 2, 0]
    # Two keys: the second breaks ties of the first, and only ties.
    first = np.array([1, 1, 1, 2, 1])  # partition 0's rows tie on it
    rows, stored = processing_order(gid, (first, np.array([1, 1, 3, 0, 9])), 2)
    assert stored
    rows, stored = processing_order(gid, (first, np.array([5, 1, 3, 0, 9])), 2)
    assert not stored and [r for r in rows if gid[r] == 0] == [2, 0, 4]


def test_ties_follow_next_order_key_then_storage_order(db):
    t = pa.table({"symbol": ["X-USD"] * 4, "ts": pa.array([BASE_NS] * 4, pa.timestamp("ns")),
                  "seq": [4, 3, 2, 1], "price": [1.0, 2.0, 3.0, 4.0]})
    db.insert_ticks(t, exchange="x")
    by_seq = db.sql("SELECT seq, ewma(price, 0.5) OVER (ORDER BY ts, seq) AS e FROM ticks ORDER BY seq").fetchall()
    # seq order 1,2,3,4 -> prices 4,3,2,1: y = 4, 3.5, 2.75, 1.875
    assert [e for _, e in by_seq] == [4.0, 3.5, 2.75, 1.875]


def test_plain_query_goes_to_duckdb_untouched():
    code = ("import sys, cryptodb; db = cryptodb.connect(); "
            "r = db.sql('SELECT avg(x) OVER (ORDER BY x) FROM range(3) t(x)'); r.fetchall(); "
            "print(type(r).__name__, 'numba' in sys.modules, 'sqlglot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["DuckDBPyRelation", "False", "False"], out.stderr


@pytest.mark.parametrize("query,message", [
    ("SELECT rsi(price, 14) OVER (PARTITION BY symbol) FROM ticks", "rsi: a kernel runs in time order"),
    ("SELECT rsi(price, 14) OVER (ORDER BY ts ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) FROM ticks",
     "rsi: kernels compute their own window"),
    ("SELECT rsi(price, window := 3) OVER (ORDER BY ts) FROM ticks", "rsi: unknown parameter 'window'"),
    ("SELECT rsi(price, 0) OVER (ORDER BY ts) FROM ticks", "rsi: parameter 'n' must be >1"),
    ("SELECT rsi(price, seq) OVER (ORDER BY ts) FROM ticks", "rsi: parameter n (seq) must be a constant"),
    ("SELECT rsi() OVER (ORDER BY ts) FROM ticks", "rsi: expects 1 input column"),
    ("SELECT symbol, rsi(price, 14) OVER (ORDER BY ts) FROM ticks GROUP BY symbol", "aggregate"),
    ("SELECT rsi(t.price, 14) OVER (ORDER BY t.ts) FROM ticks t JOIN trades USING (symbol)", "JOIN"),
    ("SELECT ema(rsi(price) OVER (ORDER BY ts), 5) OVER (ORDER BY ts) FROM ticks", "give the inner kernel an alias"),
    ("SELECT rolling_mean(price, INTERVAL 1 MINUTE) OVER (ORDER BY seq) FROM ticks", "ordered by a timestamp"),
    ("SELECT ewma(price) OVER (ORDER BY ts) FROM ticks", "ewma: give exactly one of alpha"),
    ("SELECT zscore(price, 20) OVER v FROM ticks", "window 'v' is not defined"),
    ("SELECT ema(b, 3) OVER w AS a, ema(a, 3) OVER w AS b FROM ticks WINDOW w AS (ORDER BY ts)",
     "kernel calls read each other's outputs in a circle: ema, ema"),
])
def test_bad_shapes_fail_before_reading_with_a_named_kernel(db, query, message):
    db.insert_ticks(make_ticks(50))
    with pytest.raises(CryptodbError, match=re.escape(message)):
        db.sql(query)


def test_errors_come_before_any_data_is_read(db, monkeypatch):
    from cryptodb.engine import compute

    db.insert_ticks(make_ticks(50))
    monkeypatch.setattr(compute, "compute", lambda *a: pytest.fail("data was read"))
    with pytest.raises(CryptodbError):
        db.sql("SELECT rsi(price, -1) OVER (ORDER BY ts) FROM ticks")


def test_spliced_tables_are_released(market):
    def registered():
        return market.con.sql("SELECT count(*) FROM duckdb_views() WHERE view_name LIKE '__cdb_%'").fetchall()[0][0]

    result = market.sql(f"""
        WITH a AS (SELECT symbol, ts, seq, rsi(price, 14) OVER w AS r FROM ticks {W})
        SELECT symbol, ts, ema(r, 5) OVER w AS e FROM a WHERE r IS NOT NULL {W} ORDER BY symbol, ts""")
    assert registered() == 1  # the inner level was freed as soon as the outer level had read it
    assert len(result.df()) == 9000 - 3 * 14
    assert registered() == 0


def test_builtin_names_stay_duckdb_without_parameters(market):
    got = market.sql(f"SELECT ts, stddev(price) OVER w AS native, stddev(price, 5) OVER w AS kernel "
                     f"FROM ticks WHERE symbol = 'BTC-USD' {W} ORDER BY ts").df()
    prices = market.sql("SELECT price FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts").df().price
    np.testing.assert_allclose(got.native.to_numpy(dtype=float), prices.expanding().std().to_numpy(),
                               rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got.kernel.to_numpy(dtype=float), talib.STDDEV(prices.to_numpy(), 5),
                               rtol=1e-6, equal_nan=True)


def test_statements_sqlglot_cannot_parse_still_run(market):
    # `first(...)` and OVER in one PIVOT statement look like kernel use to the textual gate.
    rows = market.sql("""WITH p AS (SELECT symbol, lag(price) OVER (PARTITION BY symbol ORDER BY ts) AS x FROM ticks)
                         PIVOT p ON symbol USING first(x) ORDER BY ALL""").fetchall()
    assert len(rows) == 1


def test_kernel_reads_another_kernels_alias_in_the_same_select(market):
    same = market.sql(f"""SELECT symbol, ts, seq, log_return(price) OVER w AS ret,
                                 realized_var(ret, 30) OVER w AS rv, ema(h, 4) OVER w AS smooth,
                                 macd_hist(price) OVER w AS h
                          FROM ticks {W} ORDER BY symbol, ts""").df()
    nested = market.sql(f"""WITH k AS (SELECT symbol, ts, seq, log_return(price) OVER w AS ret,
                                              macd_hist(price) OVER w AS h FROM ticks {W})
                            SELECT symbol, ts, seq, ret, realized_var(ret, 30) OVER w AS rv,
                                   ema(h, 4) OVER w AS smooth, h FROM k {W} ORDER BY symbol, ts""").df()
    pd.testing.assert_frame_equal(same, nested)
    assert same.rv.notna().sum() > 8000


def test_alias_of_a_struct_kernel_needs_a_field(market):
    with pytest.raises(CryptodbError, match="returns a STRUCT"):
        market.sql(f"SELECT macd(price) OVER w AS m, ema(m, 3) OVER w FROM ticks {W}")


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), pieces=st.integers(2, 6))
def test_any_storage_order_gives_the_same_result(tmp_path_factory, seed, pieces):
    """Hypothesis: ticks inserted as random subsets (files out of time order, overlapping) give
    exactly what the time-ordered store gives."""
    ticks = make_ticks(600, seed=seed % 7)
    q = f"SELECT ts, seq, rsi(price, 5) OVER w AS r, rolling_std(price, INTERVAL 3 SECOND) OVER w AS s FROM ticks {W}"
    folder = tmp_path_factory.mktemp("order")
    with cryptodb.connect(folder / "a.duckdb") as ordered:
        ordered.insert_ticks(ticks)
        want = ordered.sql(q + " ORDER BY ts, seq").df()
    rng = np.random.default_rng(seed)
    with cryptodb.connect(folder / "b.duckdb") as scattered:
        for chunk in np.array_split(rng.permutation(600), pieces):
            scattered.insert_ticks(ticks.take(pa.array(chunk)))
        got = scattered.sql(q + " ORDER BY ts, seq").df()
    pd.testing.assert_frame_equal(got, want)


def test_shortcut_reads_equal_duckdb_reads(market):
    """A scope reading a CTE over spliced rows takes plain columns from Arrow and computes the
    rest in DuckDB; forcing the whole read through DuckDB (a WHERE) gives the same rows."""
    base = f"""WITH k AS (SELECT symbol, ts, seq, price, midprice(bid, ask) AS mid,
                                 log_return(price) OVER w AS ret, rolling_std(ret, 20) OVER w AS sd
                          FROM ticks {W})
               SELECT *, cusum_alarm(ret / nullif(sd, 0), 0.5, 4) OVER w AS alarm,
                      ema(mid, 5) OVER w AS mid_ema FROM k"""
    fast = market.sql(f"{base} {W} ORDER BY symbol, ts").df()
    slow = market.sql(f"{base} WHERE true {W} ORDER BY symbol, ts").df()
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.alarm.notna().sum() > 8000


def test_unaliased_kernel_columns_are_named_after_their_expression(market):
    rel = market.sql(f"SELECT rsi(price, 14) OVER w, ema(price, 3) OVER w * 2 FROM ticks {W}")
    assert rel.columns == ["rsi(price, 14) OVER w", "ema(price, 3) OVER w * 2"]


@pytest.mark.parametrize("shuffled", [False, True])
def test_large_inputs_run_each_kernel_on_several_threads_and_agree_with_references(db, shuffled):
    """Over 100K rows a kernel runs in pieces of whole partitions on several threads (one state
    per piece, INTERVAL buffers growing in each); in storage order or after the sort fallback, the
    values are those of per-symbol references. Over 200K rows the symbols' runs are found in two
    halves at once, the middle falling inside SOL-USD's rows."""
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD"]
    tables = [make_ticks(48_000, symbol=s, seed=i, step_ns=7_000_003) for i, s in enumerate(symbols)]
    data = pa.concat_tables(tables)
    if shuffled:
        data = data.take(pa.array(np.random.default_rng(3).permutation(data.num_rows)))
    db.con.register("big", data)
    # cum reads ret: it is queued once ret is complete, while the other kernels still run.
    got = db.sql("SELECT symbol, ts, rsi(price, 14) OVER w AS rsi, "
                 "rolling_mean(price, INTERVAL 1 SECOND) OVER w AS mean_1s, "
                 "log_return(price) OVER w AS ret, cumsum(ret) OVER w AS cum FROM big "
                 "WINDOW w AS (PARTITION BY symbol ORDER BY ts)").df().sort_values(["symbol", "ts"])
    for s, t in zip(symbols, tables):
        mine = got[got.symbol == s]
        price = t.column("price").to_numpy()
        np.testing.assert_allclose(mine.rsi.to_numpy(dtype=float), talib.RSI(price, 14), rtol=1e-9, equal_nan=True)
        ref = pd.Series(price, index=pd.to_datetime(t.column("ts").to_numpy())).rolling("1s").mean().to_numpy()
        np.testing.assert_allclose(mine.mean_1s.to_numpy(dtype=float), ref, rtol=1e-9)
        np.testing.assert_allclose(mine.cum.to_numpy(dtype=float)[1:], np.log(price[1:] / price[0]),
                                   rtol=1e-9, atol=1e-12)
