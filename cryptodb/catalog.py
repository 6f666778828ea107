"""The catalog: a DuckDB file of views over the Parquet store, readable by any DuckDB client.

The catalog holds no tick data. Writers append Parquet files without opening it, so BI tools and
`cryptodb sql --read-only` can keep it open while ingest runs. It is written in a storage format
DuckDB 1.4 and later can read.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cryptodb.ingest.schema import TABLES
from cryptodb.store import ParquetStore
from cryptodb.udfs import rowwise

STORAGE_VERSION = "v1.4.0"
# Bump when the views or the shipped macros change; a read-write open then refreshes them.
# 2: the row-wise kernels of udfs.rowwise as SQL macros.
CATALOG_VERSION = 2


def data_dir_for(path: Path) -> Path:
    """`crypto.duckdb` keeps its Parquet files in `crypto.data/` beside it."""
    return path.with_suffix(".data") if path.suffix else path.parent / (path.name + ".data")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(store: ParquetStore, table: str) -> str:
    spec = TABLES[table]
    columns = ", ".join(spec.names)
    return (
        f"CREATE OR REPLACE VIEW {table} AS SELECT {columns}, date "
        f"FROM read_parquet({_quote(store.glob(table))}, hive_partitioning = true, "
        "hive_types = {'symbol': VARCHAR, 'date': DATE})"
    )


def derived_view_sql(store: ParquetStore, name: str, replace: bool = True) -> str:
    """The view over a derived table of the store (features, signals, backtest output ...)."""
    ident = '"' + name.replace('"', '""') + '"'
    create = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW IF NOT EXISTS"
    return f"{create} {ident} AS SELECT * FROM read_parquet({_quote(store.glob(name))}, hive_partitioning = false)"


def add_derived_views(con: duckdb.DuckDBPyConnection, store: ParquetStore) -> None:
    """A view for every derived table in the store that has none yet (written by live mode, which
    never opens the catalog, or by an older catalog)."""
    for name in store.tables():
        if name not in TABLES and name.isidentifier():
            con.execute(derived_view_sql(store, name, replace=False))


def install(con: duckdb.DuckDBPyConnection, store: ParquetStore) -> None:
    """Create or refresh everything cryptodb keeps in a catalog."""
    for table, spec in TABLES.items():
        con.execute(view_sql(store, table))
        con.execute(f"COMMENT ON VIEW {table} IS {_quote(spec.doc)}")
    # Plain SQL, stored in the file: any DuckDB client opening the catalog can call them.
    for statement in rowwise.install_sql():
        con.execute(statement)
    con.execute("CREATE TABLE IF NOT EXISTS cryptodb_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(
        "INSERT OR REPLACE INTO cryptodb_meta VALUES ('catalog_version', ?), ('data_dir', ?)",
        [str(CATALOG_VERSION), str(store.root)],
    )


def needs_install(con: duckdb.DuckDBPyConnection, store: ParquetStore) -> bool:
    try:
        meta = dict(con.execute("SELECT key, value FROM cryptodb_meta").fetchall())
    except duckdb.CatalogException:
        return True
    if meta.get("catalog_version") != str(CATALOG_VERSION) or meta.get("data_dir") != str(store.root):
        return True
    # A table added to TABLES later (dead_letters) gets its view without a version bump.
    views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    return not set(TABLES) <= views
