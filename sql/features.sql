-- features: the feature set per market (exchange, symbol), shared by research (over the whole store) and live
-- (over each micro-batch, kernels resuming from saved state): one query, so both give the same rows.
-- Included by `-- @include features` in sql/research.sql and sql/live.sql; parameters since,
-- cusum_k and cusum_h are DuckDB variables set by the including script.
--
-- One series per market, (exchange, symbol): the prices of two exchanges are two series, and live
-- mode orders and resumes each exchange's feed on its own (cryptodb.live.order).
--
-- Change a feature by editing its line; every kernel's meaning is in `cryptodb kernels NAME`.
-- Features use kernels only (prev/diff/cumsum rather than lag/sum OVER): kernels resume from
-- saved state, so live mode computes these same columns batch by batch, row for row.
WITH base AS (
    SELECT
        exchange, symbol, ts, seq, price, size, bid, ask, bid_size, ask_size,
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
    WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts, seq)
)
-- CUSUM reads standardised returns, an expression over two features: one more step.
SELECT *,
    cusum_stat(ret / nullif(ret_std_100, 0), getvariable('cusum_k'), getvariable('cusum_h')) OVER w  AS cusum_stat,
    cusum_alarm(ret / nullif(ret_std_100, 0), getvariable('cusum_k'), getvariable('cusum_h')) OVER w AS cusum_alarm
FROM base
WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts, seq)
