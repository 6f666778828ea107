"""Where live mode keeps what it must not lose: kernel states (and the tables a script carries
from one batch to the next), consumed offsets, per-stream watermarks, and the files of a batch
that has not committed yet.

One interface, three backends:
- `duckdb` (default): a DuckDB file of its own beside the catalog (`crypto.live.duckdb` for
  `crypto.duckdb`). Never the catalog itself: BI tools and `cryptodb sql -r` hold the catalog
  open while live runs, and a DuckDB file has one writer or many readers, never both.
- `memory`: nothing persists; a restart starts over.
- `rocksdb`: a RocksDB directory (`crypto.live.rocksdb`), through the optional `rocksdict` package
  (`pip install 'cryptodb[rocksdb]'`).

A commit calls `begin(files)` before writing its output files and `commit(...)` after: the states
saved since the last commit, the next offsets and the watermarks become durable together, in one
transaction. Files listed by a `begin` that never reached its `commit` are the output of a
batch that will be consumed again; `checkpoint().pending` names them so they can be removed.

Watermarks are kept per stream, (exchange, symbol) (cryptodb.live.order). State written when they
were kept per symbol is read as watermarks of exchange None, "any exchange of the symbol": the
DuckDB backend migrates its table once, RocksDB reads its old keys beside the new ones.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptodb.errors import CryptodbError
from cryptodb.live.order import Watermarks

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset to consume
ANY_EXCHANGE = "*"  # how a watermark of exchange None (any exchange) is written down

BACKENDS = ("duckdb", "memory", "rocksdb")


@dataclass
class Checkpoint:
    offsets: Offsets = field(default_factory=dict)
    watermarks: Watermarks = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)


class StateBackend:
    """Encoded kernel states (engine.resume.KernelStates, behind the engine's ResidentStates):
    staged by save, durable at commit."""

    def __init__(self):
        self._staged: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()  # the engine runs independent kernels on threads

    # -- the engine's side (cryptodb.engine.resume.KernelStates) -----------------------------
    def load(self, call_id: str, partitions: list[str]) -> list[bytes | None]:
        """States as of the last commit, never ones staged since."""
        with self._lock:
            found = self._load_committed(call_id, partitions)
            return [found.get(p) for p in partitions]

    def save(self, call_id: str, states: dict[str, bytes]) -> None:
        with self._lock:
            for partition, blob in states.items():
                self._staged[(call_id, partition)] = blob

    # -- the runner's side ----------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        raise NotImplementedError

    def begin(self, files: list[str]) -> None:
        raise NotImplementedError

    def commit(self, offsets: Offsets, watermarks: Watermarks) -> None:
        """Staged states, offsets and watermarks, durable at once; pending files cleared."""
        raise NotImplementedError

    def rollback(self) -> None:
        self._staged.clear()

    def close(self) -> None:
        pass

    def _load_committed(self, call_id: str, partitions: list[str]) -> dict[str, bytes]:
        raise NotImplementedError


class MemoryBackend(StateBackend):
    def __init__(self):
        super().__init__()
        self._states: dict[tuple[str, str], bytes] = {}
        self._checkpoint = Checkpoint()

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(dict(self._checkpoint.offsets), dict(self._checkpoint.watermarks),
                          list(self._checkpoint.pending))

    def begin(self, files: list[str]) -> None:
        self._checkpoint.pending = list(files)

    def commit(self, offsets: Offsets, watermarks: Watermarks) -> None:
        self._states.update(self._staged)
        self._staged.clear()
        self._checkpoint.offsets.update(offsets)
        self._checkpoint.watermarks.update(watermarks)
        self._checkpoint.pending = []

    def _load_committed(self, call_id, partitions):
        return {p: self._states[(call_id, p)] for p in partitions if (call_id, p) in self._states}


class DuckDBBackend(StateBackend):
    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS kernel_state (call_id VARCHAR, part VARCHAR, state BLOB,
                                                 PRIMARY KEY (call_id, part));
        CREATE TABLE IF NOT EXISTS offsets (topic VARCHAR, part INTEGER, next_offset BIGINT,
                                            PRIMARY KEY (topic, part));
        CREATE TABLE IF NOT EXISTS watermarks (exchange VARCHAR, symbol VARCHAR, ts BIGINT, seq BIGINT,
                                               PRIMARY KEY (exchange, symbol));
        CREATE TABLE IF NOT EXISTS pending (path VARCHAR);
    """
    # Before watermarks were kept per exchange: `watermarks (symbol PRIMARY KEY, ts, seq)`.
    _MIGRATE_WATERMARKS = f"""
        BEGIN;
        ALTER TABLE watermarks RENAME TO watermarks_by_symbol;
        CREATE TABLE watermarks (exchange VARCHAR, symbol VARCHAR, ts BIGINT, seq BIGINT,
                                 PRIMARY KEY (exchange, symbol));
        INSERT INTO watermarks SELECT '{ANY_EXCHANGE}', symbol, ts, seq FROM watermarks_by_symbol;
        DROP TABLE watermarks_by_symbol;
        COMMIT;
    """

    def __init__(self, path: Path):
        super().__init__()
        import duckdb

        from cryptodb.errors import is_lock_error, lock_error

        self.path = path
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.Error as e:
            if is_lock_error(e):  # another `cryptodb live` on the same database
                raise lock_error(path, e, read_only=False) from None
            raise
        # A batch rewrites a few hundred states (~1 MB of WAL). At DuckDB's default 16 MB threshold
        # every ~20th commit checkpointed the whole state table: 0.8 s, where a commit takes
        # 15 ms (measured with 40K states of 2 KB). Checkpoints now come every few hundred batches,
        # and at close; a crash replays at most that much WAL on the next start.
        self.con.execute("SET checkpoint_threshold = '256MB'")
        columns = {c for (c,) in self.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'watermarks'").fetchall()}
        if columns and "exchange" not in columns:
            self.con.execute(self._MIGRATE_WATERMARKS)
        self.con.execute(self._SCHEMA)

    def checkpoint(self) -> Checkpoint:
        offsets = {(t, p): o for t, p, o in self.con.sql("SELECT topic, part, next_offset FROM offsets").fetchall()}
        marks = {(_exchange_of(e), s): (t, q)
                 for e, s, t, q in self.con.sql("SELECT exchange, symbol, ts, seq FROM watermarks").fetchall()}
        pending = [p for (p,) in self.con.sql("SELECT path FROM pending").fetchall()]
        return Checkpoint(offsets, marks, pending)

    def begin(self, files: list[str]) -> None:
        self.con.execute("BEGIN")
        self.con.execute("DELETE FROM pending")
        if files:
            _insert(self.con, "pending", {"path": files})
        self.con.execute("COMMIT")

    def commit(self, offsets: Offsets, watermarks: Watermarks) -> None:
        import pyarrow as pa

        con = self.con
        con.execute("BEGIN")
        try:
            # Bulk inserts from Arrow: executemany runs one statement per row (a batch of 1,000
            # symbols has ~30,000 states and 1,000 watermarks: seconds a commit that way).
            if self._staged:
                keys = list(self._staged)
                _insert(con, "kernel_state", replace=True, columns={
                    "call_id": [c for c, _ in keys], "part": [p for _, p in keys],
                    "state": pa.array(list(self._staged.values()), pa.binary())})
            if offsets:
                _insert(con, "offsets", replace=True, columns={
                    "topic": [t for t, _ in offsets], "part": pa.array([p for _, p in offsets], pa.int32()),
                    "next_offset": pa.array(list(offsets.values()), pa.int64())})
            if watermarks:
                _insert(con, "watermarks", replace=True, columns={
                    "exchange": [e or ANY_EXCHANGE for e, _ in watermarks], "symbol": [s for _, s in watermarks],
                    "ts": pa.array([t for t, _ in watermarks.values()], pa.int64()),
                    "seq": pa.array([q for _, q in watermarks.values()], pa.int64())})
            con.execute("DELETE FROM pending")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self._staged.clear()

    def _load_committed(self, call_id, partitions):
        # Live mode keeps states in memory (engine.resume.ResidentStates) and asks only for the
        # partitions a call meets for the first time since the process started.
        rows = self.con.execute("SELECT part, state FROM kernel_state WHERE call_id = ? AND part IN "
                                "(SELECT unnest(?::VARCHAR[]))", [call_id, partitions]).fetchall()
        return {p: bytes(b) for p, b in rows}

    def close(self) -> None:
        self.con.close()


def _insert(con, table: str, columns: dict, replace: bool = False) -> None:
    """All rows in one statement, from Arrow (executemany would run one statement per row)."""
    import pyarrow as pa

    con.register("cryptodb_staged_rows", pa.table(columns))
    try:
        con.execute(f"INSERT {'OR REPLACE ' if replace else ''}INTO {table} SELECT * FROM cryptodb_staged_rows")
    finally:
        con.unregister("cryptodb_staged_rows")


class RocksDBBackend(StateBackend):
    """Keys: `s/<call>/<partition>` states, `o/<topic>/<partition>` offsets,
    `wx/<exchange>/<symbol>` watermarks (`w/<symbol>`: written before they were kept per
    exchange, read as exchange None), `pending` the uncommitted files; a commit is one atomic
    WriteBatch."""

    def __init__(self, path: Path):
        super().__init__()
        try:
            from rocksdict import Rdict, WriteBatch
        except ImportError:
            raise CryptodbError("the rocksdb state backend needs the rocksdict package: "
                                "pip install 'cryptodb[rocksdb]'") from None
        self._batch_type = WriteBatch
        self.db = Rdict(str(path))

    def checkpoint(self) -> Checkpoint:
        cp = Checkpoint()
        for key, value in self.db.items(from_key="o/"):
            if not key.startswith("o/"):
                break
            topic, _, part = key[2:].rpartition("/")
            cp.offsets[(topic, int(part))] = value
        for key, value in self.db.items(from_key="w/"):
            if not key.startswith("w/"):
                break
            cp.watermarks[(None, key[2:])] = tuple(value)
        for key, value in self.db.items(from_key="wx/"):
            if not key.startswith("wx/"):
                break
            exchange, _, symbol = key[3:].partition("/")  # exchange names hold no slash
            cp.watermarks[(_exchange_of(exchange), symbol)] = tuple(value)
        cp.pending = json.loads(self.db.get("pending", "[]"))
        return cp

    def begin(self, files: list[str]) -> None:
        self.db["pending"] = json.dumps(files)
        self.db.flush()

    def commit(self, offsets: Offsets, watermarks: Watermarks) -> None:
        batch = self._batch_type()
        for (call, part), blob in self._staged.items():
            batch.put(f"s/{call}/{part}", blob)
        for (topic, part), offset in offsets.items():
            batch.put(f"o/{topic}/{part}", offset)
        for (exchange, symbol), mark in watermarks.items():
            batch.put(f"wx/{exchange or ANY_EXCHANGE}/{symbol}", list(mark))
        batch.put("pending", "[]")
        self.db.write(batch)
        self.db.flush()
        self._staged.clear()

    def _load_committed(self, call_id, partitions):
        found = {}
        for p in partitions:
            blob = self.db.get(f"s/{call_id}/{p}")
            if blob is not None:
                found[p] = blob
        return found

    def close(self) -> None:
        self.db.close()


def _exchange_of(stored: str) -> str | None:
    return None if stored == ANY_EXCHANGE else stored


def open_backend(kind: str, catalog: Path | None) -> StateBackend:
    """The backend `kind` for the database whose catalog file is `catalog`."""
    if kind == "memory" or catalog is None:
        return MemoryBackend()
    if kind == "duckdb":
        return DuckDBBackend(catalog.with_suffix(".live.duckdb"))
    if kind == "rocksdb":
        return RocksDBBackend(catalog.with_suffix(".live.rocksdb"))
    raise CryptodbError(f"state backend {kind!r}: one of {', '.join(BACKENDS)}")
