"""Views whose SELECT calls kernels.

DuckDB cannot store such a view (it does not know the kernels), so cryptodb keeps the definition
in the catalog table `cryptodb_views` and expands it as a CTE whenever a statement run through
cryptodb names it. For BI tools, which open the catalog with plain DuckDB, the view's rows are
also stored as Parquet and a DuckDB view of that name reads them; `refresh_views` recomputes them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from sqlglot import exp

from cryptodb.engine.gate import VIEWS_TABLE as TABLE
from cryptodb.errors import CryptodbError


def query_of(tree: exp.Expression) -> exp.Query | None:
    """The query inside a statement (SELECT itself, CREATE ... AS, INSERT ... SELECT, COPY (...))."""
    if isinstance(tree, exp.Query):
        return tree
    inner = tree.args.get("expression") if isinstance(tree, (exp.Create, exp.Insert)) else tree.args.get("this")
    if isinstance(inner, exp.Subquery):
        inner = inner.this
    return inner if isinstance(inner, exp.Query) else None


def expand(tree: exp.Expression, views: dict[str, str]) -> None:
    """Prepend the definitions of the kernel views the statement uses (dependencies first)."""
    from cryptodb.engine.dialect import parse

    query = query_of(tree)
    if query is None:
        return
    own = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    order: list[str] = []
    parsed: dict[str, exp.Query] = {}

    def visit(node: exp.Expression, seen: tuple[str, ...]) -> None:
        for table in node.find_all(exp.Table):
            name = table.name.lower()
            if table.args.get("db") or name not in views or name in own or name in order:
                continue
            if name in seen:
                raise ValueError(f"view {name} refers to itself")
            parsed[name] = parse(views[name])
            visit(parsed[name], (*seen, name))
            order.append(name)

    visit(query, ())
    if not order:
        return
    ctes = [exp.CTE(this=parsed[n], alias=exp.TableAlias(this=exp.to_identifier(n))) for n in order]
    existing = query.args.get("with_")
    if existing is not None:
        existing.set("expressions", ctes + list(existing.expressions))
    else:
        query.set("with_", exp.With(expressions=ctes))


def created_view(tree: exp.Expression) -> tuple[str, bool] | None:
    """(name, or_replace) when the statement is CREATE VIEW."""
    if isinstance(tree, exp.Create) and str(tree.args.get("kind") or "").upper() == "VIEW":
        return tree.this.name.lower(), bool(tree.args.get("replace"))
    return None


def dropped_view(tree: exp.Expression, views: dict[str, str]) -> str | None:
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind") or "").upper() == "VIEW":
        for table in tree.args.get("tables") or [tree.this]:
            if table is not None and table.name.lower() in views:
                return table.name.lower()
    return None


def save(con: duckdb.DuckDBPyConnection, name: str, select_sql: str, replace: bool) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR PRIMARY KEY, sql VARCHAR NOT NULL, "
                "refreshed TIMESTAMP)")
    exists = con.execute(f"SELECT count(*) FROM {TABLE} WHERE name = ?", [name]).fetchall()[0][0]
    if exists and not replace:
        raise CryptodbError(f"view {name} already exists (use CREATE OR REPLACE VIEW)")
    con.execute(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, NULL)", [name, select_sql])


def store_rows(con: duckdb.DuckDBPyConnection, name: str, relation, folder: Path) -> None:
    """Write the view's current rows under folder/name/ and point a plain DuckDB view at them."""
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    table = relation.to_arrow_table()
    final = target / f"{uuid.uuid4().hex}.parquet"
    staging = target / f".{final.name}.tmp"
    pq.write_table(table, staging, compression="zstd")
    os.replace(staging, final)
    glob = str(final).replace("'", "''")
    con.execute(f"CREATE OR REPLACE VIEW {exp.to_identifier(name).sql(dialect='duckdb')} AS "
                f"SELECT * FROM read_parquet('{glob}')")
    con.execute(f"UPDATE {TABLE} SET refreshed = now()::TIMESTAMP WHERE name = ?", [name])
    for old in target.glob("*.parquet"):
        if old != final:
            old.unlink()


def forget(con: duckdb.DuckDBPyConnection, name: str, folder: Path) -> None:
    con.execute(f"DELETE FROM {TABLE} WHERE name = ?", [name])
    shutil.rmtree(folder / name, ignore_errors=True)
