"""cryptodb: an embedded time-series database for crypto market data on DuckDB.

    import cryptodb
    with cryptodb.connect("crypto.duckdb") as db:
        db.generate(ticks=100_000)
        db.sql("SELECT symbol, count(*) FROM ticks GROUP BY ALL").show()

Importing this package stays light: numba, prompt_toolkit, confluent_kafka and websockets load
only when a feature that needs them is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["connect", "kernels", "describe_kernel", "Database", "CryptodbError", "__version__"]


def connect(path=None, read_only: bool = False):
    """Open (creating if needed) a cryptodb database; path=None is in memory with a temporary store."""
    from cryptodb.database import Database

    return Database(path, read_only=read_only)


def kernels() -> list[dict]:
    """Every kernel callable from SQL: name, kind (window/row), category, signature, doc."""
    from cryptodb.udfs.listing import describe_all

    return describe_all()


def describe_kernel(name: str) -> str:
    """The full documentation of one kernel (KeyError if there is none of that name)."""
    from cryptodb.udfs.listing import describe

    return describe(name)


def __getattr__(name: str):
    if name == "Database":
        from cryptodb.database import Database

        return Database
    if name == "CryptodbError":
        from cryptodb.errors import CryptodbError

        return CryptodbError
    raise AttributeError(f"module 'cryptodb' has no attribute {name!r}")
