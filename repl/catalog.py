"""What the completer and the highlighter know about the database: one immutable snapshot.

The completion engine is a pure function of (text, snapshot), so tests build snapshots by hand;
`load_snapshot` fills one from a live database (on the refresher's thread, through a cursor of
its own) and `CatalogSnapshot()` is the empty one the REPL starts with before that load ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

log = logging.getLogger("cryptodb")

# Tables cryptodb keeps for itself in the catalog: not offered to users.
INTERNAL_PREFIX = "cryptodb_"
STORED_TABLES = ("ticks", "trades", "funding", "book")


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Routine:
    """Something callable from SQL. kind: window kernel, row kernel, scalar, aggregate, window,
    table, macro, table_macro."""

    name: str
    kind: str
    signature: str
    doc: str = ""

    @property
    def summary(self) -> str:
        """The doc's first sentence: what fits beside a name in a completion menu."""
        first = self.doc.strip().split("\n")[0]
        cut = first.find(". ")
        return first[:cut + 1] if cut > 0 else first


@dataclass(frozen=True)
class CatalogSnapshot:
    tables: Mapping[str, tuple[Column, ...]] = field(default_factory=dict)  # tables and views
    views: frozenset[str] = frozenset()
    kernels: Mapping[str, Routine] = field(default_factory=dict)  # window and row-wise kernels
    functions: Mapping[str, Routine] = field(default_factory=dict)  # DuckDB's, and other macros
    symbols: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    @cached_property
    def kernel_names(self) -> frozenset[str]:
        return frozenset(self.kernels)

    def columns_of(self, table: str) -> tuple[Column, ...] | None:
        found = self.tables.get(table)
        if found is None:
            found = next((cols for name, cols in self.tables.items() if name.lower() == table.lower()), None)
        return found


def kernel_routines() -> dict[str, Routine]:
    """Every kernel from the registry (no numba: the registry only describes them)."""
    from cryptodb.udfs.listing import describe_all

    return {r["name"]: Routine(r["name"], f"{r['kind']} kernel", r["signature"], r["doc"])
            for r in describe_all()}


def _relations(cursor) -> tuple[dict[str, tuple[Column, ...]], frozenset[str]]:
    rows = cursor.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE NOT internal AND database_name = current_database() AND schema_name = current_schema() "
        "ORDER BY table_name, column_index").fetchall()
    tables: dict[str, list[Column]] = {}
    for table, column, type_ in rows:
        if not table.startswith(INTERNAL_PREFIX):
            tables.setdefault(table, []).append(Column(column, type_))
    views = cursor.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database()"
    ).fetchall()
    return {name: tuple(cols) for name, cols in tables.items()}, frozenset(v for (v,) in views)


def _functions(cursor, kernels: Mapping[str, Routine]) -> dict[str, Routine]:
    rows = cursor.execute(
        "SELECT function_name, function_type, parameters, return_type, description FROM duckdb_functions() "
        "WHERE function_type IN ('scalar', 'aggregate', 'window', 'table', 'macro', 'table_macro') "
        "AND NOT starts_with(function_name, '__') ORDER BY function_name").fetchall()
    functions = {}
    for name, kind, params, returns, description in rows:
        if name in functions or name in kernels or not name[0].isalpha():
            continue  # the first overload speaks for all; a kernel's own entry wins
        signature = f"{name}({', '.join(params or [])})" + (f" -> {returns}" if returns else "")
        functions[name] = Routine(name, kind, signature, description or "")
    return functions


def _symbols(db) -> tuple[str, ...]:
    found: set[str] = set()
    for table in STORED_TABLES:
        try:
            found.update(db.symbols(table))
        except Exception:  # noqa: BLE001 - a table with no data folder yet has no symbols
            continue
    return tuple(sorted(found))


def load_snapshot(cursor, db) -> CatalogSnapshot:
    """Everything completion needs, read through `cursor` (a connection the caller owns)."""
    from cryptodb.scripts import shipped_scripts

    kernels = kernel_routines()
    tables, views = _relations(cursor)
    return CatalogSnapshot(tables=tables, views=views, kernels=kernels, functions=_functions(cursor, kernels),
                           symbols=_symbols(db), scripts=tuple(shipped_scripts()))
