-- research: the feature set per symbol, stored as table `features`, then a per-symbol summary and
-- the cross-symbol correlation of returns on a common time grid.
--
--   cryptodb run research [--param out=features.parquet] [--param since=2026-01-01]
--                         [--param grid='1 minute'] [--param cusum_k=0.5] [--param cusum_h=8]
--
-- out: where the features go: 'store://features' (default: Parquet in the store, and a view
--      `features` in the catalog that BI tools read), or a .parquet/.csv path.
-- Change a feature by editing its line; every kernel's meaning is in `cryptodb kernels NAME`.
-- Features use kernels only (prev/diff/cumsum rather than lag/sum OVER): kernels resume from
-- saved state, so live mode computes these same columns batch by batch, row for row.

SET VARIABLE since   = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP;
SET VARIABLE grid    = coalesce(getvariable('grid'), '1 minute')::INTERVAL;
SET VARIABLE cusum_k = coalesce(getvariable('cusum_k'), 0.5)::DOUBLE;
SET VARIABLE cusum_h = coalesce(getvariable('cusum_h'), 8)::DOUBLE;

CREATE OR REPLACE TEMP TABLE research_run AS
-- features:begin
WITH base AS (
    SELECT
        symbol, ts, seq, price, size, bid, ask, bid_size, ask_size,
        midprice(bid, ask)                                  AS mid,
        microprice(bid, ask, bid_size, ask_size)            AS micro,
        quoted_spread(bid, ask)                             AS spread,
        spread_bps(bid, ask)                                AS spread_bps,
        l1_imbalance(bid_size, ask_size)                    AS imbalance,
        log_return(price) OVER w                            AS ret,
        simple_return(price) OVER w                         AS simple_ret,
        prev(price) OVER w                                  AS price_lag1,
        diff(price) OVER w                                  AS price_diff1,
        diff(price, 5) OVER w                               AS price_diff5,
        ewma(price, 0.05) OVER w                            AS ewma_fast,
        ewma(price, halflife := INTERVAL 5 MINUTE) OVER w   AS ewma_5m,
        ema(price, 12) OVER w                               AS ema_12,
        ema(price, 26) OVER w                               AS ema_26,
        sma(price, 20) OVER w                               AS sma_20,
        rolling_std(price, 20) OVER w                       AS price_std_20,
        zscore(price, 100) OVER w                           AS zscore,
        rsi(price, 14) OVER w                               AS rsi,
        macd_line(price) OVER w                             AS macd,
        macd_signal(price) OVER w                           AS macd_signal,
        macd_hist(price) OVER w                             AS macd_hist,
        bbands_upper(price, 20) OVER w                      AS bb_upper,
        bbands_middle(price, 20) OVER w                     AS bb_middle,
        bbands_lower(price, 20) OVER w                      AS bb_lower,
        rolling_min(price, 100) OVER w                      AS low_100,
        rolling_max(price, 100) OVER w                      AS high_100,
        rolling_mean(price, INTERVAL 1 MINUTE) OVER w       AS mean_1m,
        ofi(bid, ask, bid_size, ask_size) OVER w            AS ofi,
        ofi_sum(bid, ask, bid_size, ask_size, 100) OVER w   AS ofi_100,
        vwap(price, size) OVER w                            AS vwap,
        expanding_mean(price) OVER w                        AS running_mean,
        expanding_std(price) OVER w                         AS running_std,
        running_count(price) OVER w                         AS n_obs,
        price - first_seen(price) OVER w                    AS pnl,  -- one unit held since the first tick
        -- Kernels over `ret`, the alias above: one pass, no second read of every column.
        realized_var(ret, 100) OVER w                       AS rv_100,
        bipower_var(ret, 100) OVER w                        AS bv_100,
        riskmetrics_vol(ret) OVER w                         AS rm_vol,
        rolling_std(ret, 100) OVER w                        AS ret_std_100,
        autocorr(ret, 5, 200) OVER w                        AS autocorr_5,
        historical_var(ret, 0.05, 250) OVER w               AS var_95,
        historical_cvar(ret, 0.05, 250) OVER w              AS cvar_95,
        cumsum(ret) OVER w                                  AS cum_log_return
    FROM ticks
    WHERE ts >= getvariable('since')
    WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq)
)
-- CUSUM reads standardised returns, an expression over two features: one more step.
SELECT *,
    cusum_stat(ret / nullif(ret_std_100, 0), getvariable('cusum_k'), getvariable('cusum_h')) OVER w  AS cusum_stat,
    cusum_alarm(ret / nullif(ret_std_100, 0), getvariable('cusum_k'), getvariable('cusum_h')) OVER w AS cusum_alarm
FROM base
WINDOW w AS (PARTITION BY symbol ORDER BY ts, seq)
-- features:end
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
