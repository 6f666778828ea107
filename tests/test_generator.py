"""The synthetic market: exact shapes, bit-for-bit repeatability, and data that behaves like ticks.

Every expectation is computed here from the generated rows (numpy/pandas), never pasted from
the generator's own output.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from cryptodb.ingest.generator import SEED_PRODUCTS, generate, generate_exchanges, resolve_symbols
from cryptodb.ingest.schema import TICKS, TRADES
from cryptodb.ingest.symbols import SymbolError

START = "2026-01-01T00:00:00Z"
START_NS = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()) * 10**9
MARKET_TICKS = 200_000


def collect(chunks) -> dict[str, pa.Table]:
    parts: dict[str, list[pa.Table]] = {"ticks": [], "trades": []}
    for kind, table in chunks:
        parts[kind].append(table)
    return {kind: pa.concat_tables(tables) if tables else None for kind, tables in parts.items()}


def frames(tables: dict[str, pa.Table]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ticks = tables["ticks"].to_pandas()
    trades = tables["trades"].to_pandas()
    for df in (ticks, trades):
        df["ts_ns"] = df["ts"].astype("int64")
        df["recv_ns"] = df["recv_ts"].astype("int64")
    return ticks, trades


@pytest.fixture(scope="module")
def market() -> dict[str, pa.Table]:
    return collect(generate(symbols=14, ticks=MARKET_TICKS, seed=11, start=START))


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    """200k BTC ticks on their own, for the statistical checks."""
    return collect(generate(symbols=["BTC-USD"], ticks=200_000, seed=5))["ticks"].to_pandas()


def mid_log_returns(ticks: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log((ticks["bid"].to_numpy() + ticks["ask"].to_numpy()) / 2))


def autocorr(x: np.ndarray, lag: int = 1) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


# -- shape and repeatability --------------------------------------------------------------------

def test_every_chunk_has_the_exact_schema_and_respects_chunk_rows():
    kinds = set()
    for kind, table in generate(symbols=3, ticks=30_000, chunk_rows=4_000):
        kinds.add(kind)
        assert table.schema == (TICKS if kind == "ticks" else TRADES).arrow_schema
        assert 0 < table.num_rows <= 4_000
    assert kinds == {"ticks", "trades"}


def test_same_arguments_give_identical_rows_and_another_seed_differs():
    first = collect(generate(symbols=4, ticks=20_000, seed=7))
    again = collect(generate(symbols=4, ticks=20_000, seed=7))
    other = collect(generate(symbols=4, ticks=20_000, seed=8))
    assert first["ticks"].equals(again["ticks"]) and first["trades"].equals(again["trades"])
    assert not first["ticks"].equals(other["ticks"])
    assert not np.array_equal(first["ticks"]["price"].to_numpy(), other["ticks"]["price"].to_numpy())


def test_chunking_does_not_change_the_rows():
    whole = collect(generate(symbols=3, ticks=40_000, seed=2))
    chunks = list(generate(symbols=3, ticks=40_000, seed=2, chunk_rows=3_333))
    assert sum(1 for kind, _ in chunks if kind == "ticks") > 3
    pieces = collect(chunks)
    assert whole["ticks"].equals(pieces["ticks"])
    assert whole["trades"].equals(pieces["trades"])


def test_a_symbols_rows_depend_only_on_its_own_tick_count(market):
    ticks, _ = frames(market)
    eth = ticks[ticks.symbol == "ETH-USD"].reset_index(drop=True)
    alone = collect(generate(symbols=["ETH-USD"], ticks=len(eth), seed=11))["ticks"].to_pandas()
    pd.testing.assert_frame_equal(eth.drop(columns=["ts_ns", "recv_ns"]), alone)


def test_start_accepts_datetimes_and_epoch_nanoseconds():
    as_text = collect(generate(symbols=1, ticks=500, start=START))["ticks"]
    as_datetime = collect(generate(symbols=1, ticks=500, start=datetime(2026, 1, 1, tzinfo=timezone.utc)))["ticks"]
    as_ns = collect(generate(symbols=1, ticks=500, start=START_NS))["ticks"]
    assert as_text.equals(as_datetime) and as_text.equals(as_ns)


def test_bad_arguments_fail_before_iteration():
    with pytest.raises(ValueError):
        generate(ticks=-1)
    with pytest.raises(ValueError):
        generate(chunk_rows=0)
    with pytest.raises(ValueError):
        generate(symbols=0)
    assert list(generate(ticks=0)) == []


# -- counts -------------------------------------------------------------------------------------

def test_total_rows_and_split_by_activity(market):
    ticks, _ = frames(market)
    assert len(ticks) == MARKET_TICKS
    counts = ticks.groupby("symbol").size()
    assert set(counts.index) == set(SEED_PRODUCTS)
    assert counts.sum() == MARKET_TICKS and counts.min() >= 1
    others = counts.drop(["BTC-USD", "ETH-USD"])
    assert counts["BTC-USD"] > counts["ETH-USD"] > others.max()


@pytest.mark.parametrize("ticks", [5, 14, 15, 101])
def test_small_totals_split_exactly(ticks):
    df = collect(generate(symbols=14, ticks=ticks))["ticks"].to_pandas()
    assert len(df) == ticks
    if ticks >= 14:
        assert df.symbol.nunique() == 14


# -- the rows look like a market ----------------------------------------------------------------

def test_quotes_are_ordered_on_the_tick_grid_with_positive_sizes(market):
    ticks, _ = frames(market)
    assert (ticks.bid < ticks.ask).all()
    assert (ticks[["price", "size", "bid", "ask", "bid_size", "ask_size"]] > 0).all().all()
    for symbol, increment in (("BTC-USD", 0.01), ("DOGE-USD", 0.00001), ("XRP-USD", 0.0001)):
        rows = ticks[ticks.symbol == symbol]
        for col in ("bid", "ask", "price"):
            steps = rows[col].to_numpy() / increment
            assert np.allclose(steps, np.round(steps), rtol=0, atol=1e-6), (symbol, col)


def test_times_increase_per_symbol_after_start_and_seq_counts_rows(market):
    ticks, _ = frames(market)
    assert (ticks.ts_ns >= START_NS).all()
    for _, rows in ticks.groupby("symbol", sort=False):
        assert (np.diff(rows.ts_ns.to_numpy()) > 0).all()
        assert np.array_equal(rows.seq.to_numpy(), np.arange(1, len(rows) + 1))
    latency_ms = (ticks.recv_ns - ticks.ts_ns) / 1e6
    assert (latency_ms > 0).all() and latency_ms.max() <= 100
    assert 0.2 <= latency_ms.median() <= 20


def test_trades_are_the_ticks_whose_last_trade_changed(market):
    ticks, trades = frames(market)
    assert 0.3 <= len(trades) / len(ticks) <= 0.6
    for symbol, rows in ticks.groupby("symbol", sort=False):
        sym_trades = trades[trades.symbol == symbol]
        price, size = rows.price.to_numpy(), rows["size"].to_numpy()
        changed = np.ones(len(rows), dtype=bool)  # the first tick always carries a trade
        changed[1:] = (price[1:] != price[:-1]) | (size[1:] != size[:-1])
        assert len(sym_trades) == changed.sum(), symbol
        traded = rows[changed]
        assert np.array_equal(sym_trades.ts_ns.to_numpy(), traded.ts_ns.to_numpy())
        assert np.array_equal(sym_trades.recv_ns.to_numpy(), traded.recv_ns.to_numpy())
        side = sym_trades.side.to_numpy()
        assert set(np.unique(side)) <= {-1, 1}
        touched = np.where(side == 1, traded.ask.to_numpy(), traded.bid.to_numpy())
        assert np.array_equal(sym_trades.price.to_numpy(), touched)
        assert np.array_equal(sym_trades.price.to_numpy(), traded.price.to_numpy())
        assert np.array_equal(sym_trades["size"].to_numpy(), traded["size"].to_numpy())
        ids = sym_trades.trade_id.astype("int64").to_numpy()
        assert sym_trades.trade_id.is_unique and (np.diff(ids) > 0).all()
        assert list(sym_trades.trade_id) == sorted(sym_trades.trade_id)  # ids also sort as text


def test_price_levels_are_realistic(market):
    ticks, _ = frames(market)
    median = ticks.groupby("symbol").price.median()
    assert 10_000 < median["BTC-USD"] < 500_000
    assert 500 < median["ETH-USD"] < 20_000
    assert median["DOGE-USD"] < 10
    assert median["BTC-USD"] > median["ETH-USD"] > median["SOL-USD"] > median["DOGE-USD"]


def test_default_run_spans_hours_not_seconds_or_weeks():
    first, last = {}, {}
    for kind, table in generate():
        if kind == "ticks":
            symbol = table["symbol"][0].as_py()
            ts = table["ts"].cast(pa.int64()).to_numpy()
            first.setdefault(symbol, ts[0])
            last[symbol] = ts[-1]
    span_hours = (max(last.values()) - min(first.values())) / 3.6e12
    assert 1 <= span_hours <= 48


def test_volatility_clusters(btc):
    returns = mid_log_returns(btc)
    assert autocorr(returns**2) > 0
    # Stochastic volatility proper: calm and wild stretches persist from one block to the next.
    blocks = len(returns) // 500
    log_realised_var = np.log((returns[: blocks * 500] ** 2).reshape(blocks, 500).sum(axis=1))
    assert autocorr(log_realised_var) > 0.3


def test_returns_have_jumps(btc):
    returns = mid_log_returns(btc)
    centred = returns - returns.mean()
    kurtosis = np.mean(centred**4) / np.mean(centred**2) ** 2
    assert kurtosis > 3  # a Gaussian walk has 3


def test_spread_widens_with_volatility(btc):
    returns = mid_log_returns(btc)
    spread = (btc.ask - btc.bid).to_numpy()[1:]
    blocks = len(returns) // 1000
    realised_var = (returns[: blocks * 1000] ** 2).reshape(blocks, 1000).sum(axis=1)
    mean_spread = spread[: blocks * 1000].reshape(blocks, 1000).mean(axis=1)
    rank_correlation = pd.Series(realised_var).rank().corr(pd.Series(mean_spread).rank())
    assert rank_correlation > 0.3


# -- symbols ------------------------------------------------------------------------------------

def test_resolve_symbols():
    assert len(SEED_PRODUCTS) == 14 and SEED_PRODUCTS[:3] == ("BTC-USD", "ETH-USD", "DOGE-USD")
    assert SEED_PRODUCTS[-1] == "MATIC-USD"
    assert resolve_symbols(3) == ["BTC-USD", "ETH-USD", "DOGE-USD"]
    assert resolve_symbols("2") == ["BTC-USD", "ETH-USD"]
    assert resolve_symbols(14) == list(SEED_PRODUCTS)
    assert resolve_symbols(16)[14:] == ["SYM15-USD", "SYM16-USD"]
    assert resolve_symbols("btc/usd, ETH-USD") == ["BTC-USD", "ETH-USD"]
    assert resolve_symbols(["xbt_usd", "SOLUSDT", "BTC-USD"]) == ["BTC-USD", "SOL-USDT"]
    assert resolve_symbols("FOO-USD") == ["FOO-USD"]
    with pytest.raises(ValueError):
        resolve_symbols(0)
    with pytest.raises(ValueError):
        resolve_symbols(" , ")
    with pytest.raises(SymbolError):
        resolve_symbols("BTC$USD")


def test_unknown_and_synthetic_symbols_get_a_stable_plausible_level():
    first = collect(generate(symbols=["FOO-USD", "SYM15-USD"], ticks=4_000, seed=1))["ticks"].to_pandas()
    again = collect(generate(symbols=["FOO-USD", "SYM15-USD"], ticks=4_000, seed=1))["ticks"].to_pandas()
    pd.testing.assert_frame_equal(first, again)
    level = first.groupby("symbol").price.median()
    assert ((level > 1e-4) & (level < 1e5)).all() and len(level) == 2
    assert (first.bid < first.ask).all()


def test_importing_the_generator_does_not_import_numba():
    code = "import sys, cryptodb, cryptodb.ingest.generator; sys.exit('numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- several exchanges --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def venues() -> dict[str, pa.Table]:
    return collect(generate_exchanges(symbols=2, ticks=60_000, seed=4))


def test_exchanges_share_shapes_counts_and_invariants(venues):
    assert venues["ticks"].schema == TICKS.arrow_schema and venues["trades"].schema == TRADES.arrow_schema
    ticks, trades = frames(venues)
    assert len(ticks) == 60_000
    assert set(ticks.exchange) == {"coinbase", "binance", "kraken"}
    assert (ticks.bid < ticks.ask).all() and (ticks.ts_ns > START_NS).all()
    for (exchange, symbol), rows in ticks.groupby(["exchange", "symbol"], sort=False):
        assert (np.diff(rows.ts_ns.to_numpy()) > 0).all()
        assert np.array_equal(rows.seq.to_numpy(), np.arange(1, len(rows) + 1))
        venue_trades = trades[(trades.exchange == exchange) & (trades.symbol == symbol)]
        on_tick = rows.set_index("ts_ns").loc[venue_trades.ts_ns]
        touched = np.where(venue_trades.side.to_numpy() == 1, on_tick.ask.to_numpy(), on_tick.bid.to_numpy())
        assert np.array_equal(venue_trades.price.to_numpy(), touched)


def test_exchanges_follow_one_price_at_their_own_times(venues):
    ticks, _ = frames(venues)
    btc = ticks[ticks.symbol == "BTC-USD"].assign(mid=lambda d: (d.bid + d.ask) / 2)
    coinbase = btc[btc.exchange == "coinbase"].sort_values("ts_ns")
    for other in ("binance", "kraken"):
        theirs = btc[btc.exchange == other].sort_values("ts_ns")
        assert len(np.intersect1d(coinbase.ts_ns, theirs.ts_ns)) < 0.01 * len(theirs)  # own arrival times
        paired = pd.merge_asof(theirs[["ts_ns", "mid"]], coinbase[["ts_ns", "mid"]], on="ts_ns",
                               suffixes=("", "_coinbase"), direction="nearest")
        gap_bps = np.abs(np.log(paired.mid / paired.mid_coinbase)) * 1e4
        assert np.median(gap_bps) < 5  # the same path, a few bps of venue noise apart
        # ...much closer than the path is to itself five minutes later.
        later = pd.merge_asof(theirs[["ts_ns", "mid"]].assign(ts_ns=theirs.ts_ns + 300 * 10**9),
                              coinbase[["ts_ns", "mid"]], on="ts_ns", suffixes=("", "_coinbase"),
                              direction="nearest")
        assert np.median(np.abs(np.log(later.mid / later.mid_coinbase)) * 1e4) > 2 * np.median(gap_bps)


def test_exchanges_are_repeatable_and_chunking_does_not_change_them(venues):
    key = ["exchange", "symbol", "seq"]
    small = collect(generate_exchanges(symbols=2, ticks=60_000, seed=4, chunk_rows=7_000))
    for kind, order in (("ticks", key), ("trades", ["exchange", "symbol", "trade_id"])):
        a = venues[kind].to_pandas().sort_values(order).reset_index(drop=True)
        b = small[kind].to_pandas().sort_values(order).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


def test_exchanges_with_tiny_chunks_still_see_the_lagged_path():
    # Chunks far shorter than a venue's lag: the look back must reach past the previous chunk.
    def rows(chunk_rows):
        ticks = collect(generate_exchanges(symbols=["ETH-USD"], ticks=2_000, seed=9, chunk_rows=chunk_rows))["ticks"]
        return ticks.to_pandas().sort_values(["exchange", "seq"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(3), rows(100_000))


def test_symbols_share_a_market_factor():
    """Crypto returns move together: one-minute returns of BTC and ETH correlate strongly."""
    frames = {}
    for kind, table in generate(symbols=["BTC-USD", "ETH-USD"], ticks=200_000, seed=3):
        if kind == "ticks":
            df = table.to_pandas()
            frames.setdefault(df.symbol.iloc[0], []).append(df)
    minute = {}
    for sym, parts in frames.items():
        df = pd.concat(parts)
        last = df.set_index("ts").price.resample("1min").last().dropna()
        minute[sym] = np.log(last).diff()
    joined = pd.concat(minute, axis=1).dropna()
    assert len(joined) > 100
    assert joined.corr().loc["BTC-USD", "ETH-USD"] > 0.5
