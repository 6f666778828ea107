-- bars: OHLCV bars at any interval (time bars) or per amount of activity (tick, volume and dollar
-- bars), a few features per bar, and those features aligned back onto every tick.
--
--   cryptodb run bars [--param kind=time|tick|volume|dollar] [--param bar='5 minutes'] [--param threshold=500]
--                     [--param source=trades|ticks] [--param since=...] [--param until=...]
--                     [--param symbols=BTC-USD,ETH-USD] [--param direction=backward|forward|nearest]
--                     [--param tolerance='1 hour'] [--param out=ticks_with_bars.parquet]
--
-- kind=time groups rows into time_bucket(bar, ts); a time bar is complete at its bucket's end. The
-- activity bars (kernels tick_bar, volume_bar, dollar_bar) close on the row that brings the count,
-- volume or price*volume since the bar opened to `threshold`; such a bar is complete at its last
-- row. Bars are built from `source` (default trades: prices and sizes of real prints; a ticks table
-- repeats the last trade on quote updates), in (ts) order per exchange and symbol.
--
-- Alignment onto ticks (ASOF JOIN; ties in time go to the later bar):
--   backward (default)  the last bar complete at or before the tick: what a strategy may use at
--                       that tick (no look-ahead)
--   forward             the first bar complete at or after the tick (for a time bar: the bar the
--                       tick falls in): labels and targets only, it reads the future
--   nearest             the closer of the two; equal distances go backward
-- tolerance: a bar further than this from the tick (in its direction) is no match (NULL features),
-- e.g. after a gap in the data; a distance exactly equal to the tolerance still matches.
--
-- Outputs: `bars` (one row per bar with OHLCV and features) in the store, and `tick_bars` (every
-- tick with the aligned bar's close time and features) in the store or in `out`.

SET VARIABLE since     = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP_NS;
SET VARIABLE until     = coalesce(getvariable('until'), '2262-01-01')::TIMESTAMP_NS;  -- TIMESTAMP_NS ends in 2262
SET VARIABLE symbols   = coalesce(getvariable('symbols'), '*');                     -- '*' or BTC-USD,ETH-USD
SET VARIABLE kind      = coalesce(getvariable('kind'), 'time');
SET VARIABLE bar       = coalesce(getvariable('bar'), '1 minute')::INTERVAL;
SET VARIABLE threshold = coalesce(getvariable('threshold'),
                                  CASE getvariable('kind') WHEN 'tick' THEN 100 WHEN 'volume' THEN 10
                                                         ELSE 1000000 END)::DOUBLE;
SET VARIABLE direction = coalesce(getvariable('direction'), 'backward');
SET VARIABLE tolerance = getvariable('tolerance')::INTERVAL;                         -- NULL: any distance
SET VARIABLE bar_check = CASE WHEN getvariable('kind') NOT IN ('time', 'tick', 'volume', 'dollar')
    THEN error('bars: kind must be time, tick, volume or dollar, got ' || getvariable('kind'))
    WHEN getvariable('direction') NOT IN ('backward', 'forward', 'nearest')
    THEN error('bars: direction must be backward, forward or nearest, got ' || getvariable('direction'))
    END;
SET VARIABLE tolerance_ns = round(epoch(getvariable('tolerance')) * 1e9)::BIGINT;
-- All three activity kernels run (each is one cheap pass); the ones not asked for get a valid dummy.
SET VARIABLE tick_rows    = CASE getvariable('kind') WHEN 'tick' THEN getvariable('threshold') ELSE 1 END::BIGINT;
SET VARIABLE volume_size  = CASE getvariable('kind') WHEN 'volume' THEN getvariable('threshold') ELSE 1 END::DOUBLE;
SET VARIABLE dollar_size  = CASE getvariable('kind') WHEN 'dollar' THEN getvariable('threshold') ELSE 1 END::DOUBLE;

CREATE OR REPLACE TEMP VIEW bar_source AS
SELECT exchange, symbol, ts, price, size
FROM ${source:-trades}
WHERE ts >= getvariable('since') AND ts < getvariable('until') AND price IS NOT NULL
  AND (getvariable('symbols') = '*'
       OR list_contains(string_split(replace(getvariable('symbols'), ' ', ''), ','), symbol));

-- Every row's bar: a time bucket (as epoch microseconds) or the running number of an activity bar.
CREATE OR REPLACE TEMP TABLE bar_rows AS
WITH numbered AS (
    SELECT exchange, symbol, ts, price, size,
           tick_bar(price, getvariable('tick_rows')) OVER w           AS tick_no,
           volume_bar(size, getvariable('volume_size')) OVER w        AS volume_no,
           dollar_bar(price, size, getvariable('dollar_size')) OVER w AS dollar_no
    FROM bar_source
    WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts)
)
SELECT exchange, symbol, ts, price, size,
       CASE getvariable('kind')
           WHEN 'time' THEN epoch_us(time_bucket(getvariable('bar'), ts::TIMESTAMP))
           WHEN 'tick' THEN tick_no WHEN 'volume' THEN volume_no ELSE dollar_no END AS bar
