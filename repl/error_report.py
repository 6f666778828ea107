"""Error messages with a caret under the place in the statement they are about.

DuckDB draws the caret itself for parse errors (`LINE 1: SELEC 1` and `^` below); those pass
through unchanged. Binder and catalog errors only name the culprit (`Referenced column "pric"
not found`), so the caret is put under that name's first use in the statement; sqlglot errors
carry a line and column.
"""

from __future__ import annotations

import re

from .sqltext import IDENT, WORD, tokenize

_NAMED = (
    re.compile(r'Referenced column "([^"]+)" not found'),
    re.compile(r'Referenced table "([^"]+)" not found'),
    re.compile(r"(?:Table|View|Function|Macro) with name \"?([^\s\"!]+)\"? does not exist"),
    re.compile(r'column "([^"]+)" (?:not found|does not exist)', re.IGNORECASE),
)


def caret_block(sql: str, position: int) -> str:
    """`LINE n: text` with a caret under `position`, in DuckDB's layout."""
    line_no = sql.count("\n", 0, position) + 1
    line_start = sql.rfind("\n", 0, position) + 1
    line_end = sql.find("\n", position)
    line = sql[line_start:line_end if line_end >= 0 else len(sql)]
    label = f"LINE {line_no}: "
    return f"{label}{line}\n{' ' * (len(label) + position - line_start)}^"


def _name_position(name: str, sql: str) -> int | None:
    wanted = name.lower()
    for t in tokenize(sql):
        text = t.text[1:-1].replace('""', '"') if t.kind == IDENT else t.text
        if t.kind in (WORD, IDENT) and text.lower() == wanted:
            return t.start
    return None


def error_position(exc: Exception, sql: str) -> int | None:
    """Offset in `sql` the error is about, when it can be told."""
    errors = getattr(exc, "errors", None)  # sqlglot.errors.ParseError: [{"line": 1, "col": 7, ...}]
    if errors and isinstance(errors[0], dict) and errors[0].get("line"):
        lines = sql.split("\n")
        line = min(errors[0]["line"], len(lines)) - 1
        return sum(len(s) + 1 for s in lines[:line]) + max(min(errors[0].get("col", 1), len(lines[line])) - 1, 0)
    message = str(exc)
    for pattern in _NAMED:
        m = pattern.search(message)
        if m:
            return _name_position(m.group(1), sql)
    return None


def describe_error(exc: BaseException, sql: str | None = None) -> str:
    message = str(exc).strip() or type(exc).__name__
    if sql and "\nLINE " not in message and isinstance(exc, Exception):
        position = error_position(exc, sql)
        if position is not None:
            message += "\n\n" + caret_block(sql, position)
    return message
