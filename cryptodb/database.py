"""`Database`: the one object users hold. The CLI and the REPL are thin layers over it."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from cryptodb import catalog
from cryptodb.errors import CryptodbError, is_lock_error, lock_error
from cryptodb.ingest.conform import ConformError, conform
from cryptodb.ingest.schema import TABLES
from cryptodb.scripts import check_param_name, fill_placeholders, find_script
from cryptodb.store import AppendResult, ParquetStore

READER_LOCK_WAIT_S = 3.0  # how long a read-only open waits out a writer's brief hold of the catalog
log = logging.getLogger("cryptodb")

# Statement types whose results a script shows; the rest change things and return a count.
_RESULT_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA", "CALL", "RELATION", "EXPORT", "MULTI"}  # MULTI: PIVOT


@dataclass
class StatementResult:
    """One statement of a script and, when it returns rows, those rows."""

    sql: str
    table: pa.Table | None
    types: list[str] | None = None  # DuckDB's names for the result's column types


def _vanished_store_file(exc: Exception, store: ParquetStore) -> bool:
    text = str(exc)
    return "No such file or directory" in text and str(store.root) in text


class Database:
    """A catalog file of views plus its Parquet data folder (or both temporary, for path=None).

    The DuckDB catalog is opened on first use, not on construction, so that a process that only
    appends data (import, generate, collectors) never holds the file lock readers need.
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False):
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None
        self._engine = None
        self._tmp: str | None = None
        if path is None or str(path) == ":memory:":
            self.path = None
            self._tmp = tempfile.mkdtemp(prefix="cryptodb-")
            self.store = ParquetStore(Path(self._tmp) / "data")
            self.store.init()
            return
        self.path = Path(path).expanduser().absolute()
        self.store = ParquetStore(catalog.data_dir_for(self.path))
        if read_only:
            if not self.path.exists():
                raise CryptodbError(f"no database at {self.path}: create it with `cryptodb init --db {path}`")
            return
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if created or not self.store.exists():
            self.store.init()
        if created:
            self.con  # write the catalog now, then let go of the lock
            self._release()

    # -- the DuckDB connection -------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._open()
        return self._con

    @property
    def engine(self):
        from cryptodb.engine import Engine

        con = self.con
        if self._engine is None or self._engine.con is not con:
            self._engine = Engine(con, self.store)
        return self._engine

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.path is None:
            con = duckdb.connect(":memory:")
            catalog.install(con, self.store)
            self._add_script_functions(con)
            return con
        waited = 0.0
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only,
                                     config={"storage_compatibility_version": catalog.STORAGE_VERSION})
                break
            except duckdb.Error as e:
                if not is_lock_error(e):
                    raise
                # A writer that never keeps the catalog open (live mode adds its views in a
                # moment, then lets go) is waited for; one that keeps it is named.
                if not self.read_only or waited >= READER_LOCK_WAIT_S:
                    raise lock_error(self.path, e, self.read_only) from None
                time.sleep(0.05)
                waited += 0.05
        if not self.read_only:
            if catalog.needs_install(con, self.store):
                catalog.install(con, self.store)
            catalog.add_derived_views(con, self.store)
        self._add_script_functions(con)
        return con

    def _add_script_functions(self, con: duckdb.DuckDBPyConnection) -> None:
        """Functions scripts call that live in Python, not in the catalog file:
        `backtest_report(path, out, settings)` writes the report of sql/backtest.sql."""
        from cryptodb import report

        report.register(con, self.store, self.path)

    def _release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def add_derived_views(self) -> bool:
        """Views in the catalog over the store's derived tables that have none, for a writer such
        as live mode that never holds the catalog open. False when readers hold the catalog: the
        views then appear at the next read-write open."""
        holding = self._con is not None
        try:
            catalog.add_derived_views(self.con, self.store)
        except CryptodbError:
            return False
        finally:
            if not holding and self.path is not None:
                self._release()
        return True

    # -- queries ----------------------------------------------------------------------------
    def sql(self, query: str, params=None):
        """Run one statement, kernels included; a query returns a DuckDB relation
        (.df(), .pl(), .to_arrow_table(), .fetchall(), .show()), other statements None."""
        return self.engine.run(query, params)

    def execute(self, script: str) -> list[StatementResult]:
        """Run every statement of an SQL text in order; return each with its rows, if any."""
        results = []
        for stmt in self.con.extract_statements(script):
            text = stmt.query.strip().rstrip(";").strip()
            shows_rows = stmt.type.name in _RESULT_STATEMENTS
            table, types = self._run(text, shows_rows)
            results.append(StatementResult(text, table, types))
        return results

    def _run(self, query: str, fetch: bool, attempts: int = 3) -> tuple[pa.Table | None, list[str] | None]:
        """Run a statement to the end; re-run a query whose files a compaction swapped out."""
        for attempt in range(attempts):
            try:
                rel = self.engine.run(query)
                if rel is None:
                    return None, None
                if not fetch:
                    rel.fetchall()
                    return None, None
                return rel.to_arrow_table(), [str(t) for t in rel.types]
            except duckdb.IOException as e:
                if attempt + 1 == attempts or not fetch or not _vanished_store_file(e, self.store):
                    raise
                log.debug("re-running a query whose files a compaction replaced: %s", e)
        raise AssertionError("unreachable")

    def refresh_views(self) -> list[str]:
        """Recompute the stored rows of every view that calls kernels; return their names."""
        from cryptodb.engine import refresh_views

        return refresh_views(self.engine)

    def set_params(self, **params) -> None:
        """Make each parameter available to SQL as getvariable('name')."""
        for name, value in params.items():
            self.con.execute(f"SET VARIABLE {check_param_name(name)} = ?", [value])

    def run_script(self, path_or_name: str | Path, **params) -> list[StatementResult]:
        """Run a `.sql` file, or a script shipped in sql/ by name, with `params` as variables."""
        where, text = find_script(path_or_name)
        self.set_params(**params)
        return self.execute(fill_placeholders(text, params, where))

    # -- data in ---------------------------------------------------------------------------
    def insert(self, table: str, data, exchange: str | None = None) -> AppendResult:
        """Append rows to a stored table (ticks, trades, funding, book); duplicates are dropped.

        `data` is a pyarrow Table, pandas or polars DataFrame with any subset of the table's
        columns: optional ones missing become NULL, missing required ones raise an error naming them.
        """
        if table not in TABLES:
            raise CryptodbError(f"no stored table {table!r}: one of {', '.join(TABLES)}")
        self._check_writable()
        try:
            rows = conform(data, TABLES[table], exchange=exchange)
        except ConformError as e:
            raise CryptodbError(str(e)) from None
        return self.store.append(table, rows)

    def insert_ticks(self, data, exchange: str | None = None) -> AppendResult:
        return self.insert("ticks", data, exchange)

    def insert_trades(self, data, exchange: str | None = None) -> AppendResult:
        return self.insert("trades", data, exchange)

    def insert_funding(self, data, exchange: str | None = None) -> AppendResult:
        return self.insert("funding", data, exchange)

    def _append_chunks(self, chunks) -> dict[str, AppendResult]:
        self._check_writable()
        results: dict[str, AppendResult] = {}
        for table, chunk in chunks:
            done = self.store.append(table, chunk)
            results.setdefault(table, AppendResult(table)).add(done)
        return results

    def import_file(self, path: str | Path, format: str = "auto", exchange: str | None = None,
                    mapping: dict[str, str] | None = None, table: str | None = None,
                    progress=None) -> dict[str, AppendResult]:
        """Import a file (see `cryptodb.ingest.files`); `progress(done_bytes, total_bytes)` if given."""
        from cryptodb.ingest.files import read_file

        try:
            return self._append_chunks(read_file(path, format=format, exchange=exchange,
                                                 mapping=mapping, table=table, progress=progress))
        except (ConformError, ValueError, FileNotFoundError) as e:
            raise CryptodbError(str(e)) from None

    def generate(self, symbols=14, ticks: int = 1_000_000, seed: int = 0,
                 start: str = "2026-01-01T00:00:00Z", exchange: str = "coinbase",
                 progress=None) -> dict[str, AppendResult]:
        """Append synthetic ticks and trades (see `cryptodb.ingest.generator`); seeded, deterministic.

        `exchange` may name several exchanges ("coinbase,binance,kraken" or a list): each then sees
        the same latent price per symbol with its own lag, spread and noise (for arbitrage work)."""
        from cryptodb.ingest.generator import generate, generate_exchanges

        venues = exchange.split(",") if isinstance(exchange, str) else list(exchange)
        if len(venues) > 1:
            chunks = generate_exchanges(symbols=symbols, ticks=ticks, seed=seed, start=start, exchanges=venues)
        else:
            chunks = generate(symbols=symbols, ticks=ticks, seed=seed, start=start, exchange=venues[0])

        def counted():
            done = 0
            for table, chunk in chunks:
                yield table, chunk
                if table == "ticks" and progress:
                    done += chunk.num_rows
                    progress(done, ticks)

        return self._append_chunks(counted())

    def _check_writable(self) -> None:
        if self.read_only:
            raise CryptodbError("this database was opened read-only: reopen it without --read-only to write")

    # -- facts -------------------------------------------------------------------------------
    def symbols(self, table: str = "ticks") -> list[str]:
        return self.store.symbols(table)

    def info(self) -> list[dict]:
        """Per table (feed tables and stored results): rows, symbols, files, bytes, time range."""
        return [self.store.table_stats(t) for t in self.store.tables()]

    def compact(self, table: str | None = None):
        """Merge small files per (symbol, date) partition; readers stay consistent throughout."""
        self._check_writable()
        try:
            return self.store.compact(table)
        except KeyError as e:
            raise CryptodbError(e.args[0]) from None

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        self._release()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or "memory"
        return f"<cryptodb.Database {where}{' read-only' if self.read_only else ''}>"

