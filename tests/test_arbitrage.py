"""sql/arbitrage.sql: net spreads per direction on a constructed two-exchange series whose
opportunities are known, the ASOF rules (tolerance boundary, stale quotes, ties in time), the
streak kernel, and funding carry."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import BASE_NS, run_cli
from cryptodb.udfs import registry

import cryptodb

MS = 10**6


def quotes(rows, symbol="X-USD"):
    """rows: (exchange, milliseconds after BASE, seq, bid, ask)."""
    ex, ms, seq, bid, ask = zip(*rows)
    return pa.table({"exchange": list(ex), "symbol": [symbol] * len(ex),
                     "ts": pa.array(BASE_NS + np.array(ms, np.int64) * MS, pa.timestamp("ns")),
                     "seq": pa.array(seq, pa.int64()), "bid": np.array(bid, float), "ask": np.array(ask, float),
                     "price": (np.array(bid) + np.array(ask)) / 2})


# Two exchanges, fees 1 bps per leg, tolerance 1 s. Net spread buying on X at its ask and selling
# on Y at its bid: 1e4 * (bid_Y - ask_X) / ask_X - 2.
SERIES = [
    ("a", 0, 1, 99.90, 100.00), ("b", 0, 1, 99.90, 100.00),      # -12 bps both ways
    ("b", 100, 2, 100.05, 100.15),                               # a -> b: 5 - 2 = 3 bps: opens
    ("b", 200, 3, 100.10, 100.20),                               # a -> b: 10 - 2 = 8 bps: the peak
    ("a", 300, 2, 99.95, 100.05),                                # a -> b: 4.9975 - 2: still open
    ("a", 400, 3, 100.00, 100.10),                               # a -> b: 0 - 2: closed at 400 ms
    ("a", 2000, 4, 100.00, 100.10),                              # b's quote is 1.8 s old: stale
    ("b", 2500, 4, 99.80, 99.90),                                # b -> a: 10.01 - 2: opens
    ("b", 3000, 5, 99.80, 99.90),                                # a's quote exactly 1 s old: counts
    ("b", 3001, 6, 99.80, 99.90),                                # a's quote 1.001 s old: stale, closes
    ("a", 4000, 5, 99.50, 99.60), ("a", 4000, 6, 100.50, 100.60),  # two updates at one instant: the
    ("b", 4000, 7, 99.80, 99.90),                                  # later (seq 6) is a's book: b -> a
    ("a", 4100, 7, 99.90, 100.00), ("b", 4100, 8, 99.90, 100.00),  # closed at 4100 ms
]


def opportunities(**params):
    """A fresh database per run: script parameters are session variables, and a run keeps the
    values an earlier run on the same connection set."""
    with cryptodb.connect() as db:
        db.insert_ticks(quotes(SERIES))
        results = db.run_script("arbitrage", **{"fee_bps": 1, "tolerance": "1 second", **params})
        opp = db.sql("SELECT * FROM arbitrage_opportunities ORDER BY start_ts, direction").df()
    summary = next(r.table for r in results if r.table is not None and "direction" in r.table.column_names)
    return opp, summary.to_pandas()


def ms(ts) -> int:
    return (pd.Timestamp(ts).value - BASE_NS) // MS


def test_known_opportunities():
    opp, summary = opportunities()
    got = [(r.direction, ms(r.start_ts), ms(r.end_ts), r.instants, ms(r.peak_ts)) for r in opp.itertuples()]
    assert got == [("a -> b", 100, 400, 3, 200), ("b -> a", 2500, 3001, 2, 2500), ("b -> a", 4000, 4100, 1, 4000)]
    np.testing.assert_allclose(opp.peak_net_bps, [1e4 * (100.10 - 100.00) / 100.00 - 2,
                                                  1e4 * (100.00 - 99.90) / 99.90 - 2,
                                                  1e4 * (100.50 - 99.90) / 99.90 - 2], rtol=1e-12)
    assert opp.duration_seconds.tolist() == pytest.approx([0.3, 0.501, 0.1], abs=1e-12)
    assert (opp.peak_buy_price.tolist(), opp.peak_sell_price.tolist()) == ([100.0, 99.9, 99.9], [100.1, 100.0, 100.5])
    assert opp.opportunity.tolist() == [1, 1, 2] and not opp.still_open.any()
    by_direction = summary.set_index("direction")
    assert by_direction.loc["a -> b", "opportunities"] == 1 and by_direction.loc["b -> a", "opportunities"] == 2
    assert by_direction.loc["b -> a", "seconds_open"] == pytest.approx(0.601)


def test_threshold_and_per_exchange_fees():
    opp, _ = opportunities(threshold_bps=8.005)
    assert [(r.direction, ms(r.start_ts)) for r in opp.itertuples()] == [("b -> a", 2500), ("b -> a", 4000)]
    # no fee on a: buying on a at 100.05 and selling on b at 100.10 at 300 ms nets 4.9975 - 1
    opp, _ = opportunities(fees="a=0")
    assert opp.peak_net_bps.iloc[0] == pytest.approx(1e4 * 0.10 / 100.00 - 1, rel=1e-12)


def test_a_longer_tolerance_keeps_quotes_alive():
    opp, _ = opportunities(tolerance="2 seconds")
    # b's 200 ms quote is no longer stale at 2000 ms (a: 100.10 ask vs b: 100.10 bid: -2 bps): nothing
    # new there; a's 2000 ms quote is fresh at 3001 ms, so the second run lasts until 4000 ms, where
    # a's book (its later update) still favours b -> a: one run from 2500 to 4100.
    got = [(r.direction, ms(r.start_ts), ms(r.end_ts)) for r in opp.itertuples()]
    assert got == [("a -> b", 100, 400), ("b -> a", 2500, 4100)]


def test_open_at_the_end_and_since():
    opp, _ = opportunities(until="2026-01-01 00:00:04.05")
    last = opp.iloc[-1]
    assert last.still_open and ms(last.end_ts) == 4000
    # from 2.5 s on only: the books still read the quotes before `since` (a's 2000 ms quote)
    opp, _ = opportunities(since="2026-01-01 00:00:02.5")
    assert [(r.direction, ms(r.start_ts), ms(r.end_ts)) for r in opp.itertuples()] == \
        [("b -> a", 2500, 3001), ("b -> a", 4000, 4100)]


def test_monitor_on_generated_exchanges():
    """Three venues of one latent price: every direction appears, spreads net of fees stay small."""
    from cryptodb.ingest.generator import generate_exchanges

    with cryptodb.connect() as db:
        for table, chunk in generate_exchanges(symbols=["BTC-USD"], ticks=20_000, seed=2):
            db.insert(table, chunk)
        results = db.run_script("arbitrage", fee_bps=0.25)
        summary = next(r.table for r in results if r.table is not None and "direction" in r.table.column_names)
        assert summary.num_rows == 6
        opp = db.sql("SELECT * FROM arbitrage_opportunities").df()
    assert len(opp) > 0 and (opp.peak_net_bps > 0).all() and (opp.duration_seconds >= 0).all()
    assert set(opp.buy_on) <= {"coinbase", "binance", "kraken"}


# -- streak -------------------------------------------------------------------------------------------
def test_streak_kernels():
    cond = np.array([0, 1, 1, np.nan, 1, 0, 0, 1, 0, 1], float)
    n = len(cond)

    def run(name):
        spec = registry.kernels()[name]
        out = spec.run(spec.new_state({}, 1), [cond], np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n), {})
        return [None if np.isnan(v) else int(v) for v in out[:, 0]]

    ids, lengths, ended = run("streak_id"), run("streak_rows"), run("streak_ended")
    assert ids == [None, 1, 1, None, 1, None, None, 2, None, 3]
    assert lengths == [None, 1, 2, None, 3, None, None, 1, None, 1]
    assert ended == [None, None, None, None, None, 1, None, None, 2, None]  # NULL skipped, not an end


# -- funding carry ------------------------------------------------------------------------------------
def test_funding_carry():
    hour = 3600 * 10**9
    funding = pa.table({
        "exchange": ["binance"] * 3, "symbol": ["BTC-USDT"] * 3,
        "ts": pa.array([BASE_NS + hour, BASE_NS + 2 * hour, BASE_NS + 3 * hour], pa.timestamp("ns")),
        "mark_price": [100.30, 100.05, 99.90], "index_price": [100.0, 100.0, 100.0],
        "funding_rate": [0.0005, 0.00005, -0.0002],
        "next_funding_ts": pa.array([BASE_NS + 8 * hour] * 3, pa.timestamp("ns")),
    })
    spot = pa.table({  # spot quotes: mid 100 at 1 h, 100 at 2 h - 1 s, and one 10 minutes before 3 h
        "exchange": ["binance"] * 3, "symbol": ["BTC-USDT"] * 3,
        "ts": pa.array([BASE_NS + hour, BASE_NS + 2 * hour - 10**9, BASE_NS + 3 * hour - 600 * 10**9],
                       pa.timestamp("ns")),
        "seq": pa.array([1, 2, 3], pa.int64()), "bid": [99.99, 99.99, 99.99], "ask": [100.01, 100.01, 100.01]})
    with cryptodb.connect() as db:
        db.insert_funding(funding)
        db.insert_ticks(spot)
        results = db.run_script("arbitrage", tolerance="5 minutes", carry_fee_bps=20, periods=21)
        carry = db.sql("SELECT * FROM funding_carry ORDER BY ts").df()
        summary = [r.table for r in results if r.table is not None][-1].to_pandas()
    spot_mid = np.array([100.0, 100.0, np.nan])  # the last spot quote is 10 minutes old: stale
    mark = np.array([100.30, 100.05, 99.90])
    rate = np.array([0.0005, 0.00005, -0.0002])
    np.testing.assert_allclose(carry.spot, spot_mid, rtol=1e-12)
    np.testing.assert_allclose(carry.funding_apr, rate * 3 * 365, rtol=1e-12)
    np.testing.assert_allclose(carry.basis_bps, 1e4 * (mark / spot_mid - 1), rtol=1e-9)
    hours_left = np.array([7, 6, 5])
    np.testing.assert_allclose(carry.basis_annualized, (mark / spot_mid - 1) * 365 * 24 / hours_left, rtol=1e-9)
    edge = 1e4 * (mark - spot_mid) / spot_mid + 1e4 * rate * 21 - 20
    np.testing.assert_allclose(carry.edge_bps, edge, rtol=1e-9)
    # 30 + 105 - 20 clears the fees; 5 + 10.5 - 20 does not; without spot there is no answer
    assert edge[0] > 0 > edge[1]
    assert carry.clears_fees.tolist()[:2] == [True, False] and pd.isna(carry.clears_fees.iloc[2])
    assert summary.funding_rows.tolist() == [3] and summary.with_spot.tolist() == [2]


def test_cli_generates_several_exchanges_and_runs_the_monitor(db_path):
    run_cli("--db", str(db_path), "generate", "--exchange", "coinbase,binance", "--symbols", "ETH-USD",
            "--ticks", "20000", check=True)
    proc = run_cli("--db", str(db_path), "run", "arbitrage", "--param", "fee_bps=0.2", "--format", "csv", check=True)
    assert "ETH-USD,binance -> coinbase," in proc.stdout and "ETH-USD,coinbase -> binance," in proc.stdout


def test_alerts_open_and_close():
    with cryptodb.connect() as db:
        db.insert_ticks(quotes(SERIES))
        db.run_script("arbitrage", fee_bps=1, tolerance="1 second")
        alerts = db.sql("SELECT * FROM arbitrage_alerts").df()
    got = [(ms(r.ts), r.signal, r.direction, r.opportunity) for r in alerts.itertuples()]
    assert got == [(100, "ARB OPEN", "a -> b", 1), (400, "ARB CLOSE", "a -> b", 1),
                   (2500, "ARB OPEN", "b -> a", 1), (3001, "ARB CLOSE", "b -> a", 1),
                   (4000, "ARB OPEN", "b -> a", 2), (4100, "ARB CLOSE", "b -> a", 2)]
