"""sql/backtest.sql: the execution model, every metric, no look-ahead, and the report.

Three independent checks of the numbers:
- a hand-computable case: a few ticks and signals whose trades and equity are worked out here
  with arithmetic on the inputs;
- a plain pandas/numpy loop written for this test (signals, positions, fills, trades, equity,
  metrics) run on generated ticks;
- vectorbt's Portfolio.from_signals on the same signals and fill prices (skipped without vectorbt).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import talib
from conftest import BASE_NS, ROOT, run_cli
from cryptodb.ingest.generator import generate

import cryptodb

MINUTE = 60 * 10**9
YEAR_SECONDS = 365 * 86400
SCRIPT = ROOT / "sql" / "backtest.sql"


def script_with_rules(tmp_path: Path, rules: str) -> Path:
    """The shipped script with its strategy section replaced, as a user edits it."""
    text = SCRIPT.read_text()
    edited, n = re.subn(r"-- strategy:begin\n.*?-- strategy:end\n", f"-- strategy:begin\n{rules}\n-- strategy:end\n",
                        text, flags=re.S)
    assert n == 1
    path = tmp_path / "backtest_edited.sql"
    path.write_text(edited)
    return path


# Signals from a table (exchange, symbol, seq, long_entry, long_exit, short_entry, short_exit).
INJECTED_RULES = """rules AS (
    SELECT i.exchange, i.symbol, i.ts, i.seq,
           coalesce(s.long_entry, false) AS long_entry, coalesce(s.long_exit, false) AS long_exit,
           coalesce(s.short_entry, false) AS short_entry, coalesce(s.short_exit, false) AS short_exit
    FROM indicators i LEFT JOIN test_signals s USING (exchange, symbol, seq)
),"""


def tick_table(mids, step_ns=10 * MINUTE, symbol="X-USD", exchange="test", half_spread=0.5, start=BASE_NS):
    n = len(mids)
    mids = np.asarray(mids, float)
    return pa.table({
        "exchange": [exchange] * n, "symbol": [symbol] * n,
        "ts": pa.array(start + np.arange(n, dtype=np.int64) * step_ns, pa.timestamp("ns")),
        "seq": pa.array(np.arange(1, n + 1), pa.int64()),
        "price": mids, "size": np.ones(n), "bid": mids - half_spread, "ask": mids + half_spread,
    })


def tables(results) -> dict[str, pa.Table]:
    return {r.table.column_names[0]: r.table for r in results if r.table is not None}


def stored(db, name: str, order: str) -> pd.DataFrame:
    return db.sql(f"SELECT * FROM {name} ORDER BY {order}").df()


# -- the hand-computable case -----------------------------------------------------------------------
HAND_MIDS = [100, 100, 100, 101, 102, 103, 104, 104, 104, 104, 103, 102, 101, 101, 101, 101, 100, 100, 99]
HAND_PARAMS = dict(capital=1000, notional=100, fee_bps=10, latency="1 minute", interval="1 hour")


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """Ticks every 10 minutes for 3 hours (bid/ask = mid -/+ 0.5). A long is signalled at tick 1
    and closed at tick 5, a short at tick 8 and covered at tick 12, a long at tick 15 that the
    data's end closes. With a 1 minute latency every order fills at the next tick."""
    tmp = tmp_path_factory.mktemp("hand")
    with cryptodb.connect() as db:
        db.insert_ticks(tick_table(HAND_MIDS))
        db.execute("""CREATE TABLE test_signals AS SELECT * FROM (VALUES
            ('test', 'X-USD', 2, true, false, false, false),
            ('test', 'X-USD', 6, false, true, false, false),
            ('test', 'X-USD', 9, false, false, true, false),
            ('test', 'X-USD', 13, false, false, false, true),
            ('test', 'X-USD', 16, true, false, false, false))
            t(exchange, symbol, seq, long_entry, long_exit, short_entry, short_exit)""")  # seq = tick + 1
        results = db.run_script(script_with_rules(tmp, INJECTED_RULES), report=str(tmp / "hand.html"),
                                **HAND_PARAMS)
        yield {"results": results, "trades": stored(db, "backtest_trades", "trade"),
               "equity": stored(db, "backtest_equity", "exchange = 'ALL', ts"),
               "metrics": stored(db, "backtest_metrics", "exchange = 'ALL'"), "tmp": tmp}


