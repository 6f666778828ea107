"""A mode script as live mode runs it, once per micro-batch.

The script is the SQL `cryptodb run` runs over history; live mode reads a few things in it
differently:

- `COPY (query) TO 'store://name'`, which over history replaces store table `name`, appends the
  batch's rows to it (written and committed with the kernel states and offsets);
- the temp tables `features` and `signals` it leaves are appended to the store tables of those
  names, and `signals` rows are alerts;
- lines `-- @live VERB ARGUMENT` (comments to anything else) say what more the runner does:
    `-- @live alerts T`    temp table T holds alerts (`symbol`, `ts`, `signal`, ...): printed as
                           they happen, appended to store table T, produced to --signals-topic;
    `-- @live carry T`     temp table T is kept with the kernel states at every commit and is
                           there again when the next batch (or a restart) runs the script;
    `-- @live lookback P`  the script evaluates instants over the books of several exchanges,
                           quotes staying valid for its parameter P: `ticks` also holds the stored
                           quotes those books need, and `since`/`since_by_symbol` say where each
                           symbol's new instants start (cryptodb.live.books);
- the variable `live` is true (`coalesce(getvariable('live'), false)` tells the two runs apart).

Every batch sees `ticks` (the batch's new ticks, plus the lookback quotes) and `funding` (the
batch's funding rows, or none) with the columns of the store's views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from cryptodb.errors import CryptodbError
from cryptodb.scripts import check_param_name, fill_placeholders, find_script

DEFAULT_STORED = ("features", "signals")  # what sql/live.sql leaves, without directives
DEFAULT_ALERTS = ("signals",)
RUNNER_VARIABLES = ("live", "since", "since_by_symbol")  # set by the runner for lookback scripts
_DIRECTIVE = re.compile(r"^[ \t]*--[ \t]*@live\b(.*)$", re.MULTILINE)
_COPY_TO_STORE = re.compile(r"^\s*COPY\s+(?P<source>.+?)\s+TO\s+'store://(?P<name>[^']*)'\s*(?:\([^)]*\))?\s*;?\s*$",
                            re.IGNORECASE | re.DOTALL)
_COPY_TABLE = "live_copy_{}"  # the temp table a COPY to the store fills in live mode


@dataclass
class LiveOutputs:
    stored: dict[str, pa.Table] = field(default_factory=dict)  # store table -> rows to append
    alerts: dict[str, pa.Table] = field(default_factory=dict)  # alert table -> rows (also stored)
    carried: dict[str, pa.Table] = field(default_factory=dict)  # temp table -> rows to keep


@dataclass
class LiveScript:
    where: str
    statements: list[str]
    stored: tuple[str, ...]  # temp tables appended to the store table of the same name
    copies: dict[str, str]  # store table -> the temp table its COPY fills
    alerts: tuple[str, ...]
    carried: tuple[str, ...]
    lookback: str | None  # the parameter that bounds how old a quote may be
    tolerance_ns: int | None = None  # its value
    # Per statement: (table, query) when it creates a temp table that is only read afterwards.
    held: list[tuple[str, str] | None] = field(default_factory=list)
    # Per statement: it gives a variable its default and nothing else sets that variable, so after
    # the first batch running it again changes nothing (each costs DuckDB ~0.4 ms a batch).
    once: list[bool] = field(default_factory=list)
    _holding: dict[str, pa.Table] = field(default_factory=dict)
    _ran: bool = False

    # -- one batch ----------------------------------------------------------------------
    def run(self, engine, con: duckdb.DuckDBPyConnection) -> LiveOutputs:
        for name in self._holding:
            con.unregister(name)
        self._holding = {}
        held_names = {h[0] for h in self.held if h is not None}
        for name in (*self.stored, *self.copies.values()):
            if name not in held_names:  # a held table is never a DuckDB table (see _held_statements)
                con.execute(f"DROP TABLE IF EXISTS {name}")  # never append what an earlier batch left
        once = self.once or [False] * len(self.statements)
        for statement, held, skip in zip(self.statements, self.held or [None] * len(self.statements), once):
            if skip and self._ran:
                continue
            if held is not None:
                # The rows stay in Arrow, seen by later statements as a view: copying them into a
                # DuckDB table and reading them back cost 95 ms a batch of 50,000 features.
                name, query = held
                self._holding[name] = engine.run(query).to_arrow_table()
                con.register(name, self._holding[name])
                continue
            result = engine.run(statement)
            if result is not None and hasattr(result, "fetchall"):
                result.fetchall()  # a SELECT in the script: run it to the end
        self._ran = True
        present = set()
        if self.carried or set(self.stored) - set(self._holding):
            present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
        out = LiveOutputs()

        def rows_of(name: str) -> pa.Table:
            held = self._holding.get(name)
            return held if held is not None else con.sql(f"SELECT * FROM {name}").to_arrow_table()

        for name in self.stored:
            if name in present or name in self._holding:
                out.stored[name] = rows_of(name)
        for name, table in self.copies.items():
            out.stored[name] = rows_of(table)
        out.alerts = {name: out.stored[name] for name in self.alerts if name in out.stored}
        out.carried = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table()
                       for name in self.carried if name in present}
        return out

    def restore(self, con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> None:
        """Give a carried table back as the committed state left it (at a start)."""
        con.register("live_carried_rows", rows)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM live_carried_rows")
        finally:
            con.unregister("live_carried_rows")


def load_live_script(script: str, params: dict, con: duckdb.DuckDBPyConnection) -> LiveScript:
    """Read `script`, set its parameters (and `live`) as variables on `con`, and turn it into the
    statements live mode runs."""
    where, text = find_script(script)
    stored, alerts, carried, lookback = list(DEFAULT_STORED), list(DEFAULT_ALERTS), [], None
    for m in _DIRECTIVE.finditer(text):
        verb, argument = _directive(where, m.group(0).strip(), m.group(1).split())
        if verb == "alerts":
            alerts.append(argument)
            stored.append(argument)
        elif verb == "carry":
            carried.append(argument)
        else:
            lookback = argument
    if lookback is not None:
        given = sorted(set(params) & set(RUNNER_VARIABLES))
        if given:
            raise CryptodbError(f"{where}: live mode sets {', '.join(given)} per batch itself: "
                                f"drop --param {given[0]}")
    for name, value in {**params, "live": True}.items():
        con.execute(f"SET VARIABLE {check_param_name(name)} = ?", [value])
    text = fill_placeholders(text, params, where)
    statements, copies = [], {}
    for s in con.extract_statements(text):
        sql = s.query.strip().rstrip(";").strip()
        m = _COPY_TO_STORE.match(_without_comments(sql))  # DuckDB leaves comments in a statement's text
        if m:
            name = m.group("name")
            if not name.isidentifier():
                raise CryptodbError(f"{where}: store table name {name!r} must be a plain identifier")
            copies[name] = _COPY_TABLE.format(name)
            sql = f"CREATE OR REPLACE TEMP TABLE {copies[name]} AS SELECT * FROM {m.group('source')}"
        statements.append(sql)
    twice = sorted(set(copies) & set(stored))
    if twice:
        raise CryptodbError(f"{where}: store table {twice[0]} is written by a COPY and left as a temp table")
    live = LiveScript(where, statements, tuple(dict.fromkeys(stored)), copies, tuple(dict.fromkeys(alerts)),
                      tuple(dict.fromkeys(carried)), lookback)
    live.held = _held_statements(statements, {*live.stored, *copies.values()} - set(live.carried))
    live.once = _default_settings(statements, RUNNER_VARIABLES if lookback is not None else ("live",))
    if lookback is not None:
        live.tolerance_ns = _tolerance_ns(live, con)
    return live


_CREATE_AS = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+TABLE\s+(\w+)\s+AS\s+(.+)$",
                        re.IGNORECASE | re.DOTALL)


def _held_statements(statements: list[str], outputs: set[str]) -> list[tuple[str, str] | None]:
    """Per statement, (table, query) if it creates one of the `outputs` temp tables from a query
    and no statement creates, changes or drops that table otherwise: such a table may be kept as
    the query's Arrow rows, registered under its name."""
    bare = [_without_comments(sql) for sql in statements]
    created = [_CREATE_AS.match(sql) for sql in bare]
    held: list[tuple[str, str] | None] = []
    for i, m in enumerate(created):
        name = m.group(1).lower() if m else None
        if name not in outputs or not re.match(r"\s*(SELECT|WITH|FROM|\()", m.group(2), re.IGNORECASE):
            held.append(None)
            continue
        changes = re.compile(
            r"\b(CREATE(\s+OR\s+REPLACE)?(\s+TEMP(ORARY)?)?\s+(TABLE|VIEW)(\s+IF\s+NOT\s+EXISTS)?"
            r"|INSERT(\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|ALTER\s+TABLE|DROP\s+(TABLE|VIEW)(\s+IF\s+EXISTS)?"
            rf"|TRUNCATE(\s+TABLE)?|COPY)\s+(\w+\.)?{name}\b", re.IGNORECASE)
        touched = any(changes.search(sql) for j, sql in enumerate(bare) if j != i)
        held.append(None if touched else (name, m.group(2)))
    return held


