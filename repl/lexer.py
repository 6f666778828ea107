"""Syntax highlighting: Pygments' SQL lexer, taught the kernels and DuckDB's own keywords.

Kernel names become their own token type (`Name.Function.Kernel`) when they are called (the next
token is `(`), so a column that happens to share a kernel's name (`prev`, `var`) stays a name.
The names come from a callable, because the catalog snapshot that holds them is loaded after the
prompt appears and replaced after DDL.
"""

from __future__ import annotations

from typing import Callable

from pygments.lexers.sql import SqlLexer
from pygments.token import Keyword, Name, Punctuation, Text

from .keywords import CLAUSE_KEYWORDS

KERNEL = Name.Function.Kernel
COMMAND = Keyword.Pseudo
_TYPES = {"BIGINT", "BOOLEAN", "DATE", "DECIMAL", "DOUBLE", "INTEGER", "TIMESTAMP", "TIMESTAMP_NS", "VARCHAR"}
# Keywords Pygments' generic SQL lexer reads as names (OVER, QUALIFY, ASOF ...); types are left
# alone so that a column called `date` is not painted as a keyword.
_EXTRA_KEYWORDS = frozenset(k for k in CLAUSE_KEYWORDS if k not in _TYPES)


class KernelSqlLexer(SqlLexer):
    name = "cryptodb SQL"
    aliases: list[str] = []
    filenames: list[str] = []

    @staticmethod
    def kernel_names() -> frozenset[str]:
        return frozenset()

    def get_tokens_unprocessed(self, text: str):
        stripped = text.lstrip()
        if stripped[:1] in (".", "\\"):  # a special command: its name, then SQL or arguments
            lead = len(text) - len(stripped)
            word = stripped.split(None, 1)[0]
            if lead:
                yield 0, Text, text[:lead]
            yield lead, COMMAND, word
            rest_at = lead + len(word)
            for index, token, value in self._sql_tokens(text[rest_at:]):
                yield rest_at + index, token, value
            return
        yield from self._sql_tokens(text)

    def _sql_tokens(self, text: str):
        tokens = list(super().get_tokens_unprocessed(text))
        names = self.kernel_names()
        for i, (index, token, value) in enumerate(tokens):
            if token in Name:
                if value.lower() in names and _next_is_call(tokens, i):
                    token = KERNEL
                elif token is Name and value.upper() in _EXTRA_KEYWORDS:
                    token = Keyword
            yield index, token, value


def _next_is_call(tokens: list, i: int) -> bool:
    for _, token, value in tokens[i + 1:]:
        if value.strip():
            return token in Punctuation and value.startswith("(")
    return False


def lexer_class(kernel_names: Callable[[], frozenset[str]]) -> type[KernelSqlLexer]:
    """A lexer class reading kernel names from `kernel_names` (prompt_toolkit instantiates it)."""
    return type("SessionSqlLexer", (KernelSqlLexer,), {"kernel_names": staticmethod(kernel_names)})
