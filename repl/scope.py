"""What is in scope at the cursor: the tables, aliases, CTEs, subqueries and named windows of
the query the cursor is in, read from the whole statement (the FROM clause usually comes after
the cursor), with the output columns of CTEs and subqueries worked out from their select lists.
"""

from __future__ import annotations

from .catalog import CatalogSnapshot
from .keywords import KEYWORD_SET
from .sqltext import IDENT, WORD, Token, significant

# Clause keywords that end a FROM list or a select list.
_CLAUSES = frozenset({"SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "WINDOW", "QUALIFY",
                      "UNION", "EXCEPT", "INTERSECT", "ON", "USING", "JOIN", "SET", "VALUES", "RETURNING"})


def unquote(text: str) -> str:
    """The name inside a "quoted identifier" (other names as they are)."""
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


class QueryScope:
    """Tables, aliases, CTEs and windows of the query the cursor is in, read from the whole
    statement (the FROM clause usually comes after the cursor)."""

    def __init__(self, tokens: list[Token], cursor: int, catalog: CatalogSnapshot):
        self.catalog = catalog
        self.tokens = significant(tokens)
        self.cursor_index = sum(1 for t in self.tokens if t.start < cursor)
        self.level = self._query_level()
        self.ctes = self._ctes()
        self.sources = self.sources_of(self.level)

    # The tokens of the query the cursor is in: the innermost parenthesised group that holds a
    # SELECT of its own (a function call's parentheses do not count), or the whole statement.
    def _query_level(self) -> list[Token]:
        toks, last = self.tokens, self.cursor_index - 1
        depth = 0 if last < 0 else toks[last].depth + (1 if toks[last].is_punct("(") else 0)
        for k in range(last, -1, -1):  # the unclosed parentheses around the cursor, innermost first
            if depth == 0:
                break
            t = toks[k]
            if t.is_punct("(") and t.depth == depth - 1:
                depth -= 1
                group = self._group(k)
                if any(g.depth == t.depth + 1 and g.is_word("SELECT", "FROM") for g in group):
                    return group
        return toks

    def _group(self, opener: int) -> list[Token]:
        """Tokens inside the parentheses opened at `opener` (to the end if never closed)."""
        toks, depth = self.tokens, self.tokens[opener].depth
        end = opener + 1
        while end < len(toks) and not (toks[end].is_punct(")") and toks[end].depth == depth):
            end += 1
        return toks[opener + 1:end]

    def clause_before(self, index: int) -> str | None:
        """The clause keyword governing the significant token `index` of the cursor's text."""
        toks = self.tokens
        depth = toks[index].depth if index < len(toks) else 0
        for t in reversed(toks[:index]):
            if t.depth == depth and t.kind == WORD and t.upper in _CLAUSES:
                return t.upper
        return None

    def _ctes(self) -> dict[str, list[Token]]:
        """WITH name AS (body), ... at the top of the statement: name -> body tokens."""
        toks, ctes = self.tokens, {}
        i = next((k for k, t in enumerate(toks) if t.depth == 0 and t.is_word("WITH")), None)
        if i is None:
            return ctes
        i += 1
        while i < len(toks):
            if toks[i].is_word("RECURSIVE"):
                i += 1
            if i >= len(toks) or toks[i].kind not in (WORD, IDENT):
                break
            name = unquote(toks[i].text)
            i += 1
            if i < len(toks) and toks[i].is_punct("("):  # a column list: name(a, b) AS (...)
                i += len(self._group(i)) + 2
            while i < len(toks) and toks[i].is_word("AS", "NOT", "MATERIALIZED"):
                i += 1
            if i >= len(toks) or not toks[i].is_punct("("):
                break
            body = self._group(i)
            ctes[name] = body
            i += len(body) + 2
            if i < len(toks) and toks[i].is_punct(","):
                i += 1
                continue
            break
        return ctes

    def sources_of(self, level: list[Token]) -> list[tuple[str, str | None, list[Token] | None]]:
        """(name or alias, table name or None, subquery tokens or None) for each FROM/JOIN item."""
        if not level:
            return []
        base = min(t.depth for t in level)
        toks = level
        sources = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if not (t.depth == base and t.is_word("FROM", "JOIN")):
                i += 1
                continue
            i += 1
            while i < len(toks):
                item = toks[i]
                table, subquery = None, None
                if item.is_punct("("):
                    subquery, i = self._skip_group(toks, i, base)
                elif item.kind in (WORD, IDENT) and i + 1 < len(toks) and toks[i + 1].is_punct("("):
                    _, i = self._skip_group(toks, i + 1, base)  # a table function: columns unknown
                elif item.kind == IDENT or (item.kind == WORD and item.upper not in KEYWORD_SET):
                    table = unquote(item.text)
                    i += 1
                    while i + 1 < len(toks) and toks[i].is_punct(".") and toks[i + 1].kind in (WORD, IDENT):
                        table = unquote(toks[i + 1].text)  # schema.table: the table
                        i += 2
                else:
                    break
                alias = None
                if i < len(toks) and toks[i].is_word("AS"):
                    i += 1
                if i < len(toks) and toks[i].kind in (WORD, IDENT) and not (
                        toks[i].kind == WORD and toks[i].upper in KEYWORD_SET):
                    alias = unquote(toks[i].text)
                    i += 1
                sources.append((alias or table or "", table, subquery))
                if i < len(toks) and toks[i].is_punct(",") and toks[i].depth == base:
                    i += 1
                    continue
                break
        return sources

    @staticmethod
    def _skip_group(toks: list[Token], opener: int, base: int) -> tuple[list[Token], int]:
        """The tokens inside the parentheses at `opener`, and the index after the closing one."""
        end = opener + 1
        while end < len(toks) and toks[end].depth > base:
            end += 1
        return toks[opener + 1:end], end + 1

    def windows(self) -> list[str]:
        toks = self.tokens
        return [unquote(toks[k + 1].text) for k, t in enumerate(toks[:-2])
                if (t.is_word("WINDOW") or t.is_punct(",")) and toks[k + 2].is_word("AS")
                and toks[k + 1].kind in (WORD, IDENT)]

    # -- columns ----------------------------------------------------------------------------------------------
    def _columns_of_table(self, table: str, seen: frozenset[str]) -> list[tuple[str, str, str]]:
        if table in self.ctes and table not in seen:
            return [(c, t, table) for c, t in _select_list(self.ctes[table], self, seen | {table})]
        cols = self.catalog.columns_of(table)
        return [(c.name, c.type, table) for c in cols] if cols else []

    def columns_of_source(self, source, seen=frozenset()) -> list[tuple[str, str, str]]:
        name, table, subquery = source
        if subquery is not None:
            return [(c, t, name or "subquery") for c, t in _select_list(subquery, self, seen)]
        return self._columns_of_table(table, seen) if table else []

    def columns(self, qualifier: str | None = None) -> list[tuple[str, str, str]]:
        """(column, type, where from) in scope; every table's columns when nothing is in FROM."""
        if qualifier is not None:
            q = qualifier.lower()
            for source in self.sources:
                if source[0].lower() == q or (source[1] or "").lower() == q:
                    return self.columns_of_source(source)
            return self._columns_of_table(qualifier, frozenset())
        if self.sources:
            return [c for s in self.sources for c in self.columns_of_source(s)]
        return [(c.name, c.type, table) for table, cols in self.catalog.tables.items() for c in cols]


