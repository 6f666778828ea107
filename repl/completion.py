"""The completion engine: text before the cursor (and after it) + a catalog snapshot -> suggestions.

Pure functions, no terminal and no database: `suggest` reads the half-typed statement with the
tolerant tokenizer, decides what the cursor is in (a special command, a string literal, a
qualified name, the FROM clause, an expression, the start of a statement) and ranks what the
snapshot holds for that place (`scope` works out what the FROM clauses bring into view).
`cryptodb.repl.completer` adapts it to prompt_toolkit.

What is suggested where:
- `.`/`\\` at the start of a line: special commands, then each command's argument (tables,
  kernels, modes, scripts, file paths; the query of `.plot` and `watch N` as SQL);
- after FROM/JOIN/INTO/...: CTEs, tables and views, table functions;
- `alias.`: the columns of that table;
- in expressions: columns of the tables in scope (those in FROM at the cursor's query level, or
  every table's when there is no FROM yet), kernels (signature and first doc sentence as meta),
  macros, DuckDB functions, keywords;
- in a string after `symbol =` or `symbol IN (`: stored symbols; in a string after FROM, TO,
  read_parquet( and friends, or one that looks like a path: file names;
- at the start of a statement: the statement keywords.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

from . import commands
from .catalog import CatalogSnapshot
from .keywords import CLAUSE_KEYWORDS, KEYWORD_SET, STATEMENT_KEYWORDS
from .scope import QueryScope, unquote
from .sqltext import (
    COMMENT,
    IDENT,
    NUMBER,
    OPEN_COMMENT,
    OPEN_IDENT,
    OPEN_STRING,
    STRING,
    WORD,
    Token,
    last_statement,
    significant,
    tokenize,
)

# After these, a table (or view, CTE, table function) comes next.
_RELATION_WORDS = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "DESCRIBE", "SUMMARIZE", "TRUNCATE", "VIEW"})
# After these only another keyword makes sense (GROUP BY, CREATE TABLE, INSERT INTO ...).
_KEYWORDS_FOLLOW = frozenset({"CREATE", "DROP", "ALTER", "GROUP", "ORDER", "PARTITION", "INSERT", "DELETE", "OR",
                              "REPLACE", "TEMP", "TEMPORARY", "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS",
                              "ASOF", "NATURAL", "POSITIONAL", "UNION", "EXCEPT", "INTERSECT", "IF"})
# A string after these (or after `(` of one of the file functions) is a file path.
_PATH_WORDS = frozenset({"FROM", "JOIN", "TO", "ATTACH", "IMPORT", "EXPORT", "LOAD", "INSTALL"})
_FILE_FUNCTIONS = ("read_", "parquet_", "glob", "sniff_csv", "csv_", "json_")


@dataclass(frozen=True)
class Suggestion:
    text: str  # what replaces the word before the cursor
    start: int  # where the replaced word starts, relative to the cursor (<= 0)
    kind: str  # keyword, table, view, cte, column, kernel, function, symbol, path, command, value
    meta: str = ""  # shown beside it in the menu
    display: str = ""

    @property
    def shown(self) -> str:
        return self.display or self.text


def default_list_dir(folder: str) -> list[tuple[str, bool]]:
    """(name, is a folder) for the entries of `folder` ([] when it cannot be listed)."""
    try:
        with os.scandir(os.path.expanduser(folder)) as entries:
            return [(e.name, e.is_dir()) for e in entries]
    except OSError:
        return []


ListDir = Callable[[str], list[tuple[str, bool]]]


def suggest(before: str, catalog: CatalogSnapshot, after: str = "",
            list_dir: ListDir = default_list_dir) -> list[Suggestion]:
    """What to offer at the cursor, best first. `before`/`after`: the input's text on each side."""
    statement, _ = last_statement(before)
    head = statement.lstrip()
    if head[:1] in (".", "\\") or (commands.is_special(head) and len(head.split(None, 1)) > 1):
        return _command_suggestions(head, catalog, list_dir)
    return _sql_suggestions(statement, _rest_of_statement(after), catalog, list_dir)


def _rest_of_statement(after: str) -> str:
    for t in tokenize(after):
        if t.is_punct(";"):
            return after[:t.start]
    return after


# -- ranking ------------------------------------------------------------------------------------------
def _match(prefix: str, name: str) -> int | None:
    """0: name starts with prefix, 1: contains it (prefixes of 2+ characters), None: neither."""
    p, n = prefix.lower(), name.lower()
    if n.startswith(p):
        return 0
    if len(p) >= 2 and p in n:
        return 1
    return None


def _ranked(prefix: str, groups: Iterable[list[Suggestion]]) -> list[Suggestion]:
    """Names starting with the prefix, by group order then name; names merely containing it only
    when nothing starts with it (so that Tab completes a unique prefix at once)."""
    scored, seen = [], set()
    for order, group in enumerate(groups):
        for s in group:
            rank = _match(prefix, s.text.strip("'\"/"))
            key = s.text.lower()
            if rank is None or key in seen:
                continue
            seen.add(key)
            scored.append(((rank, order, s.text.lower()), s))
    if any(key[0] == 0 for key, _ in scored):
        scored = [item for item in scored if item[0][0] == 0]
    return [s for _, s in sorted(scored, key=lambda item: item[0])]