_LITERAL = r"(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|'[^']*'|TRUE|FALSE|NULL)"
_DEFAULT = re.compile(
    rf"^\s*SET\s+VARIABLE\s+(\w+)\s*=\s*(?:coalesce\s*\(\s*getvariable\s*\(\s*'(\w+)'\s*\)\s*,\s*{_LITERAL}\s*\)"
    rf"|{_LITERAL})\s*(?:::\s*\w+(?:\s*\(\s*\d+\s*(?:,\s*\d+\s*)?\))?)?\s*$", re.IGNORECASE)
_SETS = re.compile(r"\b(?:SET|RESET)\s+VARIABLE\s+(\w+)", re.IGNORECASE)


def _default_settings(statements: list[str], runner_sets: tuple[str, ...]) -> list[bool]:
    """Per statement, whether it is `SET VARIABLE v = coalesce(getvariable('v'), literal)::TYPE`
    (or `= literal`, the cast optional) for a v that no other statement sets or resets and the
    runner does not set (`runner_sets`): once v holds a value of TYPE, the statement gives v that
    same value again."""
    bare = [_without_comments(sql) for sql in statements]
    setters: dict[str, int] = {}
    for sql in bare:
        for name in _SETS.findall(sql):
            setters[name.lower()] = setters.get(name.lower(), 0) + 1
    once = []
    for sql in bare:
        m = _DEFAULT.match(sql)
        name = m.group(1).lower() if m else None
        once.append(m is not None and (m.group(2) is None or m.group(2).lower() == name)
                    and setters.get(name) == 1 and name not in runner_sets)
    return once