def _select_list(body: list[Token], scope: QueryScope, seen: frozenset[str]) -> list[tuple[str, str]]:
    """Output columns of a query's select list: aliases, plain column names, `*` expanded."""
    if not body:
        return []
    base = min(t.depth for t in body)
    start = next((k for k, t in enumerate(body) if t.depth == base and t.is_word("SELECT")), None)
    if start is None:
        return []
    items, current = [], []
    for t in body[start + 1:]:
        if t.depth == base and t.kind == WORD and t.upper in _CLAUSES:
            break
        if t.depth == base and t.is_punct(","):
            items.append(current)
            current = []
        else:
            current.append(t)
    items.append(current)
    inner_sources = scope.sources_of(body)
    out: list[tuple[str, str]] = []
    for item in items:
        item = [t for t in item if not t.is_word("DISTINCT", "ALL")]
        if not item:
            continue
        last = item[-1]
        if last.is_punct("*"):
            for source in inner_sources:
                out += [(c, t) for c, t, _ in scope.columns_of_source(source, seen)]
        elif last.kind in (WORD, IDENT) and (
                len(item) == 1 or item[-2].is_word("AS") or item[-2].is_punct(".", ")")
                or item[-2].kind == IDENT or (item[-2].kind == WORD and item[-2].upper not in KEYWORD_SET)):
            out.append((unquote(last.text), ""))
    return out
