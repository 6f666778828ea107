"""Reading SQL text lexically: tokens, quotes, comments, parentheses, statement ends.

The completion engine and the Enter rule both need to know whether the cursor sits inside a
string or a comment, which statement it is in and how deep in parentheses. A full parser would
refuse the half-typed text they see, so this is a tolerant tokenizer: every input gives tokens,
and an unterminated string or comment is a token of its own kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Token kinds. OPEN_* are unterminated: they run to the end of the text.
SPACE, COMMENT, OPEN_COMMENT = "space", "comment", "open_comment"
STRING, OPEN_STRING = "string", "open_string"
IDENT, OPEN_IDENT = "ident", "open_ident"  # "quoted identifier"
NUMBER, WORD, PUNCT = "number", "word", "punct"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<open_comment>/\*.*\Z)
  | (?P<string>[eE]?'(?:[^']|'')*'(?!')|\$\$.*?\$\$)
  | (?P<open_string>[eE]?'(?:[^']|'')*\Z|\$\$.*\Z)
  | (?P<ident>"(?:[^"]|"")*"(?!"))
  | (?P<open_ident>"(?:[^"]|"")*\Z)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*\$?)
  | (?P<punct>::|<=|>=|<>|!=|:=|->|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)

SIGNIFICANT = frozenset({STRING, OPEN_STRING, IDENT, OPEN_IDENT, NUMBER, WORD, PUNCT})


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    depth: int  # parentheses open before this token

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        return self.text.upper()

    def is_word(self, *words: str) -> bool:
        return self.kind == WORD and (not words or self.text.upper() in words)

    def is_punct(self, *chars: str) -> bool:
        return self.kind == PUNCT and (not chars or self.text in chars)


def tokenize(text: str) -> list[Token]:
    tokens, depth = [], 0
    for m in _TOKEN.finditer(text):
        kind, value = m.lastgroup, m.group()
        if kind == PUNCT and value == ")":
            depth = max(depth - 1, 0)
        tokens.append(Token(kind, value, m.start(), depth))
        if kind == PUNCT and value == "(":
            depth += 1
    return tokens


def significant(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind in SIGNIFICANT]


def split_statements(text: str) -> list[str]:
    """The statements of a text, split at semicolons outside strings and comments (ends kept)."""
    parts, start, pending = [], 0, False
    for t in tokenize(text):
        if t.is_punct(";"):
            parts.append(text[start:t.end])
            start, pending = t.end, False
        elif t.kind in SIGNIFICANT:
            pending = True
    if pending:  # a last statement without its semicolon (a trailing comment alone is none)
        parts.append(text[start:])
    return parts


def last_statement(text: str) -> tuple[str, int]:
    """The statement the end of `text` is in, and where it starts in `text`."""
    start = 0
    for t in tokenize(text):
        if t.is_punct(";"):
            start = t.end
    return text[start:], start


def ends_statement(text: str) -> bool:
    """True when the text's last significant token is a `;` (strings and comments closed)."""
    tokens = tokenize(text)
    if any(t.kind in (OPEN_STRING, OPEN_IDENT, OPEN_COMMENT) for t in tokens[-1:]):
        return False
    sig = significant(tokens)
    return bool(sig) and sig[-1].is_punct(";")
