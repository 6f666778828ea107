-- overview: what is in the store, per symbol.
--   cryptodb run overview [--param bar=1m]
-- bar: the bar length for counting bars ('1m', '5m', '1h' ... any DuckDB interval text).
SET VARIABLE bar = coalesce(getvariable('bar'), '1 minute');

SELECT
    symbol,
    count(*)                                                    AS ticks,
    min(ts)                                                     AS first_ts,
    max(ts)                                                     AS last_ts,
    arg_min(price, ts)                                          AS first_price,
    arg_max(price, ts)                                          AS last_price,
    round(100 * (arg_max(price, ts) / arg_min(price, ts) - 1), 3) AS return_pct,
    round(avg(1e4 * (ask - bid) / ((ask + bid) / 2)), 3)        AS avg_spread_bps,
    count(DISTINCT time_bucket(getvariable('bar')::INTERVAL, ts::TIMESTAMP)) AS bars
FROM ticks
GROUP BY symbol
ORDER BY ticks DESC;
