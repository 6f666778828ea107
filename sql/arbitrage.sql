-- arbitrage: cross-exchange spreads net of fees, the opportunities they open, and funding carry.
--
--   cryptodb run arbitrage [--param symbols=BTC-USD] [--param exchanges=coinbase,binance,kraken]
--                          [--param tolerance='500 milliseconds'] [--param fee_bps=10]
--                          [--param fees=binance=2,coinbase=6] [--param threshold_bps=0]
--                          [--param since=...] [--param until=...]
--                          [--param carry_fee_bps=40] [--param periods=21] [--param funding_hours=8]
--                          [--param spot_exchange=binance] [--param spot_symbol=BTC-USDT]
--
-- Cross-exchange monitor. For each symbol, at every instant any exchange's quote changes, each
-- exchange's book is its latest quote at or before that instant (ASOF JOIN on (ts, seq): of
-- several updates at one timestamp the last one counts). A quote older than `tolerance` is stale
-- and is no match (that exchange has no price then); a quote exactly `tolerance` old still counts.
-- For every ordered pair (buy on A at A's ask, sell on B at B's bid):
--   net_bps = 1e4 * (bid_B - ask_A) / ask_A - fee_A - fee_B
-- (taker fees in bps per leg: `fee_bps` for every exchange, or per exchange in `fees`). An
-- opportunity is a run of consecutive instants with net_bps > threshold_bps; it ends at the first
-- instant it is not (or a quote went stale). Outputs, in the store:
--   arbitrage_opportunities  symbol, direction, start, end, duration, peak net spread (and when,
--                            at which prices), instants, still_open (the data ended inside it)
--   funding_carry            per funding row: funding_apr, basis_bps, basis_annualized,
--                            cash_and_carry_edge_bps and clears_fees
-- and prints a summary per symbol and direction, then the carry summary. The temp table
-- `arbitrage_alerts` (symbol, ts, signal 'ARB OPEN' / 'ARB CLOSE', direction, opportunity,
-- net_bps, prices) holds the alerts a live run prints.
--
-- Funding carry (short the perpetual, hold spot): from `funding` rows (Binance markPrice, tardis
-- derivative_ticker imports) and the spot mid at the same time (ASOF, same tolerance rule):
--   funding_apr(funding_rate, funding_hours); basis_bps(mark, spot); basis_annualized(mark, spot, ts,
--   next_funding_ts) (the premium over the time to the next funding); cash_and_carry_edge_bps(mark,
--   spot, funding_rate, carry_fee_bps, periods) = premium + funding over `periods` - fees for the
--   round trip (default 4 legs of fee_bps). clears_fees: the edge is positive after those fees.
--   Spot is `spot_symbol` (default: the funding row's symbol) on `spot_exchange` (default: the
--   funding row's exchange).
--
-- Live: `cryptodb live --script arbitrage --topic T [--param ...]` evaluates each micro-batch as it
-- arrives, as the `-- @live` lines below declare (cryptodb.live.script, cryptodb.live.books):
--   lookback tolerance      `ticks` holds the batch's new ticks plus the stored quotes the books
--                           need (back to `tolerance` before each symbol's last evaluated instant),
--                           `funding` the batch's funding rows; `since_by_symbol` (a MAP) starts
--                           each symbol's instants at its first new one and `since` is the earliest:
--                           every instant is evaluated once, in the batch that brings it;
--   alerts arbitrage_alerts the alerts print as they happen, go to store table arbitrage_alerts
--                           and to --signals-topic;
--   carry arbitrage_open    the opportunities open when a batch ends are kept with the kernel
--                           states (streak_id, streak_rows, streak_ended resume too), so one that
--                           spans batches keeps its number, opens in the batch of its first instant
--                           and closes in the batch that sees its end.
-- The COPYs to `store://` append the batch's rows: an opportunity is stored in the batch where it
-- closes (a history run also stores the one still open when the data ends, with still_open),
-- funding carry for the batch's funding rows. The result equals a history run over the same
-- ticks, alert for alert and opportunity for opportunity.
--
-- @live lookback tolerance
-- @live alerts arbitrage_alerts
-- @live carry arbitrage_open

SET VARIABLE since         = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP_NS;
SET VARIABLE until         = coalesce(getvariable('until'), '2262-01-01')::TIMESTAMP_NS;  -- TIMESTAMP_NS ends in 2262
SET VARIABLE symbols       = coalesce(getvariable('symbols'), '*');    -- '*' or BTC-USD,ETH-USD
SET VARIABLE exchanges     = coalesce(getvariable('exchanges'), '*');  -- '*' or coinbase,binance
SET VARIABLE tolerance     = coalesce(getvariable('tolerance'), '500 milliseconds')::INTERVAL;
SET VARIABLE fee_bps       = coalesce(getvariable('fee_bps'), 10)::DOUBLE;
SET VARIABLE fees          = coalesce(getvariable('fees'), '');          -- exchange=bps,...
SET VARIABLE threshold_bps = coalesce(getvariable('threshold_bps'), 0)::DOUBLE;
SET VARIABLE carry_fee_bps = coalesce(getvariable('carry_fee_bps'), 4 * getvariable('fee_bps'))::DOUBLE;
SET VARIABLE periods       = coalesce(getvariable('periods'), 21)::DOUBLE;   -- a week of 8-hour fundings
SET VARIABLE funding_hours = coalesce(getvariable('funding_hours'), 8)::DOUBLE;
SET VARIABLE spot_exchange = getvariable('spot_exchange');               -- NULL: the funding row's
SET VARIABLE spot_symbol   = getvariable('spot_symbol');                 -- NULL: the funding row's
-- Nanoseconds: TIMESTAMP_NS minus TIMESTAMP_NS rounds to microseconds in DuckDB.
SET VARIABLE tolerance_ns  = round(epoch(getvariable('tolerance')) * 1e9)::BIGINT;
SET VARIABLE quotes_from   = getvariable('since') - getvariable('tolerance');

-- Quotes of the chosen symbols and exchanges, at any time.
CREATE OR REPLACE TEMP VIEW arb_market_quotes AS
SELECT exchange, symbol, ts, coalesce(seq, 0) AS seq, bid, ask
FROM ticks
WHERE bid IS NOT NULL AND ask IS NOT NULL
  AND (getvariable('symbols') = '*'
       OR list_contains(string_split(replace(getvariable('symbols'), ' ', ''), ','), symbol))
  AND (getvariable('exchanges') = '*'
       OR list_contains(string_split(replace(getvariable('exchanges'), ' ', ''), ','), exchange));

CREATE OR REPLACE TEMP VIEW arb_quotes AS
SELECT * FROM arb_market_quotes
WHERE ts >= getvariable('quotes_from') AND ts < getvariable('until');

-- Every exchange that quotes a symbol, also before the quotes the books read: one whose quotes went
-- stale still has a book, an empty one, which ends the runs it was part of. (Over history that only
-- adds empty books; live, it ends a run that spans batches when its exchange falls silent.)
CREATE OR REPLACE TEMP TABLE arb_venues AS
SELECT DISTINCT symbol, exchange FROM arb_market_quotes;

CREATE OR REPLACE TEMP TABLE arb_fees AS
WITH given AS (
    SELECT split_part(item, '=', 1) AS exchange, split_part(item, '=', 2)::DOUBLE AS fee_bps
    FROM (SELECT unnest(string_split(replace(getvariable('fees'), ' ', ''), ',')) AS item)
    WHERE item <> ''
)
SELECT v.exchange, coalesce(g.fee_bps, getvariable('fee_bps')) AS fee_bps
FROM (SELECT DISTINCT exchange FROM arb_venues) v LEFT JOIN given g USING (exchange);

-- Every exchange's book at every instant a quote of the symbol changed (from `since` on; live, from
-- the symbol's own first new instant, in nanoseconds).
CREATE OR REPLACE TEMP TABLE arb_books AS
WITH instants AS (
    SELECT DISTINCT symbol, ts FROM arb_quotes
    WHERE ts >= coalesce(getvariable('since_by_symbol')[symbol], getvariable('since'))
), grid AS (
    SELECT i.symbol, i.ts, v.exchange FROM instants i JOIN arb_venues v USING (symbol)
)
SELECT g.symbol, g.ts, g.exchange, q.ts AS quote_ts,
       -- the tolerance is applied after the join: inside ON, DuckDB plans a nested loop
       CASE WHEN epoch_ns(g.ts) - epoch_ns(q.ts) <= getvariable('tolerance_ns') THEN q.bid END AS bid,
       CASE WHEN epoch_ns(g.ts) - epoch_ns(q.ts) <= getvariable('tolerance_ns') THEN q.ask END AS ask
FROM grid g
ASOF LEFT JOIN arb_quotes q
  ON g.symbol = q.symbol AND g.exchange = q.exchange
 AND {'ts': g.ts, 'seq': 9223372036854775807} >= {'ts': q.ts, 'seq': q.seq};

-- Both directions of every pair, net of both legs' fees; then each direction's runs above threshold.
CREATE OR REPLACE TEMP TABLE arb_runs AS
WITH spreads AS (
    SELECT b.symbol, b.ts, b.exchange AS buy_on, s.exchange AS sell_on,
           b.ask AS buy_price, s.bid AS sell_price,
           1e4 * (s.bid - b.ask) / b.ask - fb.fee_bps - fs.fee_bps AS net_bps
    FROM arb_books b
    JOIN arb_books s ON s.symbol = b.symbol AND s.ts = b.ts AND s.exchange <> b.exchange
    JOIN arb_fees fb ON fb.exchange = b.exchange
    JOIN arb_fees fs ON fs.exchange = s.exchange
), runs AS (
    SELECT *,
           streak_id(coalesce(net_bps > getvariable('threshold_bps'), false)) OVER w    AS opportunity,
           streak_rows(coalesce(net_bps > getvariable('threshold_bps'), false)) OVER w  AS instant,
           streak_ended(coalesce(net_bps > getvariable('threshold_bps'), false)) OVER w AS ended
    FROM spreads
    WINDOW w AS (PARTITION BY symbol, buy_on, sell_on ORDER BY ts)
)
SELECT * FROM runs WHERE opportunity IS NOT NULL OR ended IS NOT NULL;

-- Opportunities still open when the previous micro-batch ended, carried over by live mode; a
-- history run starts with none.
CREATE TEMP TABLE IF NOT EXISTS arbitrage_open (
    symbol VARCHAR, buy_on VARCHAR, sell_on VARCHAR, opportunity BIGINT, start_ts TIMESTAMP_NS,
    instants BIGINT, peak_net_bps DOUBLE, peak_ts TIMESTAMP_NS, peak_buy_price DOUBLE, peak_sell_price DOUBLE);

-- The peak is the widest net spread, the earliest instant of equal ones.
CREATE OR REPLACE TEMP TABLE arb_opportunities AS
WITH open_rows AS (
    SELECT symbol, buy_on, sell_on, opportunity, ts AS start_ts, 1 AS instants,
           net_bps, ts AS peak_ts, buy_price, sell_price
    FROM arb_runs WHERE opportunity IS NOT NULL
    UNION ALL
    SELECT symbol, buy_on, sell_on, opportunity, start_ts, instants,
           peak_net_bps, peak_ts, peak_buy_price, peak_sell_price
    FROM arbitrage_open WHERE coalesce(getvariable('live'), false)
), runs AS (
    SELECT symbol, buy_on, sell_on, opportunity,
           min(start_ts) AS start_ts, sum(instants)::BIGINT AS instants, max(net_bps) AS peak_net_bps,
           first({'ts': peak_ts, 'buy': buy_price, 'sell': sell_price} ORDER BY net_bps DESC, peak_ts) AS peak
    FROM open_rows
    GROUP BY ALL
), ends AS (
    SELECT symbol, buy_on, sell_on, ended AS opportunity, ts AS end_ts
    FROM arb_runs WHERE ended IS NOT NULL
), data_end AS (
    SELECT symbol, max(ts) AS last_instant FROM arb_books GROUP BY ALL
)
SELECT o.symbol, o.buy_on || ' -> ' || o.sell_on AS direction, o.buy_on, o.sell_on, o.opportunity,
       o.start_ts, coalesce(e.end_ts, d.last_instant) AS end_ts,
       (epoch_ns(coalesce(e.end_ts, d.last_instant)) - epoch_ns(o.start_ts)) / 1e9 AS duration_seconds,
       o.peak_net_bps, o.peak.ts AS peak_ts, o.peak.buy AS peak_buy_price, o.peak.sell AS peak_sell_price,
       o.instants, e.end_ts IS NULL AS still_open
FROM runs o
LEFT JOIN ends e USING (symbol, buy_on, sell_on, opportunity)
LEFT JOIN data_end d USING (symbol)
ORDER BY symbol, start_ts, direction;

CREATE OR REPLACE TEMP TABLE arbitrage_open AS
SELECT symbol, buy_on, sell_on, opportunity, start_ts, instants, peak_net_bps, peak_ts, peak_buy_price,
       peak_sell_price
FROM arb_opportunities WHERE still_open;

-- Alerts as they would print live: an opportunity opening (its first instant) and closing.
CREATE OR REPLACE TEMP TABLE arbitrage_alerts AS
SELECT symbol, ts, CASE WHEN ended IS NOT NULL THEN 'ARB CLOSE' ELSE 'ARB OPEN' END AS signal,
       buy_on || ' -> ' || sell_on AS direction, coalesce(opportunity, ended) AS opportunity,
       net_bps, buy_price, sell_price
FROM arb_runs
WHERE instant = 1 OR ended IS NOT NULL
ORDER BY ts, symbol, direction;

-- Funding carry: every funding row with the spot mid at that time.
CREATE OR REPLACE TEMP TABLE arb_carry AS
WITH f AS (
    SELECT exchange, symbol, ts, mark_price, index_price, funding_rate, next_funding_ts,
           coalesce(getvariable('spot_exchange'), exchange) AS spot_exchange,
           coalesce(getvariable('spot_symbol'), symbol) AS spot_symbol
    FROM funding
    WHERE ts >= getvariable('since') AND ts < getvariable('until')
      AND (getvariable('symbols') = '*'
           OR list_contains(string_split(replace(getvariable('symbols'), ' ', ''), ','), symbol))
), spot AS (
    SELECT exchange, symbol, ts, coalesce(seq, 0) AS seq, coalesce(midprice(bid, ask), price) AS mid
    FROM ticks WHERE ts >= getvariable('quotes_from') AND ts < getvariable('until')
), joined AS (
    SELECT f.*, s.ts AS spot_ts,
           CASE WHEN epoch_ns(f.ts) - epoch_ns(s.ts) <= getvariable('tolerance_ns') THEN s.mid END AS spot
    FROM f ASOF LEFT JOIN spot s
      ON s.exchange = f.spot_exchange AND s.symbol = f.spot_symbol
     AND {'ts': f.ts, 'seq': 9223372036854775807} >= {'ts': s.ts, 'seq': s.seq}
)
SELECT exchange, symbol, ts, mark_price, index_price, funding_rate, next_funding_ts,
       spot_exchange, spot_symbol, spot_ts, spot,
       funding_apr(funding_rate, getvariable('funding_hours'))                                AS funding_apr,
       basis_bps(mark_price, spot)                                                            AS basis_bps,
       basis_annualized(mark_price, spot, ts, next_funding_ts)                                AS basis_annualized,
       cash_and_carry_edge_bps(mark_price, spot, funding_rate, getvariable('carry_fee_bps'),
                               getvariable('periods'))                                        AS edge_bps,
       edge_bps > 0                                                                           AS clears_fees
FROM joined
ORDER BY exchange, symbol, ts;

-- A micro-batch is not the end of the data: live, an opportunity is stored when it closes.
COPY (SELECT * FROM arb_opportunities WHERE NOT (still_open AND coalesce(getvariable('live'), false)))
TO 'store://arbitrage_opportunities';
COPY arb_carry TO 'store://funding_carry';

-- Per symbol and direction: how often, how long and how wide. `share_of_time`: the part of the
-- observed span (first to last instant) spent inside an opportunity.
WITH span AS (
    SELECT symbol, (epoch_ns(max(ts)) - epoch_ns(min(ts))) / 1e9 AS seconds FROM arb_books GROUP BY ALL
), venues AS (
    SELECT DISTINCT symbol, exchange FROM arb_quotes
), directions AS (
    SELECT b.symbol, b.exchange || ' -> ' || s.exchange AS direction
    FROM venues b JOIN venues s ON s.symbol = b.symbol AND s.exchange <> b.exchange
)
SELECT d.symbol, d.direction, count(o.opportunity) AS opportunities,
       round(coalesce(sum(o.duration_seconds), 0), 3) AS seconds_open,
       round(100 * coalesce(sum(o.duration_seconds), 0) / nullif(any_value(sp.seconds), 0), 3) AS share_of_time_pct,
       round(avg(o.duration_seconds), 3) AS avg_duration_s,
       round(max(o.peak_net_bps), 2) AS best_net_bps,
       round(avg(o.peak_net_bps), 2) AS avg_peak_net_bps
FROM directions d
JOIN span sp USING (symbol)
LEFT JOIN arb_opportunities o USING (symbol, direction)
GROUP BY ALL
ORDER BY d.symbol, opportunities DESC, d.direction;

SELECT exchange, symbol, count(*) AS funding_rows, count(spot) AS with_spot,
       round(avg(funding_apr) * 100, 3) AS avg_funding_apr_pct,
       round(avg(basis_bps), 2) AS avg_basis_bps,
       round(max(edge_bps), 2) AS best_edge_bps,
       round(100 * avg(clears_fees::INTEGER), 1) AS clears_fees_pct
FROM arb_carry
GROUP BY ALL
ORDER BY exchange, symbol;
