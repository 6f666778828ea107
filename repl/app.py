"""`cryptodb repl`: open the database, start the catalog refresher, run the prompt or piped input.

Startup stays short because nothing heavy is imported on the way to the prompt: numba loads when
a kernel first runs, sqlglot when a statement first calls one, and the catalog snapshot (kernel
registry, DuckDB's functions, symbols) loads on the refresher's thread after the prompt is up.
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO

from cryptodb import __version__

from .catalog import load_snapshot
from .config import load_config
from .refresher import CatalogRefresher
from .session import ReplSession


def _ask_yes(question: str) -> bool:
    try:
        answer = input(question)
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("", "y", "yes")


def open_database(path, read_only: bool, ask: Callable[[str], bool] | None, err: TextIO):
    """The opened Database, or None after saying why not. A catalog locked by another process is
    reported with that process; when we asked to write, `ask` may accept read-only instead."""
    import cryptodb
    from cryptodb.errors import CryptodbError, DatabaseLockedError

    try:
        db = cryptodb.connect(path, read_only=read_only)
        db.con  # the catalog opens lazily: open it now, so that a lock shows here and not at the first query
        return db
    except DatabaseLockedError as e:
        err.write(f"cryptodb: {e}\n")
        if read_only:
            return None
        if ask is None:
            err.write("cryptodb: `cryptodb repl --read-only` opens it read-only\n")
            return None
        if not ask("Open it read-only instead? [Y/n] "):
            return None
    except CryptodbError as e:
        err.write(f"cryptodb: {e}\n")
        return None
    return open_database(path, True, None, err)


def main(path, read_only: bool = False, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    interactive = stdin.isatty() and stdout.isatty()
    config = load_config()
    for warning in config.warnings:
        stderr.write(f"cryptodb: config: {warning}\n")
    config.warnings.clear()
    db = open_database(path, read_only, _ask_yes if interactive else None, stderr)
    if db is None:
        return 1
    # Completion is for people: piped input gets no refresher. The refresher reads through a
    # connection of its own (DuckDB refuses a connection used by two threads at once) and starts
    # once the prompt is up, so that its work does not slow the way there.
    cursor = db.con.cursor() if interactive else None
    refresher = CatalogRefresher(lambda: load_snapshot(cursor, db)) if interactive else None
    pager = None
    if interactive:
        from .pager import pager_command

        pager = pager_command(config.pager)
    session = ReplSession(db, config, stdout, stderr, interactive=interactive, catalog=refresher, pager=pager)
    label = f"{db.path or 'memory'}{' (read-only)' if db.read_only else ''}"
    try:
        if config.startup_sql.strip():
            session.run_text(config.startup_sql)
        if interactive:
            from .prompt import run_interactive

            stdout.write(f"cryptodb {__version__} on {label}\n"
                         ".help lists the commands; SQL runs at a line ending with ; (Alt-Enter runs it as it is)\n")
            run_interactive(session, refresher, label)
        else:
            for line in stdin:
                session.feed_line(line.rstrip("\n"))
                if session.quit_requested:
                    break
            session.finish()
    finally:
        if refresher is not None:
            refresher.stop()
            cursor.close()
        db.close()
    return 1 if session.errors and not interactive else 0
