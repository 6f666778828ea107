-- backtest: a strategy written as SQL rules, executed against the quotes that follow each signal,
-- with fees; trades, an equity curve and metrics per market (exchange, symbol) and overall.
--
--   cryptodb run backtest [--param since=2026-01-01] [--param until=...] [--param symbols=BTC-USD,ETH-USD]
--                         [--param exchange=coinbase] [--param short=true] [--param fee_bps=5]
--                         [--param latency='100 milliseconds'] [--param interval='1 hour']
--                         [--param out=results/] [--param report=backtest.html]
--
-- Strategy (the seed's mean reversion; every threshold is a parameter): long when zscore(price,
-- z_window) < entry_z and rsi(price, rsi_window) < entry_rsi; flat again when zscore > exit_z or
-- RSI > exit_rsi. With short=true the mirror image: short when zscore > short_entry_z and RSI >
-- short_entry_rsi, covered when zscore < short_exit_z or RSI < short_exit_rsi. Holding between an
-- entry and an exit is state: the kernel hold_long_short (`cryptodb kernels hold_long_short`).
-- Edit the rules between `strategy:begin` and `strategy:end`; the execution below stays.
--
-- Execution: a position change decided at tick t (its price is known at t) fills at the first
-- quote strictly after t + latency, in (ts, seq) order: a buy at the ask, a sell at the bid; a
-- quote missing that side fills at the mid (or the last price) moved slippage_bps against us.
-- fee_bps is paid per side on the traded notional. Each trade buys or sells `notional` worth at
-- its entry price. A position still open at the end of the data is closed at the last quote.
-- No step reads a price after the time it acts at: indicators and positions are causal kernels,
-- fills look only forward from t + latency.
--
-- Outputs, in the store (Parquet, and a catalog view each) and, with out=DIR, as DIR/*.parquet:
--   backtest_trades   one row per round trip: entry/exit signal time, fill time and price, side,
--                     quantity, fees, PnL, return, holding time
--   backtest_equity   equity per market (and symbol 'ALL') at the end of every `interval`
--   backtest_metrics  per market and overall: returns, Sharpe, Sortino, Calmar, drawdown, trade stats
-- and an HTML report with a PNG beside it (report=PATH; default: beside the database file).
--
-- Metrics: total return = final equity / capital - 1, annualised over the calendar time from the
-- first to the last tick (crypto trades 24/7: 365 days a year). Sharpe and Sortino use the returns
-- of equity sampled at the end of each `interval` (default 1 hour), annualised by the number of
-- intervals in 365 days, risk-free rate 0; Sortino's downside deviation is sqrt(mean(min(r, 0)^2))
-- over all intervals. Max drawdown (a negative fraction) and its duration (from the peak before
-- the trough to the recovery of that peak, or to the end) use the same sampled equity; Calmar =
-- annualised return / |max drawdown|. Each market has `capital` of its own; 'ALL' adds them up.

SET VARIABLE since           = coalesce(getvariable('since'), '1970-01-01')::TIMESTAMP_NS;
SET VARIABLE until           = coalesce(getvariable('until'), '2262-01-01')::TIMESTAMP_NS;  -- TIMESTAMP_NS ends in 2262
SET VARIABLE exchange        = coalesce(getvariable('exchange'), '*');  -- '*': every exchange
SET VARIABLE symbols         = coalesce(getvariable('symbols'), '*');   -- '*' or BTC-USD,ETH-USD
SET VARIABLE z_window        = coalesce(getvariable('z_window'), 100)::INTEGER;
SET VARIABLE rsi_window      = coalesce(getvariable('rsi_window'), 14)::INTEGER;
SET VARIABLE entry_z         = coalesce(getvariable('entry_z'), -2)::DOUBLE;
SET VARIABLE entry_rsi       = coalesce(getvariable('entry_rsi'), 30)::DOUBLE;
SET VARIABLE exit_z          = coalesce(getvariable('exit_z'), 0)::DOUBLE;
SET VARIABLE exit_rsi        = coalesce(getvariable('exit_rsi'), 50)::DOUBLE;
SET VARIABLE short           = coalesce(getvariable('short'), false)::BOOLEAN;
SET VARIABLE short_entry_z   = coalesce(getvariable('short_entry_z'), -getvariable('entry_z'))::DOUBLE;
SET VARIABLE short_entry_rsi = coalesce(getvariable('short_entry_rsi'), 100 - getvariable('entry_rsi'))::DOUBLE;
SET VARIABLE short_exit_z    = coalesce(getvariable('short_exit_z'), -getvariable('exit_z'))::DOUBLE;
SET VARIABLE short_exit_rsi  = coalesce(getvariable('short_exit_rsi'), 100 - getvariable('exit_rsi'))::DOUBLE;
SET VARIABLE latency         = coalesce(getvariable('latency'), '50 milliseconds')::INTERVAL;
SET VARIABLE slippage_bps    = coalesce(getvariable('slippage_bps'), 2)::DOUBLE;
SET VARIABLE fee_bps         = coalesce(getvariable('fee_bps'), 5)::DOUBLE;
SET VARIABLE notional        = coalesce(getvariable('notional'), 10000)::DOUBLE;
SET VARIABLE capital         = coalesce(getvariable('capital'), 100000)::DOUBLE;
SET VARIABLE interval        = coalesce(getvariable('interval'), '1 hour')::INTERVAL;
-- Nanoseconds: TIMESTAMP_NS + INTERVAL rounds to microseconds in DuckDB, so times are offset as integers.
SET VARIABLE latency_ns      = round(epoch(getvariable('latency')) * 1e9)::BIGINT;
SET VARIABLE periods_per_year = 365 * 86400 / epoch(getvariable('interval'));

CREATE OR REPLACE TEMP VIEW bt_ticks AS
SELECT exchange, symbol, ts, coalesce(seq, 0) AS seq, price, bid, ask,
       -- what a quote without the side a fill needs is valued at (a one-sided quote: that side)
       coalesce(midprice(bid, ask), price, bid, ask) AS mid
FROM ticks
WHERE ts >= getvariable('since') AND ts < getvariable('until')
  AND (getvariable('exchange') = '*' OR exchange = getvariable('exchange'))
  AND (getvariable('symbols') = '*'
       OR list_contains(string_split(replace(getvariable('symbols'), ' ', ''), ','), symbol));

-- 1. Signals and positions per tick; only the ticks where the wanted position changes leave here.
CREATE OR REPLACE TEMP TABLE bt_orders AS
WITH indicators AS (
    SELECT exchange, symbol, ts, seq,
           zscore(coalesce(price, mid), getvariable('z_window')) OVER w AS z,
           rsi(coalesce(price, mid), getvariable('rsi_window')) OVER w  AS rsi
    FROM bt_ticks
    WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts, seq)
),
-- strategy:begin
rules AS (
    SELECT exchange, symbol, ts, seq,
        coalesce(z < getvariable('entry_z') AND rsi < getvariable('entry_rsi'), false)    AS long_entry,
        coalesce(z > getvariable('exit_z') OR rsi > getvariable('exit_rsi'), false)       AS long_exit,
        coalesce(getvariable('short') AND z > getvariable('short_entry_z')
                 AND rsi > getvariable('short_entry_rsi'), false)                          AS short_entry,
        coalesce(z < getvariable('short_exit_z') OR rsi < getvariable('short_exit_rsi'), false) AS short_exit
    FROM indicators
),
-- strategy:end
positions AS (
    SELECT exchange, symbol, ts, seq,
           hold_long_short(long_entry, long_exit, short_entry, short_exit) OVER w AS target,
           prev(target) OVER w                                                    AS before
    FROM rules
    WINDOW w AS (PARTITION BY exchange, symbol ORDER BY ts, seq)
)
SELECT exchange, symbol, ts AS signal_ts, seq AS signal_seq,
       coalesce(before, 0)::INTEGER AS before, target AS after
FROM positions
WHERE target <> coalesce(before, 0);

-- 2. Fills: the first quote strictly after signal + latency, ordered by (ts, seq). A struct key
-- makes DuckDB's ASOF JOIN exact on ties in ts. An order with no later quote never fills (so
-- neither does any after it: fills keep the orders' sequence).
CREATE OR REPLACE TEMP TABLE bt_fills AS
SELECT o.*, q.ts AS fill_ts,
       CASE WHEN o.after > o.before
            THEN coalesce(q.ask, q.mid * (1 + getvariable('slippage_bps') / 1e4))
            ELSE coalesce(q.bid, q.mid * (1 - getvariable('slippage_bps') / 1e4)) END AS fill_price,
       -- trade number: entries so far in this market (an order that opens a position opens trade n)
       count(*) FILTER (WHERE o.after <> 0) OVER (PARTITION BY o.exchange, o.symbol
                                                 ORDER BY o.signal_ts, o.signal_seq) AS entries
FROM bt_orders o
ASOF JOIN bt_ticks q
  ON o.exchange = q.exchange AND o.symbol = q.symbol
 AND {'ts': make_timestamp_ns(epoch_ns(o.signal_ts) + getvariable('latency_ns')), 'seq': 9223372036854775807}
     < {'ts': q.ts, 'seq': q.seq};

-- Marks: each market's last quote in every interval (what equity is valued at), and its last tick.
CREATE OR REPLACE TEMP TABLE bt_marks AS
SELECT exchange, symbol, time_bucket(getvariable('interval'), ts) AS bucket, min(ts) AS first_ts,
       arg_max({'ts': ts, 'bid': bid, 'ask': ask, 'mid': mid}, {'ts': ts, 'seq': seq}) AS quote
FROM bt_ticks
GROUP BY ALL;

-- The backtest's calendar span, from the first to the last tick of any market.
CREATE OR REPLACE TEMP TABLE bt_span AS
SELECT min(first_ts) AS first_ts, max(quote.ts) AS last_ts,
       (max(epoch_ns(quote.ts)) - min(epoch_ns(first_ts))) / 1e9 AS elapsed_seconds,
       min(bucket) AS first_bucket, max(bucket) AS last_bucket,
       count(DISTINCT (exchange, symbol)) AS markets
FROM bt_marks;

-- 3. Round trips: an entry fill and the fill that closes it (or the market's last quote).
CREATE OR REPLACE TEMP TABLE bt_trades AS
WITH entries AS (
    SELECT exchange, symbol, entries AS trade, after AS side,
           signal_ts AS entry_signal_ts, fill_ts AS entry_ts, fill_price AS entry_price
    FROM bt_fills WHERE after <> 0
), exits AS (
    SELECT exchange, symbol, entries - (after <> 0)::INTEGER AS trade,
           signal_ts AS exit_signal_ts, fill_ts AS exit_ts, fill_price AS exit_price
    FROM bt_fills WHERE before <> 0
), final_quote AS (
    SELECT exchange, symbol, arg_max(quote, bucket) AS q FROM bt_marks GROUP BY ALL
), legs AS (
    SELECT e.*, x.exit_signal_ts, x.exit_ts, x.exit_price, f.q
    FROM entries e
    LEFT JOIN exits x USING (exchange, symbol, trade)
    JOIN final_quote f USING (exchange, symbol)
), priced AS (
    SELECT exchange, symbol, trade, CASE side WHEN 1 THEN 'long' ELSE 'short' END AS direction, side,
           entry_signal_ts, entry_ts, entry_price,
           coalesce(exit_signal_ts, q.ts) AS exit_signal_ts,
           coalesce(exit_ts, q.ts) AS exit_ts,
           coalesce(exit_price, CASE WHEN side = 1
                                     THEN coalesce(q.bid, q.mid * (1 - getvariable('slippage_bps') / 1e4))
                                     ELSE coalesce(q.ask, q.mid * (1 + getvariable('slippage_bps') / 1e4)) END
                   ) AS exit_price,
           exit_ts IS NULL AS closed_at_end,
           getvariable('notional') / entry_price AS quantity
    FROM legs
)
SELECT exchange, symbol, trade, direction, side, entry_signal_ts, entry_ts, entry_price,
       exit_signal_ts, exit_ts, exit_price, closed_at_end, quantity,
       quantity * entry_price * getvariable('fee_bps') / 1e4 AS entry_fee,
       quantity * exit_price * getvariable('fee_bps') / 1e4 AS exit_fee,
       entry_fee + exit_fee AS fees,
       side * quantity * (exit_price - entry_price) - fees AS pnl,
       pnl / (quantity * entry_price) AS return,
       (epoch_ns(exit_ts) - epoch_ns(entry_ts)) / 1e9 AS holding_seconds  -- Parquet has no INTERVAL
FROM priced
ORDER BY exchange, symbol, trade;

-- 4. Equity at the end of every interval: capital + realised PnL (fees included) + the open
-- position marked at the mid of the interval's last quote.
CREATE OR REPLACE TEMP TABLE bt_equity AS
WITH events AS (  -- the account after each fill, in fill order (an exit before a same-time entry)
    SELECT exchange, symbol, ts, trade, leg, open_side, open_quantity, open_price,
           sum(cash) OVER (PARTITION BY exchange, symbol ORDER BY ts, trade, leg
                           ROWS UNBOUNDED PRECEDING) AS realized
    FROM (
        SELECT exchange, symbol, entry_ts AS ts, trade, 0 AS leg, -entry_fee AS cash,
               side AS open_side, quantity AS open_quantity, entry_price AS open_price FROM bt_trades
        UNION ALL
        SELECT exchange, symbol, exit_ts, trade, 1, side * quantity * (exit_price - entry_price) - exit_fee,
               0, 0, 0 FROM bt_trades)
    QUALIFY row_number() OVER (PARTITION BY exchange, symbol, ts ORDER BY trade DESC, leg DESC) = 1
), grid AS (
    SELECT m.exchange, m.symbol, b.bucket
    FROM (SELECT DISTINCT exchange, symbol FROM bt_marks) m,
         (SELECT unnest(generate_series(first_bucket, last_bucket, getvariable('interval'))) AS bucket
          FROM bt_span) b
), marked AS (
    SELECT g.exchange, g.symbol, (g.bucket + getvariable('interval'))::TIMESTAMP_NS AS ts,
           last_value(mk.quote.mid IGNORE NULLS) OVER (PARTITION BY g.exchange, g.symbol ORDER BY g.bucket) AS mark
    FROM grid g LEFT JOIN bt_marks mk USING (exchange, symbol, bucket)
), valued AS (
    SELECT m.exchange, m.symbol, m.ts, m.mark, coalesce(e.open_side, 0) AS position,
           getvariable('capital') + coalesce(e.realized, 0)
             + coalesce(e.open_side * e.open_quantity * (m.mark - e.open_price), 0) AS equity
    FROM marked m ASOF LEFT JOIN events e
      ON m.exchange = e.exchange AND m.symbol = e.symbol AND m.ts > e.ts
), with_start AS (  -- every curve starts from its capital at the start of the first interval
    SELECT exchange, symbol, ts, mark, position, equity FROM valued
    UNION ALL
    SELECT DISTINCT exchange, symbol, (SELECT first_bucket FROM bt_span)::TIMESTAMP_NS, NULL, 0,
           getvariable('capital') FROM bt_marks
), with_all AS (
    SELECT * FROM with_start
    UNION ALL
    SELECT 'ALL', 'ALL', ts, NULL, sum(abs(position))::INTEGER, sum(equity) FROM with_start GROUP BY ts
)
SELECT exchange, symbol, ts, mark, position, equity,
       equity / max(equity) OVER running - 1 AS drawdown
FROM with_all
WINDOW running AS (PARTITION BY exchange, symbol ORDER BY ts ROWS UNBOUNDED PRECEDING)
ORDER BY exchange = 'ALL', exchange, symbol, ts;

-- 5. Metrics per market and overall ('ALL').
CREATE OR REPLACE TEMP TABLE bt_metrics AS
WITH curve AS (
    SELECT *, equity / lag(equity) OVER series - 1 AS ret,
           -- the peak this point is measured from: the last time equity stood at its running maximum
           max(CASE WHEN drawdown = 0 THEN ts END) OVER (series ROWS UNBOUNDED PRECEDING) AS peak_ts
    FROM bt_equity
    WINDOW series AS (PARTITION BY exchange, symbol ORDER BY ts)
), trough AS (  -- the deepest point of each curve (the first, if several are as deep)
    SELECT exchange, symbol, arg_min(peak_ts, (drawdown, ts)) AS peak_ts,
           arg_min(ts, (drawdown, ts)) AS trough_ts, min(drawdown) AS max_drawdown
    FROM curve GROUP BY ALL
), recovery AS (
    SELECT t.exchange, t.symbol, t.max_drawdown,
           CASE WHEN t.max_drawdown < 0 THEN
               (epoch_ns(coalesce(min(c.ts) FILTER (WHERE c.ts > t.trough_ts AND c.drawdown = 0), max(c.ts)))
                - epoch_ns(t.peak_ts)) / 1e9
           ELSE 0 END AS max_drawdown_seconds
    FROM trough t JOIN curve c USING (exchange, symbol)
    GROUP BY t.exchange, t.symbol, t.max_drawdown, t.trough_ts, t.peak_ts
), returns AS (
    SELECT exchange, symbol,
           arg_max(equity, ts) AS final_equity,
           avg(ret) AS mean_ret, stddev_samp(ret) AS sd_ret,
           -- FILTER: least() ignores NULL, so the first point (no return) would count as a zero
           sqrt(avg(least(ret, 0) * least(ret, 0)) FILTER (WHERE ret IS NOT NULL)) AS downside_dev
    FROM curve GROUP BY ALL
), trade_stats AS (
    SELECT exchange, symbol, count(*) AS trades,
           count(*) FILTER (WHERE pnl > 0) / nullif(count(*), 0) AS win_rate,
           sum(pnl) FILTER (WHERE pnl > 0) AS gross_profit,
           -sum(pnl) FILTER (WHERE pnl < 0) AS gross_loss,
           avg(pnl) AS expectancy,
           sum(fees) AS fees,
           sum(quantity * (entry_price + exit_price)) AS traded_notional,
           sum(holding_seconds) AS seconds_in_market
    FROM bt_trades
    GROUP BY GROUPING SETS ((exchange, symbol), ())
), per_series AS (
    SELECT r.exchange, r.symbol,
           CASE WHEN r.exchange = 'ALL' THEN s.markets ELSE 1 END AS markets,
           r.final_equity, r.mean_ret, r.sd_ret, r.downside_dev, v.max_drawdown, v.max_drawdown_seconds,
           coalesce(t.trades, 0) AS trades, t.win_rate, t.gross_profit, t.gross_loss, t.expectancy, t.fees,
           t.traded_notional, t.seconds_in_market, s.elapsed_seconds
    FROM returns r
    JOIN recovery v USING (exchange, symbol)
    CROSS JOIN bt_span s
    LEFT JOIN trade_stats t
      ON (r.exchange = 'ALL' AND t.exchange IS NULL) OR (r.exchange = t.exchange AND r.symbol = t.symbol)
)
SELECT exchange, symbol,
       final_equity / (getvariable('capital') * markets) - 1 AS total_return,
       -- an account that lost everything (or more) has no compounding rate: -100 %
       CASE WHEN total_return <= -1 THEN -1
            ELSE pow(1 + total_return, 365 * 86400 / nullif(elapsed_seconds, 0)) - 1 END AS annualized_return,
       mean_ret / nullif(sd_ret, 0) * sqrt(getvariable('periods_per_year')) AS sharpe,
       mean_ret / nullif(downside_dev, 0) * sqrt(getvariable('periods_per_year')) AS sortino,
       annualized_return / nullif(abs(max_drawdown), 0) AS calmar,
       max_drawdown, max_drawdown_seconds,
       trades, win_rate,
       coalesce(gross_profit, 0) / nullif(gross_loss, 0) AS profit_factor,
       expectancy,
       coalesce(fees, 0) AS fees,
       coalesce(traded_notional, 0) / (getvariable('capital') * markets) AS turnover,
       coalesce(seconds_in_market, 0) / nullif(elapsed_seconds * markets, 0) AS exposure,
       final_equity
FROM per_series
ORDER BY exchange = 'ALL', exchange, symbol;

COPY bt_trades TO 'store://backtest_trades';
COPY bt_equity TO 'store://backtest_equity';
COPY bt_metrics TO 'store://backtest_metrics';

SELECT exchange, symbol, trades,
       round(100 * total_return, 3)      AS total_return_pct,
       round(100 * annualized_return, 2) AS annual_return_pct,
       round(sharpe, 2)                  AS sharpe,
       round(sortino, 2)                 AS sortino,
       round(calmar, 2)                  AS calmar,
       round(100 * max_drawdown, 3)      AS max_drawdown_pct,
       to_seconds(round(max_drawdown_seconds))::VARCHAR AS max_drawdown_duration,
       round(100 * win_rate, 1)          AS win_rate_pct,
       round(profit_factor, 2)           AS profit_factor,
       round(expectancy, 2)              AS expectancy,
       round(turnover, 1)                AS turnover,
       round(100 * exposure, 1)          AS exposure_pct
FROM bt_metrics;

-- The report (HTML + PNG) and, with out=DIR, the three tables as DIR/*.parquet; prints the path.
SELECT backtest_report('${report:-}', '${out:-}',
       format('fees {} bps per side, latency {}, slippage {} bps without a quote, notional {} per trade, '
              'capital {} per market, equity sampled every {}{}',
              getvariable('fee_bps'), getvariable('latency'), getvariable('slippage_bps'), getvariable('notional'),
              getvariable('capital'), getvariable('interval'),
              CASE WHEN getvariable('short') THEN ', long and short' ELSE ', long only' END)) AS report;
