-- export: the features produced to Kafka, one JSON message per row, keyed by symbol.
--
--   cryptodb run export [--param bootstrap=127.0.0.1:19092] [--param topic=crypto-features]
--   cryptodb live --script export [--topic coinbase-ticker] ...
--
-- Run once, it sends the features of every stored tick. Run by live mode, it sends each
-- micro-batch's features as they are computed (and live mode stores them, as with sql/live.sql).
-- Delivery to Kafka is at least once.

SET VARIABLE since   = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP_NS;
SET VARIABLE cusum_k = coalesce(getvariable('cusum_k'), 0.5)::DOUBLE;
SET VARIABLE cusum_h = coalesce(getvariable('cusum_h'), 8)::DOUBLE;

CREATE OR REPLACE TEMP TABLE features AS
-- @include features
;

COPY features TO 'kafka://${bootstrap:-127.0.0.1:19092}/${topic:-crypto-features}';
