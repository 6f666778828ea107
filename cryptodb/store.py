"""The Parquet tick store: hive-partitioned (symbol, date), time-sorted files, atomic for readers.

Layout of a data folder::

    .lock                             writers (append, compact) serialise on this flock
    _staging/                         files being written; renamed into place when complete
    _versions/ticks/v000001/          a version of the `ticks` table:
        symbol=BTC-USD/date=2026-01-01/part-<min ts>-<max ts>-<id>.parquet
        symbol=__HIVE_DEFAULT_PARTITION__/date=__HIVE_DEFAULT_PARTITION__/_schema.parquet
    ticks -> _versions/ticks/v000001  the current version (a symlink, swapped atomically)

Readers glob `ticks/**/*.parquet`, so they only ever see complete files: new files appear by
`rename`. Compaction builds a whole new version (hard links for untouched partitions) and swaps
the symlink, so no query sees a row twice or misses one. A query that listed the files before a
swap and opens a merged-away file after it fails instead ("Cannot open file"): DuckDB resolves
file names through the symlink, so no old version can stay reachable under the same names.
cryptodb's own query path re-runs such a query; other clients simply run it again.
The zero-row `_schema` file keeps an empty table queryable. A file's name carries its first and
last event time, which lets an append skip reading files it cannot duplicate.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cryptodb.ingest.schema import TABLES, TableSpec

log = logging.getLogger("cryptodb")

SCHEMA_FILE = "_schema.parquet"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
ROW_GROUP_ROWS = 1 << 20
# Files written at once by one append: a live batch writes a small file per symbol and day, and
# creating a file costs ~2 ms here whatever its size; two to four at a time halved 1,000 of them.
WRITE_THREADS = 4
NS_PER_DAY = 86_400_000_000_000


@dataclass
class AppendResult:
    table: str
    rows_in: int = 0
    rows_written: int = 0
    duplicates: int = 0
    files: list[Path] = field(default_factory=list)

    def add(self, other: AppendResult) -> AppendResult:
        self.rows_in += other.rows_in
        self.rows_written += other.rows_written
        self.duplicates += other.duplicates
        self.files += other.files
        return self


@dataclass
class CompactResult:
    table: str
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0


@dataclass(frozen=True)
class DataFile:
    path: Path
    symbol: str
    date: str
    min_ts: int
    max_ts: int

    @classmethod
    def parse(cls, path: Path) -> DataFile | None:
        parts = path.stem.split("-")
        if len(parts) < 4 or parts[0] not in ("part", "compact"):
            return None
        symbol = path.parent.parent.name.partition("=")[2]
        date = path.parent.name.partition("=")[2]
        return cls(path, symbol, date, int(parts[1]), int(parts[2]))


def _ts_ns(table: pa.Table) -> np.ndarray:
    return table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()


def _sort_keys(spec: TableSpec) -> list[str]:
    return ["ts", *spec.order_extra, "exchange", *(k for k in spec.key_extra if k not in spec.order_extra)]


def _drop_adjacent_duplicates(table: pa.Table, spec: TableSpec) -> pa.Table:
    """Rows sorted so that equal keys are adjacent: keep the first of each run."""
    if table.num_rows < 2:
        return table
    same = np.ones(table.num_rows - 1, dtype=bool)
    for name in spec.key:
        col = table.column(name).combine_chunks()
        if pa.types.is_string(col.type):
            col = pc.dictionary_encode(col).indices
        elif pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        v = col.to_numpy(zero_copy_only=False)
        same &= v[1:] == v[:-1]
    if not same.any():
        return table
    keep = np.concatenate([[True], ~same])
    return table.filter(pa.array(keep))


def _dedupe_against(new: pa.Table, old_keys: pa.Table, spec: TableSpec) -> pa.Table:
    """Rows of `new` whose key is not in `old_keys` (both hold the key columns but symbol)."""
    key = [k for k in spec.key if k != "symbol"]
    marked = new.append_column("__row", pa.array(np.arange(new.num_rows)))
    joined = marked.select([*key, "__row"]).join(old_keys.select(key), keys=key, join_type="left anti")
    rows = np.sort(joined.column("__row").to_numpy())
    return new.take(pa.array(rows))


def _encodings(schema: pa.Schema) -> dict:
    """Dictionary-encode only low-cardinality text; delta-encode times and sequence numbers.

    Measured on 1M generated ticks: 0.35 s and 32 MB, against 0.55 s and 41 MB with pyarrow's
    default of trying a dictionary on every column.
    """
    delta = [f.name for f in schema if pa.types.is_timestamp(f.type) or pa.types.is_int64(f.type)]
    return {"use_dictionary": ["exchange"], "column_encoding": {name: "DELTA_BINARY_PACKED" for name in delta}}


class ParquetStore:
    """Appends, lists and compacts the Parquet files of each stored table under one folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root).absolute()

    # -- layout --------------------------------------------------------------------------
    def table_path(self, table: str) -> Path:
        """The path readers glob under (a symlink to the current version)."""
        return self.root / table

    def glob(self, table: str) -> str:
        return str(self.table_path(table) / "**" / "*.parquet")

    def _versions_dir(self, table: str) -> Path:
        return self.root / "_versions" / table

    def exists(self) -> bool:
        return all(self.table_path(t).exists() for t in TABLES)

    def init(self) -> None:
        """Create the folder layout; safe to call again (it adds only what is missing)."""
        (self.root / "_staging").mkdir(parents=True, exist_ok=True)
        with self._write_lock():
            for name, spec in TABLES.items():
                if self.table_path(name).exists():
                    continue
                version = self._versions_dir(name) / "v000001"
                placeholder = version / f"symbol={NULL_PARTITION}" / f"date={NULL_PARTITION}"
                placeholder.mkdir(parents=True, exist_ok=True)
                empty = spec.arrow_schema.empty_table().select(spec.file_columns)
                pq.write_table(empty, placeholder / SCHEMA_FILE)
                self._point(name, version)

    def _point(self, table: str, version: Path) -> None:
        link = self.table_path(table)
        tmp = self.root / f".{table}.{uuid.uuid4().hex}.link"
        os.symlink(os.path.relpath(version, self.root), tmp)
        os.replace(tmp, link)  # atomic: a reader sees the old or the new version, never neither

    def _current(self, table: str) -> Path:
        return self.table_path(table).resolve()

    @contextmanager
    def _write_lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def tables(self) -> list[str]:
        """The feed tables, then tables stored from query results (`store://name`), by name."""
        derived = sorted(p.name for p in self.root.iterdir()
                         if p.is_symlink() and p.name not in TABLES and not p.name.startswith((".", "_")))
        return [*TABLES, *derived]

    def files(self, table: str) -> list[DataFile]:
        out = []
        for path in sorted(self._current(table).glob("symbol=*/date=*/*.parquet")):
            f = DataFile.parse(path)
            if f is not None:
                out.append(f)
        return out

    # -- append --------------------------------------------------------------------------
    def append(self, table: str, data: pa.Table) -> AppendResult:
        """Write rows already in `table`'s exact schema: sorted, de-duplicated, one file per partition."""
        spec = TABLES[table]
        result = AppendResult(table, rows_in=data.num_rows)
        if data.num_rows == 0:
            return result
        days = np.floor_divide(_ts_ns(data), NS_PER_DAY).astype(np.int32)
        data = data.append_column("__date", pa.array(days, pa.int32()).cast(pa.date32()))
        order = pc.sort_indices(data, [("symbol", "ascending"), ("__date", "ascending")]
                                + [(k, "ascending") for k in _sort_keys(spec)])
        data = _drop_adjacent_duplicates(data.take(order), spec)

        sym = pc.dictionary_encode(data.column("symbol").combine_chunks()).indices.to_numpy()
        day = data.column("__date").combine_chunks().cast(pa.int32()).to_numpy()
        breaks = np.flatnonzero((sym[1:] != sym[:-1]) | (day[1:] != day[:-1])) + 1
        bounds = np.concatenate([[0], breaks, [data.num_rows]])

        with self._write_lock():
            current = self._current(table)

            def write(bounds: tuple[int, int]) -> tuple[Path | None, int]:
                part = data.slice(bounds[0], bounds[1] - bounds[0])
                symbol = part.column("symbol")[0].as_py()
                date = part.column("__date")[0].as_py().isoformat()
                part = self._without_stored(spec, current, symbol, date, part.drop_columns(["__date"]))
                if not part.num_rows:
                    return None, 0
                return self._write_file(spec, current, symbol, date, part, "part"), part.num_rows

            for path, rows in concurrently(write, list(zip(bounds[:-1], bounds[1:]))):
                if path is not None:
                    result.files.append(path)
                    result.rows_written += rows
        result.duplicates = result.rows_in - result.rows_written
        if result.duplicates:
            log.info("%s: dropped %d duplicate row(s)", table, result.duplicates)
        return result

    def _without_stored(self, spec, current, symbol, date, part: pa.Table) -> pa.Table:
        """Drop rows whose key is already stored. Only files overlapping in time can hold them."""
        ts = _ts_ns(part)
        lo, hi = int(ts[0]), int(ts[-1])
        folder = current / f"symbol={symbol}" / f"date={date}"
        if not folder.is_dir():
            return part
        overlapping = [f for f in map(DataFile.parse, folder.glob("*.parquet"))
                       if f is not None and f.min_ts <= hi and f.max_ts >= lo]
        if not overlapping:
            return part
        key = [k for k in spec.key if k != "symbol"]
        old = pa.concat_tables(pq.read_table(f.path, columns=key) for f in overlapping)
        return _dedupe_against(part, old, spec)

    def _write_file(self, spec, current: Path, symbol: str, date: str, part: pa.Table, kind: str) -> Path:
        ts = _ts_ns(part)
        folder = current / f"symbol={symbol}" / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{kind}-{int(ts[0])}-{int(ts[-1])}-{uuid.uuid4().hex[:12]}.parquet"
        staging = self.root / "_staging" / f"{uuid.uuid4().hex}.tmp"
        staging.parent.mkdir(parents=True, exist_ok=True)
        data = part.select(spec.file_columns)
        pq.write_table(data, staging, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                       **_encodings(data.schema))
        os.replace(staging, final)
        return final

    # -- compaction ----------------------------------------------------------------------
    def compact(self, table: str | None = None) -> list[CompactResult]:
        """Merge each partition's files into one time-sorted file, behind an atomic version swap."""
        if table is not None and table not in TABLES:
            raise KeyError(f"no stored table {table!r}: one of {', '.join(TABLES)}")
        tables = [table] if table else list(TABLES)
        with self._write_lock():
            return [self._compact_table(TABLES[name]) for name in tables]

    def _compact_table(self, spec: TableSpec) -> CompactResult:
        result = CompactResult(spec.name)
        current = self._current(spec.name)
        files = self.files(spec.name)
        result.files_before = result.files_after = len(files)
        groups: dict[tuple[str, str], list[DataFile]] = {}
        for f in files:
            groups.setdefault((f.symbol, f.date), []).append(f)
        todo = {k: v for k, v in groups.items() if len(v) > 1}
        if not todo:
            return result
        number = int(current.name[1:]) + 1
        version = current.parent / f"v{number:06d}"
        shutil.rmtree(version, ignore_errors=True)  # a compaction that died half way
        for src in current.rglob("*.parquet"):
            partition = (src.parent.parent.name.partition("=")[2], src.parent.name.partition("=")[2])
            if partition in todo:
                continue  # rewritten below
            rel = src.relative_to(current)
            (version / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(src, version / rel)  # untouched partitions are shared, not copied
        for (symbol, date), group in todo.items():
            merged = pa.concat_tables(pq.read_table(f.path) for f in group)
            merged = merged.append_column("symbol", pa.array([symbol] * merged.num_rows, pa.string()))
            merged = merged.select(spec.names)
            merged = _drop_adjacent_duplicates(
                merged.take(pc.sort_indices(merged, [(k, "ascending") for k in _sort_keys(spec)])), spec)
            self._write_file(spec, version, symbol, date, merged, "compact")
            result.partitions += 1
            result.rows += merged.num_rows
            result.files_after -= len(group) - 1
        self._point(spec.name, version)
        # Nothing can reach the old version any more: names resolve through the symlink.
        shutil.rmtree(current, ignore_errors=True)
        log.info("%s: compacted %d partition(s), %d -> %d files", spec.name, result.partitions,
                 result.files_before, result.files_after)
        return result

    # -- derived tables --------------------------------------------------------------------
    def replace_table(self, name: str, data: pa.Table) -> int:
        """Store a query result (features, backtest output ...) as table `name`, replacing it whole.

        Rows with `symbol` and `ts` are split into symbol/date folders, each file sorted by ts;
        every file keeps all columns, so the table reads back as it was written. The new version
        appears to readers in one symlink swap, like a compaction.
        """
        if name in TABLES:
            raise ValueError(f"{name} is a stored feed table: append to it with insert, not replace it")
        if not name.isidentifier():
            raise ValueError(f"table name {name!r} must be a plain identifier")
        with self._write_lock():
            versions = self._versions_dir(name)
            current = self.table_path(name).resolve() if self.table_path(name).exists() else None
            number = int(current.name[1:]) + 1 if current is not None else 1
            version = versions / f"v{number:06d}"
            shutil.rmtree(version, ignore_errors=True)
            version.mkdir(parents=True)
            self._write_derived(version, data)
            self._point(name, version)
            if current is not None:
                shutil.rmtree(current, ignore_errors=True)
        return data.num_rows

    def _write_derived(self, version: Path, data: pa.Table) -> None:
        for path, part in self._derived_files(version, data, uuid.uuid4().hex[:12]):
            self.write_file(path, part)

    def write_files(self, planned: list[tuple[Path, pa.Table]]) -> None:
        """`write_file` for each (path, rows), several at once."""
        concurrently(lambda item: self.write_file(*item), planned)

    def write_file(self, path: Path, part: pa.Table) -> None:
        """Write one Parquet file atomically: a staging name, then a rename into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.root / "_staging" / f"{uuid.uuid4().hex}.tmp"
        staging.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, staging, compression="zstd", row_group_size=ROW_GROUP_ROWS, **_encodings(part.schema))
        os.replace(staging, path)

    def _derived_files(self, folder: Path, data: pa.Table, tag: str) -> list[tuple[Path, pa.Table]]:
        """Where the rows of a derived table go: symbol/date folders (when it has symbol and ts),
        each file sorted by ts and named by its time range and `tag`."""
        names = set(data.column_names)
        timed = {"symbol", "ts"} <= names and pa.types.is_timestamp(data.schema.field("ts").type)
        if data.num_rows == 0 or not timed:
            return [(folder / f"{SCHEMA_FILE[:-8] if data.num_rows == 0 else f'part-{tag}'}.parquet", data)]
        ts = data.column("ts").combine_chunks().cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy()
        days = np.floor_divide(ts, NS_PER_DAY)
        sym = pc.dictionary_encode(data.column("symbol").combine_chunks())
        codes = sym.indices.fill_null(len(sym.dictionary)).to_numpy(zero_copy_only=False)
        order = np.lexsort((ts, days, codes))
        codes, days, ts = codes[order], days[order], ts[order]
        data = data.take(pa.array(order))
        breaks = np.flatnonzero((codes[1:] != codes[:-1]) | (days[1:] != days[:-1])) + 1
        files = []
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(order)]):
            symbol = data.column("symbol")[int(lo)].as_py() or NULL_PARTITION
            date = np.datetime64(int(days[lo]), "D").astype(str)
            files.append((folder / f"symbol={symbol}" / f"date={date}" / f"part-{ts[lo]}-{ts[hi - 1]}-{tag}.parquet",
                          data.slice(int(lo), int(hi - lo))))
        return files

    def plan_append_derived(self, name: str, data: pa.Table, tag: str) -> list[tuple[Path, pa.Table]]:
        """The files that appending `data` to derived table `name` will write (see write_file),
        named by `tag`: a writer that must undo an interrupted append records them first."""
        if name in TABLES or not name.isidentifier():
            raise ValueError(f"{name!r} is not a derived table name")
        with self._write_lock():
            if not self.table_path(name).exists():
                version = self._versions_dir(name) / "v000001"
                version.mkdir(parents=True, exist_ok=True)
                # An empty file with the columns: the table reads as empty, not as missing.
                self.write_file(version / SCHEMA_FILE, data.slice(0, 0))
                self._point(name, version)
        return self._derived_files(self.table_path(name), data, tag) if data.num_rows else []

    # -- facts for `info` ----------------------------------------------------------------
    def table_stats(self, table: str) -> dict:
        """Rows, symbols, time range and bytes from file names and Parquet footers only."""
        files = self.files(table)
        rows = sum(pq.read_metadata(f.path).num_rows for f in files)
        return {
            "table": table,
            "rows": rows,
            "symbols": len({f.symbol for f in files}),
            "files": len(files),
            "bytes": sum(f.path.stat().st_size for f in files),
            "first_ts": min((f.min_ts for f in files), default=None),
            "last_ts": max((f.max_ts for f in files), default=None),
        }

    def symbol_stats(self, table: str) -> list[dict]:
        per: dict[str, dict] = {}
        for f in self.files(table):
            s = per.setdefault(f.symbol, {"symbol": f.symbol, "rows": 0, "files": 0, "bytes": 0,
                                          "first_ts": f.min_ts, "last_ts": f.max_ts})
            s["rows"] += pq.read_metadata(f.path).num_rows
            s["files"] += 1
            s["bytes"] += f.path.stat().st_size
            s["first_ts"] = min(s["first_ts"], f.min_ts)
            s["last_ts"] = max(s["last_ts"], f.max_ts)
        return [per[k] for k in sorted(per)]

    def symbols(self, table: str = "ticks") -> list[str]:
        return sorted({f.symbol for f in self.files(table)})


def concurrently(fn, items: list) -> list:
    """fn over items on a few threads (Parquet writing releases the GIL), results in order."""
    if len(items) < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(WRITE_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))
