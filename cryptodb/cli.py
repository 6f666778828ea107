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
    p.add_argument("--exchange", default="coinbase")


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