FROM numbered;

CREATE OR REPLACE TEMP TABLE bar_table AS
WITH ohlcv AS (
    SELECT exchange, symbol, bar,
           min(ts) AS open_ts,
           -- when the bar is complete: a time bar at its bucket's end, an activity bar at its last row
           CASE WHEN getvariable('kind') = 'time'
                THEN (make_timestamp(bar) + getvariable('bar'))::TIMESTAMP_NS ELSE max(ts) END AS ts,
           arg_min(price, ts) AS open, max(price) AS high, min(price) AS low, arg_max(price, ts) AS close,
           sum(size) AS volume, sum(price * size) AS dollar_volume,
           sum(price * size) / nullif(sum(size), 0) AS vwap, count(*) AS trades
    FROM bar_rows
    GROUP BY exchange, symbol, bar
)
SELECT *,
       log_return(close) OVER w                 AS ret,
       rsi(close, 14) OVER w                    AS rsi_14,
       atr(high, low, close, 14) OVER w         AS atr_14,
       sma(close, 20) OVER w                    AS sma_20,
       realized_var(ret, 20) OVER w             AS rv_20
FROM ohlcv
WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts, bar);

-- Each tick with the bar found in `direction`: two ASOF joins on (ts, bar) keys, the second only
-- fed when it is needed. A struct key makes ties in time exact: backward takes the latest bar
-- among bars complete at the same time, forward the earliest.
CREATE OR REPLACE TEMP TABLE tick_bars AS
WITH ticks_in AS (
    SELECT exchange, symbol, ts, seq, price, bid, ask FROM ticks
    WHERE ts >= getvariable('since') AND ts < getvariable('until')
      AND (getvariable('symbols') = '*'
           OR list_contains(string_split(replace(getvariable('symbols'), ' ', ''), ','), symbol))
), behind AS (
    SELECT t.*, b.ts AS back_ts, b.bar AS back_bar
    FROM ticks_in t ASOF LEFT JOIN (SELECT exchange, symbol, ts, bar FROM bar_table
                                    WHERE getvariable('direction') <> 'forward') b
      ON t.exchange = b.exchange AND t.symbol = b.symbol
     AND {'ts': t.ts, 'bar': 9223372036854775807} >= {'ts': b.ts, 'bar': b.bar}
), both_sides AS (
    SELECT t.*, b.ts AS ahead_ts, b.bar AS ahead_bar
    FROM behind t ASOF LEFT JOIN (SELECT exchange, symbol, ts, bar FROM bar_table
                                  WHERE getvariable('direction') <> 'backward') b
      ON t.exchange = b.exchange AND t.symbol = b.symbol
     AND {'ts': t.ts, 'bar': -9223372036854775808} <= {'ts': b.ts, 'bar': b.bar}
), chosen AS (
    SELECT *,
           epoch_ns(ts) - epoch_ns(back_ts)  AS back_ns,
           epoch_ns(ahead_ts) - epoch_ns(ts) AS ahead_ns,
           CASE WHEN getvariable('direction') = 'backward' OR ahead_ts IS NULL
                     OR (back_ts IS NOT NULL AND back_ns <= ahead_ns) THEN back_bar ELSE ahead_bar END AS match_bar,
           CASE WHEN match_bar = back_bar AND back_ts IS NOT NULL THEN back_ns ELSE ahead_ns END AS distance_ns
    FROM both_sides
)
SELECT c.exchange, c.symbol, c.ts, c.seq, c.price, c.bid, c.ask,
       b.ts AS bar_ts, b.open, b.high, b.low, b.close, b.volume, b.vwap, b.ret AS bar_ret, b.rsi_14, b.atr_14,
       b.sma_20, b.rv_20
FROM chosen c
LEFT JOIN bar_table b
  ON b.exchange = c.exchange AND b.symbol = c.symbol AND b.bar = c.match_bar
 AND (getvariable('tolerance_ns') IS NULL OR c.distance_ns <= getvariable('tolerance_ns'));

COPY bar_table TO 'store://bars';
COPY tick_bars TO '${out:-store://tick_bars}';

SELECT b.exchange, b.symbol, count(*) AS bars, sum(trades) AS rows_in_bars,
       round(avg(trades), 1) AS rows_per_bar,
       to_seconds(round(avg(epoch_ns(b.ts) - epoch_ns(b.open_ts)) / 1e9))::VARCHAR AS avg_bar_time,
       round(avg(volume), 4) AS avg_volume,
       (SELECT round(100 * avg((t.bar_ts IS NOT NULL)::INTEGER), 1) FROM tick_bars t
        WHERE t.exchange = b.exchange AND t.symbol = b.symbol) AS ticks_with_bar_pct
FROM bar_table b
GROUP BY ALL
ORDER BY bars DESC;