def _hand_expected():
    mid = np.array(HAND_MIDS, float)
    bid, ask = mid - 0.5, mid + 0.5
    fee = 10 / 1e4
    # (side, entry tick, exit tick, entry price, exit price): fills one tick after each signal
    legs = [(1, 2, 6, ask[2], bid[6]), (-1, 9, 13, bid[9], ask[13]), (1, 16, 18, ask[16], bid[18])]
    trades = []
    for side, i, j, p_in, p_out in legs:
        q = 100 / p_in
        fees = fee * q * (p_in + p_out)
        trades.append(dict(side=side, entry=i, exit=j, entry_price=p_in, exit_price=p_out, quantity=q,
                           entry_fee=fee * q * p_in, fees=fees, pnl=side * q * (p_out - p_in) - fees))
    t1, t2, t3 = trades
    # Equity at the end of each hour: the last tick of hour h is tick 6h + 5 (tick 18 for the last)
    equity = [
        1000.0,
        1000 - t1["entry_fee"] + t1["quantity"] * (mid[5] - t1["entry_price"]),
        1000 + t1["pnl"] - t2["entry_fee"] - t2["quantity"] * (mid[11] - t2["entry_price"]),
        1000 + t1["pnl"] + t2["pnl"] - t3["entry_fee"] + t3["quantity"] * (mid[17] - t3["entry_price"]),
        1000 + t1["pnl"] + t2["pnl"] + t3["pnl"],
    ]
    return trades, np.array(equity)


def test_hand_trades(hand):
    trades = hand["trades"]
    expected, _ = _hand_expected()
    assert len(trades) == 3
    assert trades.direction.tolist() == ["long", "short", "long"]
    assert trades.closed_at_end.tolist() == [False, False, True]
    for row, exp in zip(trades.itertuples(), expected):
        assert row.entry_ts.value == BASE_NS + exp["entry"] * 10 * MINUTE
        assert row.entry_signal_ts.value == BASE_NS + (exp["entry"] - 1) * 10 * MINUTE
        assert row.exit_ts.value == BASE_NS + exp["exit"] * 10 * MINUTE
        assert row.entry_price == exp["entry_price"] and row.exit_price == exp["exit_price"]
        assert row.quantity == pytest.approx(exp["quantity"], rel=1e-12)
        assert row.fees == pytest.approx(exp["fees"], rel=1e-12)
        assert row.pnl == pytest.approx(exp["pnl"], rel=1e-12)
        assert row.holding_seconds == (exp["exit"] - exp["entry"]) * 600
    # the numbers themselves, worked out by hand: long 100.5 -> 103.5, short 103.5 -> 101.5, long 100.5 -> 98.5
    assert trades.pnl.tolist() == pytest.approx([100 / 100.5 * 3 - 0.1 * 204 / 100.5,
                                                 100 / 103.5 * 2 - 0.1 * 205 / 103.5,
                                                 -100 / 100.5 * 2 - 0.1 * 199 / 100.5], rel=1e-12)


def test_hand_equity(hand):
    _, expected = _hand_expected()
    eq = hand["equity"]
    market = eq[eq.symbol == "X-USD"]
    overall = eq[eq.symbol == "ALL"]
    assert [t.value for t in market.ts] == [BASE_NS + h * 60 * MINUTE for h in range(5)]
    np.testing.assert_allclose(market.equity, expected, rtol=1e-12)
    np.testing.assert_allclose(overall.equity, expected, rtol=1e-12)
    np.testing.assert_allclose(market.drawdown, expected / np.maximum.accumulate(expected) - 1, atol=1e-15)
    assert market.position.tolist() == [0, 1, -1, 1, 0]