def _without_comments(sql: str) -> str:
    """`sql` without its -- and /* */ comments (quoted text kept as it is)."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = i + 1
            while end < n and not (sql[end] == c and sql[end + 1: end + 2] != c):
                end += 2 if sql[end] == c else 1  # a doubled quote stays inside
            out.append(sql[i: end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            i = sql.find("\n", i) if "\n" in sql[i:] else n
        elif sql.startswith("/*", i):
            i = sql.find("*/", i + 2) + 2 if "*/" in sql[i + 2:] else n
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _directive(where: str, line: str, words: list[str]) -> tuple[str, str]:
    verbs = ("alerts", "carry", "lookback")
    if len(words) != 2 or words[0] not in verbs:
        raise CryptodbError(f"{where}: `{line}`: write `-- @live VERB NAME` with VERB one of {', '.join(verbs)}")
    if not words[1].isidentifier():
        raise CryptodbError(f"{where}: `{line}`: {words[1]!r} is not a plain name")
    return words[0], words[1]


def _tolerance_ns(live: LiveScript, con: duckdb.DuckDBPyConnection) -> int:
    """The lookback parameter's value: the script's `SET VARIABLE` statements give parameters their
    defaults, so they run once here (a bad value fails now, not in the first batch)."""
    for sql in live.statements:
        m = re.match(r"\s*SET\s+VARIABLE\s+(\w+)", _without_comments(sql), re.IGNORECASE)
        if m:
            try:
                con.execute(sql)
            except duckdb.Error as e:
                first = str(e).splitlines()[0]
                raise CryptodbError(f"{live.where}: parameter {m.group(1)}: {first}") from None
    name = live.lookback
    try:
        value = con.sql(f"SELECT round(epoch(getvariable('{name}')::INTERVAL) * 1e9)::BIGINT").fetchall()[0][0]
    except duckdb.Error:
        value = None
    if value is None or value < 0:
        raise CryptodbError(f"{live.where}: `-- @live lookback {name}` needs {name}, a non-negative INTERVAL "
                            f"(--param {name}='500 milliseconds')")
    return int(value)
