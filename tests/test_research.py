"""The research mode: `cryptodb run research` over generated ticks."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import talib

import cryptodb
from cryptodb.cli import main


@pytest.fixture(scope="module")
def researched(tmp_path_factory):
    path = tmp_path_factory.mktemp("research") / "r.duckdb"
    with cryptodb.connect(path) as db:
        db.generate(symbols=["BTC-USD", "ETH-USD", "SOL-USD"], ticks=30_000, seed=5)
        results = db.run_script("research")
    return path, results


def test_features_stored_with_forty_plus_columns(researched):
    path, _ = researched
    with cryptodb.connect(path, read_only=True) as db:
        features = db.sql("SELECT * FROM features ORDER BY symbol, ts, seq").df()
        ticks = db.sql("SELECT * FROM ticks ORDER BY symbol, ts, seq").df()
    raw = {"symbol", "ts", "seq", "price", "size", "bid", "ask", "bid_size", "ask_size"}
    assert len([c for c in features.columns if c not in raw]) >= 40
    assert len(features) == len(ticks)
    btc = features[features.symbol == "BTC-USD"]
    price = btc.price.to_numpy()
    np.testing.assert_allclose(btc.rsi.to_numpy(dtype=float), talib.RSI(price, 14), rtol=1e-9, equal_nan=True)
    hist = talib.MACD(price)[2]
    np.testing.assert_allclose(btc.macd_hist.to_numpy(dtype=float), hist, rtol=1e-9, atol=1e-12, equal_nan=True)
    imbalance = (btc.bid_size - btc.ask_size) / (btc.bid_size + btc.ask_size)
    np.testing.assert_allclose(btc.imbalance.to_numpy(), imbalance.to_numpy(), rtol=1e-12)
    ret = np.r_[np.nan, np.log(price[1:] / price[:-1])]
    np.testing.assert_allclose(btc.ret.to_numpy(dtype=float), ret, rtol=1e-9, equal_nan=True)
    assert set(np.unique(btc.cusum_alarm.dropna())) <= {-1, 0, 1}


def test_summary_and_correlation(researched):
    _, results = researched
    summary, corr = [r.table for r in results if r.table is not None]
    assert summary.column("symbol").to_pylist()[0] == "BTC-USD"  # the busiest first
    assert set(summary.column_names) >= {"observations", "avg_return_bps", "tick_volatility_bps",
                                         "annual_volatility_pct", "avg_rsi", "avg_imbalance", "regime_changes"}
    assert sum(summary.column("observations").to_pylist()) == 30_000
    assert corr.num_rows == 3 and corr.column_names == ["symbol", "BTC", "ETH", "SOL"]
    assert corr.column("BTC").to_pylist()[0] == 1.0


def test_out_param_writes_a_file(researched, tmp_path, capsys):
    path, _ = researched
    out = tmp_path / "f.parquet"
    code = main(["run", "research", "--db", str(path), "--param", f"out={out}", "--format", "csv"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert pq.read_metadata(out).num_rows == 30_000
    assert "observations" in captured.out
