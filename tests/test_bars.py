"""sql/bars.sql and the activity-bar kernels: OHLCV bars, and bar features aligned onto ticks with
ASOF JOIN (direction, exact boundary, ties, tolerance)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import BASE_NS
from cryptodb.udfs import registry

import cryptodb

SECOND = 10**9


def run_kernel(name, cols, threshold):
    spec = registry.kernels()[name]
    n = len(cols[0])
    params = spec.bind([threshold], {})
    arrays = [np.array(c, float) for c in cols]
    out = spec.run(spec.new_state(params, 1), arrays, np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n),
                   params)
    return [None if np.isnan(v) else int(v) for v in out[:, 0]]


def test_activity_bar_numbers_by_hand():
    # tick bars of 3 rows; a NULL row belongs to no bar and is not counted
    assert run_kernel("tick_bar", [[1, 1, np.nan, 1, 1, 1, 1]], 3) == [0, 0, None, 0, 1, 1, 1]
    # volume bars of 5: the row that reaches 5 closes the bar, even when it overshoots (no split)
    assert run_kernel("volume_bar", [[2, 2, 1, 7, 1, 4, 1]], 5) == [0, 0, 0, 1, 2, 2, 3]
    # dollar bars of 100: price * size
    assert run_kernel("dollar_bar", [[10, 10, 20, 50, 50], [4, 6, 1, 2, 1]], 100) == [0, 0, 1, 1, 2]


def trades_table(rows, symbol="X-USD", exchange="test"):
    """rows: (seconds after BASE, price, size)."""
    t, p, s = zip(*rows)
    return pa.table({"exchange": [exchange] * len(t), "symbol": [symbol] * len(t),
                     "ts": pa.array(BASE_NS + np.array(t, np.int64) * SECOND, pa.timestamp("ns")),
                     "trade_id": [str(i) for i in range(len(t))], "price": np.array(p, float),
                     "size": np.array(s, float), "side": [1] * len(t)})


def ticks_at(seconds, symbol="X-USD", exchange="test"):
    n = len(seconds)
    return pa.table({"exchange": [exchange] * n, "symbol": [symbol] * n,
                     "ts": pa.array(BASE_NS + np.array(seconds, np.int64) * SECOND, pa.timestamp("ns")),
                     "seq": pa.array(np.arange(1, n + 1), pa.int64()), "price": np.full(n, 10.0),
                     "bid": np.full(n, 9.9), "ask": np.full(n, 10.1)})


TRADES = [(0, 10, 1), (10, 11, 2), (20, 9, 1), (30, 12, 3), (45, 13, 1), (59, 12.5, 2), (60, 12, 1), (75, 11, 1)]
TICK_SECONDS = [5, 29, 30, 40, 41, 45, 50, 60, 89, 90, 95]


@pytest.fixture
def bars_db():
    with cryptodb.connect() as db:
        db.insert_trades(trades_table(TRADES))
        db.insert_ticks(ticks_at(TICK_SECONDS))
        yield db


def aligned(db, **params):
    db.run_script("bars", **params)
    df = db.sql("SELECT ts, bar_ts, close FROM tick_bars ORDER BY ts").df()
    seconds = ((df.ts.astype("int64") - BASE_NS) // SECOND).tolist()
    bar = [None if pd.isna(b) else (b.value - BASE_NS) // SECOND for b in df.bar_ts]
    return dict(zip(seconds, bar)), df


def test_time_bars_equal_pandas_resample(bars_db):
    bars_db.run_script("bars", kind="time", bar="30 seconds")
    ours = bars_db.sql("SELECT * FROM bars ORDER BY ts").df()
    t, p, s = zip(*TRADES)
    frame = pd.DataFrame({"price": p, "size": s}, index=pd.to_datetime(BASE_NS + np.array(t) * SECOND))
    ref = frame.price.resample("30s").ohlc().join(frame["size"].resample("30s").sum().rename("volume"))
    assert [(b.value - BASE_NS) // SECOND for b in ours.ts] == [30, 60, 90]  # a bar is complete at its end
    np.testing.assert_allclose(ours[["open", "high", "low", "close", "volume"]].to_numpy(), ref.to_numpy())
    assert ours.trades.tolist() == [3, 3, 2]
    np.testing.assert_allclose(ours.vwap, (frame.price * frame["size"]).resample("30s").sum() / ref.volume)
    np.testing.assert_allclose(ours.ret[1:], np.log(ref.close.to_numpy()[1:] / ref.close.to_numpy()[:-1]))


def test_volume_bars_from_trades(bars_db):
    bars_db.run_script("bars", kind="volume", threshold=3)
    ours = bars_db.sql("SELECT open, close, volume, trades, open_ts, ts FROM bars ORDER BY bar").df()
    # sizes 1,2 | 1,3 | 1,2 | 1,1(open)
    assert ours.volume.tolist() == [3, 4, 3, 2] and ours.trades.tolist() == [2, 2, 2, 2]
    assert ours.close.tolist() == [11, 12, 12.5, 11]
    # an activity bar is complete at its last row
    assert [(b.value - BASE_NS) // SECOND for b in ours.ts] == [10, 30, 59, 75]


def test_backward_alignment_sees_only_complete_bars(bars_db):
    bar_of, df = aligned(bars_db, kind="time", bar="30 seconds")
    # before the first bar completes: nothing; exactly at a bar's end: that bar (boundary included)
    assert bar_of[5] is None and bar_of[29] is None
    assert bar_of[30] == 30 and bar_of[45] == 30 and bar_of[60] == 60 and bar_of[89] == 60 and bar_of[90] == 90
    closes = dict(zip(((df.ts.astype("int64") - BASE_NS) // SECOND).tolist(), df.close))
    assert closes[30] == 9 and closes[60] == 12.5  # the last trade price of [0, 30) and of [30, 60)


def test_forward_and_nearest_alignment(bars_db):
    forward, _ = aligned(bars_db, kind="time", bar="30 seconds", direction="forward")
    # the first bar complete at or after the tick: the bar the tick falls in, or the one ending right then
    assert forward[5] == 30 and forward[29] == 30 and forward[30] == 30 and forward[40] == 60
    assert forward[89] == 90 and forward[90] == 90 and forward[95] is None
    nearest, _ = aligned(bars_db, kind="time", bar="30 seconds", direction="nearest")
    assert nearest[40] == 30 and nearest[50] == 60
    assert nearest[45] == 30  # equally far from 30 and 60: backward wins
    assert nearest[5] == 30 and nearest[95] == 90


def test_tolerance_boundary_and_stale(bars_db):
    bar_of, _ = aligned(bars_db, kind="time", bar="30 seconds", tolerance="10 seconds")
    assert bar_of[40] == 30  # exactly 10 s old: still a match
    assert bar_of[41] is None and bar_of[50] is None  # older than the tolerance: stale, no match
    assert bar_of[60] == 60 and bar_of[89] is None
    ahead, _ = aligned(bars_db, kind="time", bar="30 seconds", tolerance="10 seconds", direction="forward")
    assert ahead[29] == 30 and ahead[5] is None and ahead[50] == 60


def test_ties_in_time_go_to_the_later_bar():
    """Two one-trade bars complete at the same instant: a tick then sees the later one going
    backward, and the earlier one going forward."""
    with cryptodb.connect() as db:
        db.insert_trades(trades_table([(0, 1, 1), (10, 2, 1), (10, 3, 1), (20, 4, 1)]))
        db.insert_ticks(ticks_at([5, 10, 15]))
        back, df = aligned(db, kind="tick", threshold=1)
        bars = db.sql("SELECT bar, ts, close FROM bars ORDER BY bar").df()
        latest_at_10 = bars[bars.ts == pd.Timestamp(BASE_NS + 10 * SECOND)].sort_values("bar")
        assert len(latest_at_10) == 2
        assert back[10] == 10 and df.close.iloc[1] == latest_at_10.close.iloc[-1]
        ahead, df = aligned(db, kind="tick", threshold=1, direction="forward")
        assert ahead[5] == 10 and df.close.iloc[0] == latest_at_10.close.iloc[0]


def test_bad_kind_is_refused(bars_db):
    with pytest.raises(Exception, match="kind must be time, tick, volume or dollar"):
        bars_db.run_script("bars", kind="hourly")
