"""Special commands: a registry of `.name` / `\\alias` commands, both families, as litecli and pgcli.

Each command is registered once with its aliases, usage, help and the kind of argument it takes
(which the completion engine reads to complete it). A handler gets the session and the rest of
the line; it prints through the session, so the same commands work at the prompt, in `.read`
files, in piped input and in tests.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptodb.errors import CryptodbError

from .config import MODES

# Argument kinds, for completion: what comes after the command name.
NONE, COMMAND, TABLE, KERNEL, PATH, SCRIPT, SQL, WATCH, PLOT, CHOICE = (
    "none", "command", "table", "kernel", "path", "script", "sql", "watch", "plot", "choice")


class UsageError(CryptodbError):
    """A special command was given the wrong arguments; the message shows its usage."""


@dataclass(frozen=True)
class SpecialCommand:
    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str
    argument: str
    choices: tuple[str, ...]
    handler: Callable

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


SPECIAL_COMMANDS: dict[str, SpecialCommand] = {}  # every name and alias -> its command
COMMAND_LIST: list[SpecialCommand] = []  # each command once, in registration order


def special(name: str, *aliases: str, usage: str | None = None, help: str, argument: str = NONE,
            choices: tuple[str, ...] = ()):
    def register(handler):
        cmd = SpecialCommand(name, aliases, usage or name, help, argument, choices, handler)
        for n in cmd.names:
            SPECIAL_COMMANDS[n.lower()] = cmd
        COMMAND_LIST.append(cmd)
        return handler

    return register


def is_special(text: str) -> bool:
    """Input that is a special command: it starts with `.` or `\\`, or with a bare command word
    (quit, exit, help, watch), none of which begins an SQL statement."""
    stripped = text.lstrip()
    if stripped[:1] in (".", "\\"):
        return True
    first = stripped.split(None, 1)[0].lower() if stripped else ""
    return first in SPECIAL_COMMANDS


def parse(text: str) -> tuple[SpecialCommand | None, str, str]:
    """(command or None if unknown, the word typed, the rest of the line)."""
    parts = text.strip().split(None, 1)
    word = parts[0] if parts else ""
    rest = parts[1].strip() if len(parts) > 1 else ""
    return SPECIAL_COMMANDS.get(word.lower()), word, rest


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _on_off(arg: str, current: bool, what: str) -> bool:
    if not arg:
        return not current
    if arg.lower() in ("on", "off"):
        return arg.lower() == "on"
    raise UsageError(f"{what} wants on or off, got {arg!r}")


# -- help and facts ---------------------------------------------------------------------------------
@special(".help", "\\?", "help", usage=".help [COMMAND]", help="list the commands, or show one", argument=COMMAND)
def cmd_help(session, arg: str) -> None:
    if arg:
        cmd = SPECIAL_COMMANDS.get(arg.lower()) or SPECIAL_COMMANDS.get("." + arg.lower())
        if cmd is None:
            raise UsageError(f"no command {arg!r}: .help lists them")
        aliases = f"  (also {', '.join(cmd.aliases)})" if cmd.aliases else ""
        session.emit(f"{cmd.usage}{aliases}\n  {cmd.help}\n")
        return
    width = max(len(c.usage) for c in COMMAND_LIST)
    lines = [f"  {c.usage.ljust(width)}  {c.help}" + (f" ({', '.join(c.aliases)})" if c.aliases else "")
             for c in COMMAND_LIST]
    lines += ["", "SQL runs when a line ends with ; (Alt-Enter runs it as it is; kernels work as in `cryptodb sql`).",
              "Tab completes, Ctrl-R searches history, Ctrl-C cancels a query, Ctrl-D exits."]
    session.emit("\n".join(lines) + "\n")


@special(".tables", "\\dt", usage=".tables", help="list tables and views")
def cmd_tables(session, arg: str) -> None:
    import pyarrow as pa

    from cryptodb.engine.gate import defined

    from .catalog import INTERNAL_PREFIX

    con = session.db.con
    rows = con.execute(
        "SELECT table_name, any_value(v.view_name IS NOT NULL), count(*) FROM duckdb_columns() c "
        "LEFT JOIN duckdb_views() v ON v.view_name = c.table_name AND v.database_name = c.database_name "
        "AND v.schema_name = c.schema_name "
        "WHERE NOT c.internal AND c.database_name = current_database() AND c.schema_name = current_schema() "
        "GROUP BY table_name ORDER BY table_name").fetchall()
    kernel_views = defined(con)
    rows = [r for r in rows if not r[0].startswith(INTERNAL_PREFIX)]
    kinds = ["kernel view" if name.lower() in kernel_views else "view" if is_view else "table"
             for name, is_view, _ in rows]
    session.show(pa.table({"name": [r[0] for r in rows], "kind": kinds, "columns": [r[2] for r in rows]}))


@special(".schema", "\\d", usage=".schema [TABLE]", help="the CREATE statements, or one table's columns",
         argument=TABLE)
def cmd_schema(session, arg: str) -> None:
    from cryptodb.engine.gate import defined

    from .catalog import INTERNAL_PREFIX

    con = session.db.con
    kernel_views = defined(con)
    if arg:
        name = arg.strip().rstrip(";").strip()
        quoted = name if '"' in name else ".".join(_quote(part) for part in name.split("."))
        unquoted = name.strip('"').split(".")[-1].strip('"')
        relation = con.sql(f"DESCRIBE {quoted}")
        session.show(relation.to_arrow_table(), [str(t) for t in relation.types])
        if unquoted.lower() in kernel_views:
            definition = kernel_views[unquoted.lower()]
            session.emit(f"-- kernel view, computed by cryptodb:\nCREATE VIEW {unquoted} AS {definition};\n")
        return
    rows = con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE NOT internal AND database_name = current_database() "
        "UNION ALL SELECT view_name, sql FROM duckdb_views() WHERE NOT internal "
        "AND database_name = current_database() ORDER BY 1").fetchall()
    statements = []
    for name, sql in rows:
        if name.startswith(INTERNAL_PREFIX):
            continue
        if name.lower() in kernel_views:
            sql = f"CREATE VIEW {name} AS {kernel_views[name.lower()]};  -- kernel view"
        statements.append(sql.strip())
    session.emit("\n".join(statements) + "\n" if statements else "(no tables)\n")


@special(".kernels", usage=".kernels [NAME]", help="list the kernels, or show one in full", argument=KERNEL)
def cmd_kernels(session, arg: str) -> None:
    import pyarrow as pa

    import cryptodb

    if arg:
        try:
            session.emit(cryptodb.describe_kernel(arg.strip()) + "\n")
        except KeyError:
            raise UsageError(f"no kernel {arg.strip()!r}: .kernels lists them") from None
        return
    rows = cryptodb.kernels()
    session.show(pa.table({key: [r[key] for r in rows] for key in ("name", "kind", "category", "signature")}))


@special(".symbols", usage=".symbols [TABLE]", help="symbols stored in a table (ticks by default), with row counts",
         argument=CHOICE, choices=("ticks", "trades", "funding", "book"))
def cmd_symbols(session, arg: str) -> None:
    import pyarrow as pa

    table = arg.strip() or "ticks"
    try:
        stats = session.db.store.symbol_stats(table)
    except (KeyError, OSError):
        raise UsageError(f"no stored table {table!r}: one of ticks, trades, funding, book") from None
    session.show(pa.table({"symbol": [s["symbol"] for s in stats], "rows": [s["rows"] for s in stats],
                           "first_ts": pa.array([s["first_ts"] for s in stats], pa.timestamp("ns")),
                           "last_ts": pa.array([s["last_ts"] for s in stats], pa.timestamp("ns"))}))


# -- settings -------------------------------------------------------------------------------------------
@special(".timer", usage=".timer [on|off]", help="show how long each statement took", argument=CHOICE,
         choices=("on", "off"))
def cmd_timer(session, arg: str) -> None:
    session.settings.timer = _on_off(arg, session.settings.timer, ".timer")
    session.note(f"timer {'on' if session.settings.timer else 'off'}")


@special(".mode", usage=".mode [" + "|".join(MODES) + "]", help="how results are shown", argument=CHOICE,
         choices=MODES)
def cmd_mode(session, arg: str) -> None:
    if not arg:
        session.note(f"mode {session.settings.mode}")
        return
    if arg not in MODES:
        raise UsageError(f".mode is one of {', '.join(MODES)}, not {arg!r}")
    session.settings.mode = arg


@special(".maxrows", usage=".maxrows [N]", help="rows to display per result (0: all); the count is always shown")
def cmd_maxrows(session, arg: str) -> None:
    if arg:
        if not arg.isdigit():
            raise UsageError(f".maxrows wants a number of rows (0 for all), not {arg!r}")
        session.settings.max_rows = int(arg)
    session.note(f"maxrows {session.settings.max_rows or 'all'}")


# -- files and scripts ----------------------------------------------------------------------------------
@special(".once", usage=".once FILE", help="write the next result to FILE, every row, in the current mode",
         argument=PATH)
def cmd_once(session, arg: str) -> None:
    if not arg:
        raise UsageError("usage: .once FILE")
    session.once_path = Path(arg).expanduser()


@special(".read", "\\i", usage=".read FILE", help="run the SQL and commands of a file", argument=PATH)
def cmd_read(session, arg: str) -> None:
    if not arg:
        raise UsageError("usage: .read FILE")
    path = Path(arg).expanduser()
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    session.run_text(text)


@special(".run", usage=".run SCRIPT [name=value ...]",
         help="run a script (sql/NAME.sql or a .sql path) with parameters", argument=SCRIPT)
def cmd_run(session, arg: str) -> None:
    from cryptodb.scripts import parse_params

    words = shlex.split(arg)
    if not words:
        raise UsageError("usage: .run SCRIPT [name=value ...]")
    params = parse_params(words[1:])
    session.run_statements(lambda: session.db.run_script(words[0], **params), changes_catalog=True)


@special(".edit", "\\e", usage=".edit [FILE]", argument=PATH,
         help="edit the last query (or FILE) in $EDITOR, then review it at the prompt")
def cmd_edit(session, arg: str) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    if arg:
        path, temporary = Path(arg).expanduser(), False
    else:
        fd, name = tempfile.mkstemp(prefix="cryptodb-", suffix=".sql")
        with os.fdopen(fd, "w") as f:
            f.write(session.last_sql)
        path, temporary = Path(name), True
    try:
        status = subprocess.call([*shlex.split(editor), str(path)])
        if status != 0:
            raise UsageError(f"{editor} exited with status {status}: nothing changed")
        session.next_input = path.read_text().strip() if path.exists() else ""
    finally:
        if temporary:
            path.unlink(missing_ok=True)


# -- charts and live views ----------------------------------------------------------------------------
@special(".plot", usage=".plot [--png FILE] QUERY",
         help="line chart of a query's numeric columns over its time column, in the terminal or a PNG",
         argument=PLOT)
def cmd_plot(session, arg: str) -> None:
    from .plot import plot_command

    plot_command(session, arg)


_WATCH = re.compile(r"^(\d+(?:\.\d+)?)\s+(.+)$", re.DOTALL)


@special(".watch", "\\watch", "watch", usage="watch SECONDS QUERY",
         help="run a query every SECONDS seconds until Ctrl-C (live tables)", argument=WATCH)
def cmd_watch(session, arg: str) -> None:
    m = _WATCH.match(arg)
    if not m or float(m.group(1)) <= 0:
        raise UsageError("usage: watch SECONDS QUERY (seconds > 0)")
    seconds, query = float(m.group(1)), m.group(2)
    runs = 0
    try:
        while session.watch_runs is None or runs < session.watch_runs:
            if session.interactive:
                session.out.write("\x1b[H\x1b[2J")  # clear the screen: each run replaces the last
            session.note(f"every {seconds:g} s: {query.strip()}   ({time.strftime('%H:%M:%S')}, Ctrl-C stops)")
            if not session.run_sql(query, page=False):
                break
            runs += 1
            if session.watch_runs is None or runs < session.watch_runs:
                time.sleep(seconds)
    except KeyboardInterrupt:
        session.note("watch stopped")


@special(".quit", ".exit", "\\q", "quit", "exit", usage=".quit", help="leave (Ctrl-D does too)")
def cmd_quit(session, arg: str) -> None:
    session.quit_requested = True
