"""DuckDB's SQL as sqlglot reads it, except that kernel names parse as plain function calls.

sqlglot knows `stddev` and `var` as one-argument aggregates and would reject `stddev(x, 20)`;
kernels take their own arguments, so their names must not be parsed as built-ins.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.parsers.duckdb import DuckDBParser


@lru_cache(maxsize=1)
def dialect():
    from cryptodb.udfs import registry

    shadowed = {name.upper() for name in registry.names()}

    class KernelParser(DuckDBParser):
        FUNCTIONS = {k: v for k, v in DuckDBParser.FUNCTIONS.items() if k not in shadowed}

    class KernelDuckDB(DuckDB):
        parser_class = KernelParser

    return KernelDuckDB


def parse(sql: str):
    """One statement (a trailing `;` and comments after it, as DuckDB splits scripts, are fine)."""
    from sqlglot import exp

    statements = [t for t in sqlglot.parse(sql, dialect=dialect())
                  if t is not None and not isinstance(t, exp.Semicolon)]  # comment-only remainders
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def to_sql(tree) -> str:
    return tree.sql(dialect=dialect())
