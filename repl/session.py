"""The REPL without a terminal: text in, results and messages out.

The prompt (`cryptodb.repl.prompt`) hands each input it accepts to `run_input`; piped input,
`.read` files and the tests feed lines through `feed_line`, which applies the same Enter rule.
Results go to `out` (through `.once` and the pager); notes, timings and errors go to `err`, so
piping `cryptodb repl` into a file keeps only the results. No error ends the session.
"""

from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import pyarrow as pa

from . import commands
from .cancel import QueryCancelled, run_cancellable
from .config import ReplConfig
from .enter_rule import ready_to_run
from .error_report import describe_error

# Statement types after which tables, views and macros are known to be unchanged.
_KEEPS_CATALOG = {"SELECT", "EXPLAIN", "PRAGMA", "SET", "VARIABLE_SET", "CALL", "TRANSACTION", "PREPARE",
                  "EXECUTE", "RELATION", "MULTI"}
_MAX_READ_DEPTH = 16  # .read of a file that reads itself stops here


class ReplSession:
    def __init__(self, db, settings: ReplConfig | None = None, out: TextIO | None = None,
                 err: TextIO | None = None, interactive: bool = False, catalog=None, pager: str | None = None):
        self.db = db
        self.settings = settings or ReplConfig()
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.interactive = interactive  # a person at a terminal: pager, screen clearing
        self.catalog = catalog  # a CatalogRefresher, told after statements that change the catalog
        self.pager = pager  # pager command line, or None
        self.pending = ""  # lines fed that do not make a complete input yet
        self.once_path: Path | None = None  # .once: where the next result goes
        self.next_input = ""  # .edit: text for the next prompt
        self.last_sql = ""
        self.quit_requested = False
        self.errors = 0
        self.watch_runs: int | None = None  # watch: stop after this many runs (None: until Ctrl-C)
        self._read_depth = 0

    # -- input ----------------------------------------------------------------------------------
    def feed_line(self, line: str) -> None:
        """One line, as typed: run the pending input once the Enter rule says it is complete."""
        self.pending = f"{self.pending}\n{line}" if self.pending else line
        if ready_to_run(self.pending):
            text, self.pending = self.pending, ""
            self.run_input(text)

    def finish(self) -> None:
        """End of input: run what is left, even without its semicolon."""
        text, self.pending = self.pending, ""
        if text.strip():
            self.run_input(text)

    def run_text(self, text: str) -> None:
        """Run a text line by line (.read files, startup SQL, piped input)."""
        if self._read_depth >= _MAX_READ_DEPTH:
            raise commands.UsageError(f".read nested more than {_MAX_READ_DEPTH} deep: does a file read itself?")
        self._read_depth += 1
        saved, self.pending = self.pending, ""
        try:
            for line in text.splitlines():
                if self.quit_requested:
                    return
                self.feed_line(line)
            self.finish()
        finally:
            self.pending = saved
            self._read_depth -= 1

    def run_input(self, text: str) -> None:
        """One complete input: a special command, or SQL statements."""
        if not text.strip():
            return
        if commands.is_special(text):
            self.run_command(text)
        else:
            self.run_sql(text)

    def run_command(self, text: str) -> None:
        cmd, word, arg = commands.parse(text)
        if cmd is None:
            self.report_error(commands.UsageError(f"no command {word!r}: .help lists them"))
            return
        try:
            cmd.handler(self, arg)
        except QueryCancelled:
            self.note("cancelled")
        except Exception as e:  # noqa: BLE001 - the REPL reports every failure and carries on
            self.report_error(e, arg if cmd.argument in (commands.SQL, commands.PLOT) else None)

    # -- SQL --------------------------------------------------------------------------------------
    def run_sql(self, text: str, page: bool = True) -> bool:
        """Run each statement of `text`, showing its rows; stop at the first failure."""
        self.last_sql = text.strip()
        try:
            statements = self.db.con.extract_statements(text)
        except Exception as e:  # noqa: BLE001 - a parse error: DuckDB's message has the caret
            self.report_error(e, text)
            return False
        for stmt in statements:
            sql = stmt.query.strip()
            if not self.run_statements(lambda: self.db.execute(sql), sql=sql, page=page,
                                       changes_catalog=stmt.type.name not in _KEEPS_CATALOG):
                return False
        return True

    def run_statements(self, work: Callable[[], list], sql: str | None = None, page: bool = True,
                       changes_catalog: bool = False) -> bool:
        """Run `work` (-> StatementResults) so that Ctrl-C cancels it; show what it returns."""
        started = time.perf_counter()
        try:
            results = run_cancellable(work, self.db.con.interrupt)
        except QueryCancelled:
            self.note("cancelled")
            return False
        except Exception as e:  # noqa: BLE001
            self.report_error(e, sql)
            return False
        finally:
            if changes_catalog:
                self.refresh_catalog()
        elapsed = time.perf_counter() - started
        shown = [r for r in results if r.table is not None]
        for r in shown:
            self.show(r.table, r.types, page=page)
        if self.settings.timer:
            self.note(f"{'' if shown else 'ok, '}time {elapsed:.3f} s")
        elif not shown:
            self.note("ok")
        return True

    def query(self, sql: str) -> pa.Table:
        """The rows of the last statement of `sql` that returns rows (for .plot)."""
        self.last_sql = sql.strip()
        results = run_cancellable(lambda: self.db.execute(sql), self.db.con.interrupt)
        tables = [r.table for r in results if r.table is not None]
        if not tables:
            raise commands.UsageError("the statement returned no rows to use")
        return tables[-1]

    def refresh_catalog(self) -> None:
        if self.catalog is not None:
            self.catalog.refresh()

    # -- output -------------------------------------------------------------------------------------
    def show(self, table: pa.Table, types: list[str] | None = None, page: bool = True) -> None:
        """A result in the current mode, capped at max_rows for display (`.once` gets every row)."""
        from cryptodb.output import write

        mode, total = self.settings.mode, table.num_rows
        if self.once_path is None and self.settings.max_rows and total > self.settings.max_rows:
            table = table.slice(0, self.settings.max_rows)
        buffer = io.StringIO()
        write(table, buffer, mode, total, types)
        if mode != "table" and table.num_rows < total:
            self.note(f"({table.num_rows:,} of {total:,} rows shown: .maxrows 0 shows all, .once FILE writes all)")
        self.emit(buffer.getvalue(), page)

    def emit(self, text: str, page: bool = True) -> None:
        """Result text: to the `.once` file, through the pager when it would not fit, or out."""
        if self.once_path is not None:
            path, self.once_path = self.once_path, None
            path.write_text(text)
            self.note(f"wrote {path}")
            return
        if page and self.interactive and self.pager:
            from .pager import page as show_paged
            from .pager import too_big

            size = shutil.get_terminal_size()
            if too_big(text, size.columns, size.lines):
                show_paged(text, self.pager, self.out)
                return
        self.out.write(text)
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def report_error(self, exc: BaseException, sql: str | None = None) -> None:
        self.errors += 1
        message = describe_error(exc, sql)
        self.note(message if "Error" in message.split(":", 1)[0] else f"error: {message}")