def _keywords(prefix: str, words: Iterable[str]) -> list[Suggestion]:
    lower = bool(prefix) and prefix.islower()
    return [Suggestion(w.lower() if lower else w, -len(prefix), "keyword", "keyword") for w in words]


# -- special commands ----------------------------------------------------------------------------------
def _command_suggestions(text: str, catalog: CatalogSnapshot, list_dir: ListDir) -> list[Suggestion]:
    parts = text.split(None, 1)
    if len(parts) == 1 and not text[-1:].isspace():
        word = parts[0]
        options = [Suggestion(name, -len(word), "command", cmd.help)
                   for name, cmd in commands.SPECIAL_COMMANDS.items() if name[:1] in (".", "\\")]
        return [s for s in _ranked(word, [options]) if s.text.lower().startswith(word.lower())]
    cmd = commands.SPECIAL_COMMANDS.get(parts[0].lower())
    if cmd is None:
        return []
    arg = parts[1] if len(parts) > 1 else ""
    if cmd.argument == commands.SQL:
        return _sql_suggestions(arg, "", catalog, list_dir)
    if cmd.argument == commands.WATCH:  # watch SECONDS QUERY: SQL once the seconds are typed
        seconds = arg.split(None, 1)
        return _sql_suggestions(seconds[1], "", catalog, list_dir) if len(seconds) == 2 else []
    if cmd.argument == commands.PLOT:
        words = arg.split(None, 2)
        if words[:1] == ["--png"]:
            if len(words) == 1 or (len(words) == 2 and not arg[-1:].isspace()):
                return _path_suggestions(words[1] if len(words) == 2 else "", list_dir)
            return _sql_suggestions(words[2] if len(words) == 3 else "", "", catalog, list_dir)
        return _sql_suggestions(arg, "", catalog, list_dir)
    word = "" if not arg or arg[-1:].isspace() else arg.split()[-1]
    if cmd.argument == commands.PATH:
        return _path_suggestions(word, list_dir)
    if cmd.argument == commands.SCRIPT:
        if len(arg.split()) > 1 or (arg and arg[-1:].isspace()):
            return []  # name=value parameters: nothing to suggest
        scripts = [Suggestion(s, -len(word), "script", "shipped script") for s in catalog.scripts]
        return _ranked(word, [scripts]) + _path_suggestions(word, list_dir, only_suffix=".sql")
    if cmd.argument == commands.TABLE:
        return _ranked(word, [_relations(word, catalog)])
    if cmd.argument == commands.KERNEL:
        return _ranked(word, [_kernels(word, catalog)])
    if cmd.argument == commands.CHOICE:
        return _ranked(word, [[Suggestion(c, -len(word), "value") for c in cmd.choices]])
    if cmd.argument == commands.COMMAND:
        return _ranked(word, [[Suggestion(c.name, -len(word), "command", c.help) for c in commands.COMMAND_LIST]])
    return []


# -- file paths --------------------------------------------------------------------------------------------
def _path_suggestions(prefix: str, list_dir: ListDir, closing: str = "", only_suffix: str = "") -> list[Suggestion]:
    folder, slash, base = prefix.rpartition("/")
    listed = (folder + slash) if slash else "."
    found = []
    for name, is_dir in sorted(list_dir(listed or "/")):
        if not name.startswith(base) or (name.startswith(".") and not base.startswith(".")):
            continue
        if not is_dir and only_suffix and not name.endswith(only_suffix):
            continue
        text = name + ("/" if is_dir else closing)
        found.append(Suggestion(text, -len(base), "path", "folder" if is_dir else "file"))
    return found


# -- SQL -------------------------------------------------------------------------------------------------------
def _relations(prefix: str, catalog: CatalogSnapshot, ctes: Iterable[str] = ()) -> list[Suggestion]:
    out = [Suggestion(c, -len(prefix), "cte", "CTE") for c in ctes]
    for name, cols in catalog.tables.items():
        kind = "view" if name in catalog.views else "table"
        out.append(Suggestion(name, -len(prefix), kind, f"{kind}, {len(cols)} columns"))
    return out


def _table_functions(prefix: str, catalog: CatalogSnapshot) -> list[Suggestion]:
    return [Suggestion(f.name, -len(prefix), "function", f.signature) for f in catalog.functions.values()
            if f.kind in ("table", "table_macro")]


def _kernels(prefix: str, catalog: CatalogSnapshot) -> list[Suggestion]:
    return [Suggestion(k.name, -len(prefix), "kernel", f"{k.signature} · {k.summary}")
            for k in catalog.kernels.values()]


def _functions(prefix: str, catalog: CatalogSnapshot) -> list[Suggestion]:
    return [Suggestion(f.name, -len(prefix), "function", f"{f.kind}: {f.summary or f.signature}")
            for f in catalog.functions.values() if f.kind not in ("table", "table_macro")]


def _column_suggestions(prefix: str, columns: Iterable[tuple[str, str, str]]) -> list[Suggestion]:
    return [Suggestion(name, -len(prefix), "column", f"{type_} · {source}") for name, type_, source in columns]


