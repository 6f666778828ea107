-- research: the feature set per symbol, stored as table `features`, then a per-symbol summary and
-- the cross-symbol correlation of returns on a common time grid.
--
--   cryptodb run research [--param out=features.parquet] [--param since=2026-01-01]
--                         [--param grid='1 minute'] [--param cusum_k=0.5] [--param cusum_h=8]
--
-- out: where the features go: 'store://features' (default: Parquet in the store, and a view
--      `features` in the catalog that BI tools read), or a .parquet/.csv path.
-- The features themselves are in sql/features.sql, shared with live mode.

SET VARIABLE since   = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP_NS;
SET VARIABLE grid    = coalesce(getvariable('grid'), '1 minute')::INTERVAL;
SET VARIABLE cusum_k = coalesce(getvariable('cusum_k'), 0.5)::DOUBLE;
SET VARIABLE cusum_h = coalesce(getvariable('cusum_h'), 8)::DOUBLE;

CREATE OR REPLACE TEMP TABLE research_run AS
-- @include features
;

COPY research_run TO '${out:-store://features}';

-- Per-symbol statistics. Volatility is annualised by elapsed calendar time (crypto trades 24/7).
SELECT
    symbol,
    count(*)                                                      AS observations,
    round(avg(ret) * 1e4, 4)                                      AS avg_return_bps,
    round(stddev_samp(ret) * 1e4, 3)                              AS tick_volatility_bps,
    round(100 * sqrt(sum(ret * ret)
          / (epoch(max(ts)::TIMESTAMP - min(ts)::TIMESTAMP) / (365.25 * 86400))), 1) AS annual_volatility_pct,
    round(avg(rsi), 2)                                            AS avg_rsi,
    round(avg(imbalance), 4)                                      AS avg_imbalance,
    count(*) FILTER (WHERE cusum_alarm <> 0)                      AS regime_changes
FROM research_run
GROUP BY symbol
ORDER BY observations DESC;

-- Correlation of returns on a common grid: last price per symbol and bucket, log returns, pairs.
WITH grid AS (
    SELECT symbol, time_bucket(getvariable('grid'), ts::TIMESTAMP) AS t, arg_max(price, ts) AS px
    FROM research_run GROUP BY ALL
), returns AS (
    SELECT symbol, t, ln(px / lag(px) OVER (PARTITION BY symbol ORDER BY t)) AS r FROM grid
), pairs AS (
    SELECT a.symbol AS symbol, replace(b.symbol, '-USD', '') AS other, round(corr(a.r, b.r), 2) AS corr
    FROM returns a JOIN returns b USING (t)
    WHERE a.r IS NOT NULL AND b.r IS NOT NULL
    GROUP BY ALL
)
PIVOT pairs ON other USING first(corr) GROUP BY symbol ORDER BY symbol;