def test_hand_metrics(hand):
    trades, equity = _hand_expected()
    m = hand["metrics"]
    assert m.symbol.tolist() == ["X-USD", "ALL"]
    pnl = np.array([t["pnl"] for t in trades])
    r = equity[1:] / equity[:-1] - 1
    ppy = YEAR_SECONDS / 3600
    total = equity[-1] / 1000 - 1
    annual = (1 + total) ** (YEAR_SECONDS / (180 * 60)) - 1  # first to last tick: 3 hours
    dd = equity / np.maximum.accumulate(equity) - 1
    expected = dict(
        total_return=total, annualized_return=annual,
        sharpe=r.mean() / r.std(ddof=1) * math.sqrt(ppy),
        sortino=r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(ppy),
        max_drawdown=dd.min(), calmar=annual / abs(dd.min()),
        trades=3, win_rate=2 / 3, profit_factor=pnl[pnl > 0].sum() / -pnl[pnl < 0].sum(), expectancy=pnl.mean(),
        fees=sum(t["fees"] for t in trades),
        turnover=sum(t["quantity"] * (t["entry_price"] + t["exit_price"]) for t in trades) / 1000,
        exposure=(40 + 40 + 20) / 180, final_equity=equity[-1],
    )
    for _, row in m.iterrows():
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-9), name
    # The deepest point is hour 3's end; its peak is the end of hour 2 and it is never recovered:
    # the duration runs from that peak to the end of the curve (hours 2 to 4).
    assert np.argmin(dd) == 4 and np.argmax(equity[:4]) == 2
    assert m.max_drawdown_seconds.tolist() == [2 * 3600.0] * 2


def test_hand_report_and_printed_results(hand):
    printed = tables(hand["results"])
    report = Path(printed["report"].column("report")[0].as_py())
    assert report == hand["tmp"] / "hand.html" and report.exists()
    text = report.read_text()
    assert "<svg" in text and "X-USD" in text and "<script" not in text and "http" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    png = report.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png[-12:]
    assert printed["exchange"].num_rows == 2  # the metrics shown: the market and ALL


def test_fill_without_quote_uses_mid_plus_slippage(tmp_path):
    """The fill tick has a price but no bid/ask: a buy pays price * (1 + slippage)."""
    ticks = tick_table([100, 100, 100, 100, 100])
    bid = ticks.column("bid").to_numpy().copy()
    ask_mask = np.zeros(5, bool)
    ask_mask[2] = True
    ticks = ticks.set_column(ticks.schema.get_field_index("bid"), "bid", pa.array(bid, mask=ask_mask))
    ticks = ticks.set_column(ticks.schema.get_field_index("ask"), "ask",
                             pa.array(ticks.column("ask").to_numpy(), mask=ask_mask))
    with cryptodb.connect() as db:
        db.insert_ticks(ticks)
        db.execute("CREATE TABLE test_signals AS SELECT 'test' exchange, 'X-USD' symbol, 2 seq, true long_entry, "
                   "false long_exit, false short_entry, false short_exit")
        db.run_script(script_with_rules(tmp_path, INJECTED_RULES), slippage_bps=25, latency="1 second",
                      report=str(tmp_path / "r.html"))
        trade = stored(db, "backtest_trades", "trade").iloc[0]
    assert trade.entry_price == pytest.approx(100 * (1 + 25e-4), rel=1e-15)
    assert trade.exit_price == 99.5 and trade.closed_at_end


def test_latency_boundary_fills_strictly_after(tmp_path):
    """A quote exactly at signal + latency is not used: the fill is the first quote after it."""
    with cryptodb.connect() as db:
        db.insert_ticks(tick_table([100, 101, 102, 103, 104]))
        db.execute("CREATE TABLE test_signals AS SELECT 'test' exchange, 'X-USD' symbol, 1 seq, true long_entry, "
                   "false long_exit, false short_entry, false short_exit")
        db.run_script(script_with_rules(tmp_path, INJECTED_RULES), latency="10 minutes",
                      report=str(tmp_path / "r.html"))
        trade = stored(db, "backtest_trades", "trade").iloc[0]
    assert trade.entry_ts.value == BASE_NS + 20 * MINUTE and trade.entry_price == 102.5


