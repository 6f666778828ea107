-- Golden fixtures: each kernel query next to the same quantity written with DuckDB's own window
-- functions. The test runs both sides through cryptodb and compares them row by row (1e-9
-- relative). Data: the `gold` table of tests/test_engine.py (no NULLs, several symbols, ties in ts).

-- name: log_return
SELECT symbol, ts, seq, log_return(price) OVER w AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq, ln(price / lag(price) OVER w) AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);

-- name: simple_return
SELECT symbol, ts, seq, simple_return(price) OVER w AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq, price / lag(price) OVER w - 1 AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);

-- name: rolling_mean over 20 rows
SELECT symbol, ts, seq, rolling_mean(price, 20) OVER w AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq,
       CASE WHEN count(*) OVER f = 20 THEN avg(price) OVER f END AS v
FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq),
                 f AS (PARTITION BY symbol ORDER BY ts, seq ROWS BETWEEN 19 PRECEDING AND CURRENT ROW);

-- name: rolling_std (ddof 1) and sma share a window
SELECT symbol, ts, seq, rolling_std(price, 20) OVER w AS s, sma(price, 20) OVER w AS m
FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq,
       CASE WHEN count(*) OVER f = 20 THEN stddev_samp(price) OVER f END AS s,
       CASE WHEN count(*) OVER f = 20 THEN avg(price) OVER f END AS m
FROM gold WINDOW f AS (PARTITION BY symbol ORDER BY ts, seq ROWS BETWEEN 19 PRECEDING AND CURRENT ROW);

-- name: zscore over 50 rows (population sigma)
SELECT symbol, ts, seq, zscore(price, 50) OVER w AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq,
       CASE WHEN count(*) OVER f = 50 AND stddev_pop(price) OVER f > 0
            THEN (price - avg(price) OVER f) / stddev_pop(price) OVER f END AS v
FROM gold WINDOW f AS (PARTITION BY symbol ORDER BY ts, seq ROWS BETWEEN 49 PRECEDING AND CURRENT ROW);

-- name: realized_var over an INTERVAL: rows with ts in (t - 30 s, t]
SELECT symbol, ts, seq, realized_var(ret, INTERVAL 30 SECOND) OVER w AS v
FROM (SELECT *, ln(price / lag(price) OVER (PARTITION BY symbol ORDER BY ts, seq)) AS ret FROM gold)
WHERE ret IS NOT NULL
WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq,
       sum(ret * ret) OVER (PARTITION BY symbol ORDER BY ts
                            RANGE BETWEEN INTERVAL 30 SECOND - INTERVAL 1 MICROSECOND PRECEDING AND CURRENT ROW) AS v
FROM (SELECT *, ln(price / lag(price) OVER (PARTITION BY symbol ORDER BY ts, seq)) AS ret FROM gold)
WHERE ret IS NOT NULL;

-- name: ewma with alpha (first value seeds)
SELECT symbol, ts, seq, ewma(price, 1.0) OVER w AS v FROM gold WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq);
-- expected
SELECT symbol, ts, seq, price AS v FROM gold;