def _sql_suggestions(statement: str, after: str, catalog: CatalogSnapshot, list_dir: ListDir) -> list[Suggestion]:
    tokens = tokenize(statement)
    last = tokens[-1] if tokens else None
    if last is not None:
        if last.kind == OPEN_STRING:
            return _string_suggestions(tokens, after, catalog, list_dir)
        if last.kind in (OPEN_COMMENT, OPEN_IDENT, STRING, IDENT, NUMBER) or \
                (last.kind == COMMENT and last.text.startswith("--")):
            return []  # inside a comment, right after a literal: nothing sensible to add
    prefix = last.text if last is not None and last.kind == WORD else ""
    before = significant(tokens[:-1] if prefix else tokens)
    scope = QueryScope(tokenize(statement + after), len(statement), catalog)

    if len(before) >= 2 and before[-1].is_punct(".") and before[-2].kind in (WORD, IDENT):
        qualifier = unquote(before[-2].text)
        return _ranked(prefix, [_column_suggestions(prefix, scope.columns(qualifier))])
    previous = before[-1] if before else None
    if previous is None:
        return _ranked(prefix, [_keywords(prefix, STATEMENT_KEYWORDS)])
    upper = previous.upper if previous.kind == WORD else ""
    if upper in _RELATION_WORDS or (previous.is_punct(",") and scope.clause_before(len(before) - 1) == "FROM"):
        if any(t.is_word("CREATE") for t in before[-5:]):
            return []  # naming something new
        return _ranked(prefix, [_relations(prefix, catalog, scope.ctes), _table_functions(prefix, catalog)])
    if upper == "AS":
        starts_create = before[0].is_word("CREATE")
        return _ranked(prefix, [_keywords(prefix, ("SELECT", "WITH", "FROM"))]) if starts_create else []
    if upper in _KEYWORDS_FOLLOW:
        return _ranked(prefix, [_keywords(prefix, CLAUSE_KEYWORDS)])
    if upper == "OVER":
        return _ranked(prefix, [[Suggestion(w, -len(prefix), "window", "named window") for w in scope.windows()]])
    if previous.kind in (WORD, IDENT) and upper not in KEYWORD_SET or previous.is_punct(")") or \
            previous.kind in (NUMBER, STRING):
        # After a name or a value: a clause or an operator word comes next (FROM, AS, WHERE, AND ...).
        return _ranked(prefix, [_keywords(prefix, CLAUSE_KEYWORDS)])
    groups = [_column_suggestions(prefix, scope.columns()), _kernels(prefix, catalog),
              _functions(prefix, catalog), _keywords(prefix, CLAUSE_KEYWORDS)]
    if _compares_symbol(before):
        groups.insert(0, [Suggestion(f"'{s}'", -len(prefix), "symbol", "symbol") for s in catalog.symbols])
    return _ranked(prefix, groups)


def _is_symbol_column(token: Token) -> bool:
    return token.kind in (WORD, IDENT) and unquote(token.text).lower() == "symbol"


def _compares_symbol(before: list[Token]) -> bool:
    """`symbol =` / `symbol <>` / `symbol IN (` (after earlier strings and commas) ends `before`."""
    if len(before) >= 2 and before[-1].is_punct("=", "<>", "!=") and _is_symbol_column(before[-2]):
        return True
    i = len(before) - 1
    while i >= 0 and (before[i].kind == STRING or before[i].is_punct(",")):
        i -= 1
    return i >= 2 and before[i].is_punct("(") and before[i - 1].is_word("IN") and _is_symbol_column(before[i - 2])


def _string_suggestions(tokens: list[Token], after: str, catalog: CatalogSnapshot,
                        list_dir: ListDir) -> list[Suggestion]:
    literal = tokens[-1].text
    content = literal[literal.index("'") + 1:] if "'" in literal[:2] else ""
    before = significant(tokens[:-1])
    closing = "" if after.startswith("'") else "'"
    if _compares_symbol(before):
        symbols = [Suggestion(s + closing, -len(content), "symbol", "symbol") for s in catalog.symbols]
        return _ranked(content, [symbols])
    previous = before[-1] if before else None
    call = _enclosing_call(before)
    file_context = (previous is not None and previous.kind == WORD and previous.upper in _PATH_WORDS) or \
        (call is not None and call.lower().startswith(_FILE_FUNCTIONS))
    if file_context or content.startswith(("/", "./", "../", "~")):
        return _path_suggestions(content, list_dir, closing=closing)
    return []


def _enclosing_call(before: list[Token]) -> str | None:
    """The function whose parentheses the end of `before` is inside: `read_parquet(['a', ` -> read_parquet."""
    depth = 0
    for k in range(len(before) - 1, -1, -1):
        t = before[k]
        if t.is_punct(")", "]"):
            depth += 1
        elif t.is_punct("(", "["):
            if depth == 0:
                if t.text == "(" and k > 0 and before[k - 1].kind == WORD:
                    return before[k - 1].text
                if t.text == "(":
                    return None
            else:
                depth -= 1
    return None