# -- an independent implementation on generated ticks ------------------------------------------------
GEN_PARAMS = dict(short=True, latency="100 milliseconds", fee_bps=5, slippage_bps=3, notional=10_000,
                  capital=100_000, interval="1 minute", z_window=50, rsi_window=14)


def generated_ticks(seed: int = 11, ticks: int = 24_000) -> pa.Table:
    """Two markets; 3 % of the rows lose their quote (the fill then uses the last price + slippage)."""
    parts = [t for name, t in generate(symbols=["BTC-USD", "ETH-USD"], ticks=ticks, seed=seed) if name == "ticks"]
    table = pa.concat_tables(parts)
    rng = np.random.default_rng(seed)
    missing = rng.random(table.num_rows) < 0.03
    for col in ("bid", "ask"):
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, pa.array(table.column(col).to_numpy(), mask=missing))
    return table


@pytest.fixture(scope="module")
def backtested(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generated")
    with cryptodb.connect() as db:
        db.insert_ticks(generated_ticks())
        ticks = db.sql("SELECT exchange, symbol, ts, seq, price, bid, ask FROM ticks "
                       "ORDER BY exchange, symbol, ts, seq").df()
        results = db.run_script("backtest", report=str(tmp / "report.html"), out=str(tmp / "out"), **GEN_PARAMS)
        yield {"ticks": ticks, "results": results, "tmp": tmp,
               "trades": stored(db, "backtest_trades", "exchange, symbol, trade"),
               "equity": stored(db, "backtest_equity", "exchange, symbol, ts"),
               "metrics": stored(db, "backtest_metrics", "exchange, symbol")}


def reference_signals(df: pd.DataFrame, p: dict) -> pd.DataFrame:
    """zscore (population std over the last n prices) and Wilder RSI (TA-Lib), then the rules."""
    px = df.price.fillna((df.bid + df.ask) / 2).to_numpy(float)
    mean = pd.Series(px).rolling(p["z_window"]).mean().to_numpy()
    std = pd.Series(px).rolling(p["z_window"]).std(ddof=0).to_numpy()
    z = np.where(std > 0, (px - mean) / np.where(std > 0, std, 1), np.nan)
    rsi = talib.RSI(px, p["rsi_window"])
    with np.errstate(invalid="ignore"):
        out = pd.DataFrame({
            "long_entry": (z < -2) & (rsi < 30), "long_exit": (z > 0) | (rsi > 50),
            "short_entry": (z > 2) & (rsi > 70), "short_exit": (z < 0) | (rsi < 50)})
    return out  # NaN compares False: the same as coalesce(..., false)


def reference_positions(sig: pd.DataFrame) -> np.ndarray:
    held, out = 0, np.zeros(len(sig), int)
    for k, (le, lx, se, sx) in enumerate(sig[["long_entry", "long_exit", "short_entry", "short_exit"]].to_numpy()):
        if (held == 1 and lx) or (held == -1 and sx):
            held = 0
        if held == 0:
            go_long, go_short = le and not lx, se and not sx
            held = 1 if go_long and not go_short else -1 if go_short and not go_long else 0
        out[k] = held
    return out


def reference_fills(df: pd.DataFrame, p: dict, latency_ns: int) -> list[dict]:
    """Orders where the position changes, each filled at the first quote after t + latency."""
    target = reference_positions(reference_signals(df, p))
    before = np.r_[0, target[:-1]]
    ts = df.ts.astype("int64").to_numpy()
    mid = ((df.bid + df.ask) / 2).fillna(df.price).to_numpy()
    slip = p["slippage_bps"] / 1e4
    fills = []
    for i in np.flatnonzero(target != before):
        j = int(np.searchsorted(ts, ts[i] + latency_ns, side="right"))
        if j == len(ts):
            break
        buy = target[i] > before[i]
        price = df.ask.iat[j] if buy else df.bid.iat[j]
        if np.isnan(price):
            price = mid[j] * (1 + slip if buy else 1 - slip)
        fills.append(dict(signal=ts[i], ts=ts[j], before=before[i], after=target[i], price=price))
    return fills


def reference_trades(df: pd.DataFrame, p: dict, latency_ns: int) -> list[dict]:
    fee = p["fee_bps"] / 1e4
    ts = df.ts.astype("int64").to_numpy()
    trades, open_ = [], None

    def close(trade, signal, t, price, at_end):
        q = trade["quantity"]
        trade.update(exit_signal=signal, exit_ts=t, exit_price=price, closed_at_end=at_end,
                     entry_fee=fee * q * trade["entry_price"], exit_fee=fee * q * price)
        trade["fees"] = trade["entry_fee"] + trade["exit_fee"]
        trade["pnl"] = trade["side"] * q * (price - trade["entry_price"]) - trade["fees"]
        trades.append(trade)

    for f in reference_fills(df, p, latency_ns):
        if f["before"] != 0:
            close(open_, f["signal"], f["ts"], f["price"], False)
            open_ = None
        if f["after"] != 0:
            open_ = dict(side=f["after"], entry_signal=f["signal"], entry_ts=f["ts"], entry_price=f["price"],
                         quantity=p["notional"] / f["price"])
    if open_ is not None:
        last = df.iloc[-1]
        mid = (last.bid + last.ask) / 2 if not np.isnan(last.bid) else last.price
        slip = p["slippage_bps"] / 1e4
        price = last.bid if open_["side"] == 1 else last.ask
        if np.isnan(price):
            price = mid * (1 - slip if open_["side"] == 1 else 1 + slip)
        close(open_, ts[-1], ts[-1], price, True)
    return trades


def reference_equity(df: pd.DataFrame, trades: list[dict], p: dict, first_bucket: int, last_bucket: int,
                     interval_ns: int) -> np.ndarray:
    """Equity at the start, then at the end of every interval: capital + realised PnL + open position at mid."""
    ts = df.ts.astype("int64").to_numpy()
    mid = ((df.bid + df.ask) / 2).fillna(df.price).to_numpy()
    values = [p["capital"]]
    for b in range(first_bucket, last_bucket + 1, interval_ns):
        end = b + interval_ns
        seen = np.flatnonzero(ts < end)
        mark = mid[seen[-1]] if len(seen) else np.nan
        value = p["capital"]
        for t in trades:
            if t["exit_ts"] < end:
                value += t["pnl"]
            elif t["entry_ts"] < end:
                value += -t["entry_fee"] + t["side"] * t["quantity"] * (mark - t["entry_price"])
        values.append(value)
    return np.array(values)


def reference_metrics(equity: np.ndarray, times: np.ndarray, trades: list[dict], capital: float,
                      elapsed_s: float, interval_s: float, markets: int = 1) -> dict:
    r = equity[1:] / equity[:-1] - 1
    ppy = YEAR_SECONDS / interval_s
    total = equity[-1] / (capital * markets) - 1
    annual = (1 + total) ** (YEAR_SECONDS / elapsed_s) - 1 if total > -1 else -1.0
    peak = np.maximum.accumulate(equity)
    dd = equity / peak - 1
    trough = int(np.argmin(dd))
    if dd[trough] < 0:
        peak_at = max(k for k in range(trough + 1) if equity[k] == peak[trough])
        back = [k for k in range(trough + 1, len(equity)) if equity[k] >= peak[trough]]
        duration = (times[back[0] if back else len(equity) - 1] - times[peak_at]) / 1e9
    else:
        duration = 0.0
    pnl = np.array([t["pnl"] for t in trades])
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    return dict(
        total_return=total, annualized_return=annual,
        sharpe=r.mean() / r.std(ddof=1) * math.sqrt(ppy), sortino=r.mean() / downside * math.sqrt(ppy),
        max_drawdown=dd[trough], max_drawdown_seconds=duration,
        calmar=annual / abs(dd[trough]) if dd[trough] < 0 else None,
        trades=len(pnl), win_rate=(pnl > 0).mean(),
        profit_factor=pnl[pnl > 0].sum() / -pnl[pnl < 0].sum() if (pnl < 0).any() else None,
        expectancy=pnl.mean(), fees=sum(t["fees"] for t in trades),
        turnover=sum(t["quantity"] * (t["entry_price"] + t["exit_price"]) for t in trades) / (capital * markets),
        exposure=sum((t["exit_ts"] - t["entry_ts"]) / 1e9 for t in trades) / (elapsed_s * markets),
        final_equity=equity[-1])


def _reference(backtested):
    p = GEN_PARAMS
    ticks = backtested["ticks"]
    interval_ns, latency_ns = MINUTE, 100 * 10**6
    all_ts = ticks.ts.astype("int64").to_numpy()
    first_bucket, last_bucket = all_ts.min() // interval_ns * interval_ns, all_ts.max() // interval_ns * interval_ns
    elapsed = (all_ts.max() - all_ts.min()) / 1e9
    out = {}
    for (exchange, symbol), df in ticks.groupby(["exchange", "symbol"], sort=True):
        df = df.reset_index(drop=True)
        trades = reference_trades(df, p, latency_ns)
        equity = reference_equity(df, trades, p, first_bucket, last_bucket, interval_ns)
        out[symbol] = (trades, equity)
    times = np.r_[first_bucket, np.arange(first_bucket, last_bucket + 1, interval_ns) + interval_ns]
    return out, times, elapsed


def test_trades_equal_the_reference_loop(backtested):
    ref, _, _ = _reference(backtested)
    ours = backtested["trades"]
    for symbol, (trades, _) in ref.items():
        mine = ours[ours.symbol == symbol].reset_index(drop=True)
        assert len(trades) > 20 and len(mine) == len(trades), symbol
        assert {t["side"] for t in trades} == {-1, 1}
        for row, t in zip(mine.itertuples(), trades):
            assert (row.entry_signal_ts.value, row.entry_ts.value, row.exit_signal_ts.value, row.exit_ts.value) == \
                (t["entry_signal"], t["entry_ts"], t["exit_signal"], t["exit_ts"])
            assert row.side == t["side"] and row.closed_at_end == t["closed_at_end"]
            assert (row.entry_price, row.exit_price) == pytest.approx((t["entry_price"], t["exit_price"]), rel=1e-15)
            assert (row.quantity, row.fees, row.pnl) == pytest.approx((t["quantity"], t["fees"], t["pnl"]),
                                                                       rel=1e-9, abs=1e-9)


def test_equity_and_metrics_equal_the_reference_loop(backtested):
    ref, times, elapsed = _reference(backtested)
    eq, metrics = backtested["equity"], backtested["metrics"].set_index("symbol")
    curves = []
    for symbol, (trades, equity) in ref.items():
        mine = eq[eq.symbol == symbol]
        assert [t.value for t in mine.ts] == times.tolist()
        np.testing.assert_allclose(mine.equity, equity, rtol=1e-12)
        curves.append(equity)
        expected = reference_metrics(equity, times, trades, GEN_PARAMS["capital"], elapsed, 60)
        for name, value in expected.items():
            assert metrics.loc[symbol, name] == pytest.approx(value, rel=1e-9, abs=1e-12), (symbol, name)
    total = np.sum(curves, axis=0)
    np.testing.assert_allclose(eq[eq.symbol == "ALL"].equity, total, rtol=1e-12)
    all_trades = [t for trades, _ in ref.values() for t in trades]
    expected = reference_metrics(total, times, all_trades, GEN_PARAMS["capital"], elapsed, 60, markets=len(ref))
    for name, value in expected.items():
        assert metrics.loc["ALL", name] == pytest.approx(value, rel=1e-9, abs=1e-12), ("ALL", name)


def test_vectorbt_from_signals_agrees(backtested):
    """vectorbt does the accounting (positions, fees, PnL, equity) and the return statistics on the
    same signals and fill prices: one row per fill (an exit before an entry at the same quote) and
    one per interval end, valued at the mid."""
    vbt = pytest.importorskip("vectorbt")
    ref, times, _ = _reference(backtested)
    p, ticks = GEN_PARAMS, backtested["ticks"]
    eq, ours, metrics = backtested["equity"], backtested["trades"], backtested["metrics"].set_index("symbol")
    for symbol, (trades, _) in ref.items():
        df = ticks[ticks.symbol == symbol]
        ts = df.ts.astype("int64").to_numpy()
        mid = ((df.bid + df.ask) / 2).fillna(df.price).to_numpy()
        # (time, order within a time: trade number then entry before exit, kind, side, price, size)
        rows = [(times[0], (-1, 0), "start", None, np.nan, np.nan)]
        for n, t in enumerate(trades):
            rows.append((t["entry_ts"], (n, 0), "entry", t["side"], t["entry_price"], t["quantity"]))
            rows.append((t["exit_ts"], (n, 1), "exit", t["side"], t["exit_price"], t["quantity"]))
        marks = []
        for end in times[1:]:
            seen = np.flatnonzero(ts < end)
            marks.append(mid[seen[-1]] if len(seen) else np.nan)
            rows.append((end - 1, (len(trades), 0), "mark", None, np.nan, np.nan))
        rows.sort(key=lambda r: (r[0], r[1]))
        frame = pd.DataFrame(rows, columns=["t", "order", "kind", "side", "price", "size"])
        close = pd.Series(np.nan, index=frame.index)
        close[frame.kind == "mark"] = marks
        close[frame.kind.isin(["entry", "exit"])] = frame.price[frame.kind.isin(["entry", "exit"])]
        close = close.ffill().bfill()
        kind, side = frame.kind, frame.side
        pf = vbt.Portfolio.from_signals(
            close, entries=(kind == "entry") & (side == 1), exits=(kind == "exit") & (side == 1),
            short_entries=(kind == "entry") & (side == -1), short_exits=(kind == "exit") & (side == -1),
            price=frame.price.fillna(close), size=frame["size"], size_type="amount", fees=p["fee_bps"] / 1e4,
            init_cash=p["capital"], freq="1min")
        value = pf.value()[(kind == "mark") | (frame.index == 0)].to_numpy()
        mine = eq[eq.symbol == symbol]
        np.testing.assert_allclose(mine.equity, value, rtol=1e-10)
        records = pf.trades.records_readable
        mine_trades = ours[ours.symbol == symbol]
        np.testing.assert_allclose(mine_trades.pnl, records["PnL"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(mine_trades.fees, records["Entry Fees"] + records["Exit Fees"], rtol=1e-9)
        rets = pd.Series(value).pct_change().iloc[1:].vbt.returns(freq="1min", year_freq="365 days")
        m = metrics.loc[symbol]
        assert m.sharpe == pytest.approx(rets.sharpe_ratio(), rel=1e-9)
        assert m.sortino == pytest.approx(rets.sortino_ratio(), rel=1e-9)
        assert m.max_drawdown == pytest.approx(pd.Series(value).vbt.drawdowns.max_drawdown(), rel=1e-9)
        assert m.trades == pf.trades.count()
        assert m.win_rate == pytest.approx(pf.trades.win_rate(), rel=1e-12)
        assert m.profit_factor == pytest.approx(pf.trades.profit_factor(), rel=1e-9)
        assert m.expectancy == pytest.approx(pf.trades.expectancy(), rel=1e-9)


def test_out_writes_parquet_and_report(backtested):
    tmp = backtested["tmp"]
    for name in ("backtest_trades", "backtest_equity", "backtest_metrics"):
        assert pq.read_metadata(tmp / "out" / f"{name}.parquet").num_rows == len(backtested[name.split("_")[1]])
    printed = tables(backtested["results"])
    assert Path(printed["report"].column("report")[0].as_py()).exists()
    assert (tmp / "report.png").exists()


# -- no look-ahead --------------------------------------------------------------------------------------
def test_prices_after_t_change_no_trade_decided_before_t(tmp_path):
    base = generated_ticks(seed=4, ticks=16_000)
    ts = base.column("ts").cast(pa.int64()).to_numpy()
    cut = int(np.median(ts))
    after = ts > cut
    rng = np.random.default_rng(1)
    shock = np.where(after, np.exp(rng.normal(0, 0.002, len(ts))), 1.0)
    changed = base
    for col in ("price", "bid", "ask"):
        i = changed.schema.get_field_index(col)
        changed = changed.set_column(i, col, pc.multiply(changed.column(col), pa.array(shock)))
    runs = []
    for table in (base, changed):
        with cryptodb.connect() as db:
            db.insert_ticks(table)
            db.run_script("backtest", report=str(tmp_path / "r.html"), **GEN_PARAMS)
            runs.append((stored(db, "backtest_trades", "symbol, trade"), stored(db, "backtest_equity", "symbol, ts")))
    (a, eq_a), (b, eq_b) = runs
    t = pd.Timestamp(cut)
    decided_a = a[a.entry_signal_ts <= t].reset_index(drop=True)
    decided_b = b[b.entry_signal_ts <= t].reset_index(drop=True)
    assert len(decided_a) > 20
    pd.testing.assert_frame_equal(decided_a[["symbol", "trade", "direction", "entry_signal_ts"]],
                                  decided_b[["symbol", "trade", "direction", "entry_signal_ts"]])
    for (_, x), (_, y) in zip(decided_a.iterrows(), decided_b.iterrows()):
        if x.entry_ts <= t:
            assert (x.entry_ts, x.entry_price) == (y.entry_ts, y.entry_price)
        if x.exit_signal_ts <= t:
            assert x.exit_signal_ts == y.exit_signal_ts
        if x.exit_ts <= t:
            assert (x.exit_ts, x.exit_price) == (y.exit_ts, y.exit_price)
    before = eq_a.ts <= t
    pd.testing.assert_frame_equal(eq_a[before].reset_index(drop=True), eq_b[eq_b.ts <= t].reset_index(drop=True))
    # ... and the change did matter afterwards
    assert not a[a.entry_signal_ts > t].reset_index(drop=True).equals(b[b.entry_signal_ts > t].reset_index(drop=True))


def test_cli_run_prints_metrics_and_the_report_beside_the_database(db_path):
    run_cli("--db", str(db_path), "generate", "--symbols", "BTC-USD,ETH-USD", "--ticks", "20000", check=True)
    proc = run_cli("--db", str(db_path), "run", "backtest", "--param", "interval=5 minutes", "--format", "csv",
                   check=True)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("exchange,symbol,trades,total_return_pct")
    assert any(line.startswith("ALL,ALL,") for line in lines)
    report = db_path.with_name("crypto.backtest.html")
    assert lines[-1] == str(report) and report.exists() and report.with_suffix(".png").exists()


def test_png_writer_round_trips():
    """The report's PNG: a valid IHDR, one zlib stream of filtered RGB rows, the pixels drawn."""
    import struct
    import zlib

    from cryptodb.png import Canvas

    canvas = Canvas(40, 20)
    canvas.line(0, 10, 39, 10, (255, 0, 0))
    canvas.text(2, 2, "0.5%", (0, 0, 255))
    data = canvas.to_png()
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (40, 20) and data[24:26] == b"\x08\x02"
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = np.frombuffer(zlib.decompress(data[41:41 + length]), np.uint8).reshape(20, 1 + 40 * 3)
    assert (raw[:, 0] == 0).all()
    pixels = raw[:, 1:].reshape(20, 40, 3)
    assert (pixels[10] == [255, 0, 0]).all() and (pixels[2:9, 2:26] == [0, 0, 255]).all(axis=-1).any()
    assert zlib.crc32(data[37:41 + length]) == struct.unpack(">I", data[41 + length:45 + length])[0]
