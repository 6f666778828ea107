-- live: run by `cryptodb live` on every micro-batch consumed from Kafka.
--
--   cryptodb live [--script live] [--param buy_z=-2] [--param buy_rsi=30] [--param sell_z=2]
--                 [--param sell_rsi=70] [--param cusum_k=0.5] [--param cusum_h=8]
--
-- Here `ticks` holds only the batch's new ticks, and every kernel resumes from the state it
-- saved at the end of the previous batch: the features are the ones `research` computes over
-- all ticks, row for row, per market (exchange, symbol). The runner appends the temp tables this
-- script leaves, `features` and `signals`, to the store tables of those names, commits them with
-- the kernel states and the Kafka offsets, and prints the signals. Change the strategy by editing
-- the signal rules below.

SET VARIABLE since    = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP_NS;
SET VARIABLE cusum_k  = coalesce(getvariable('cusum_k'), 0.5)::DOUBLE;
SET VARIABLE cusum_h  = coalesce(getvariable('cusum_h'), 8)::DOUBLE;
SET VARIABLE buy_z    = coalesce(getvariable('buy_z'), -2)::DOUBLE;
SET VARIABLE buy_rsi  = coalesce(getvariable('buy_rsi'), 30)::DOUBLE;
SET VARIABLE sell_z   = coalesce(getvariable('sell_z'), 2)::DOUBLE;
SET VARIABLE sell_rsi = coalesce(getvariable('sell_rsi'), 70)::DOUBLE;

CREATE TEMP TABLE features AS
-- @include features
;

-- The seed's rules: mean reversion on extremes of zscore and RSI, and CUSUM regime changes.
CREATE TEMP TABLE signals AS
SELECT symbol, ts, signal, exchange, price, zscore, rsi, cusum_stat
FROM (
    SELECT *,
        CASE
            WHEN zscore < getvariable('buy_z') AND rsi < getvariable('buy_rsi') THEN 'BUY'
            WHEN zscore > getvariable('sell_z') AND rsi > getvariable('sell_rsi') THEN 'SELL'
            WHEN cusum_alarm <> 0 THEN 'REGIME CHANGE'
        END AS signal
    FROM features
)
WHERE signal IS NOT NULL
ORDER BY ts, symbol, exchange;
