"""Importers for the files users bring: sabot Parquet, tardis.dev CSV, and generic CSV/Parquet.

Each format is one declarative unit in `FORMATS`: its container, the columns that identify it, and
how those columns map onto a stored table (ingest.schema). Files are streamed in chunks (CSV blocks,
Parquet batches), so a multi-GB tardis day never sits in memory whole, and every chunk leaves through
`conform`, like everything else that enters the store.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .conform import ConformError, conform
from .schema import TABLES, TS, TableSpec
from .symbols import SymbolError

log = logging.getLogger("cryptodb")

DROP = ""  # mapping value: the source column is known and deliberately not stored
EPOCH_UNITS = ("s", "ms", "us", "ns")
Progress = Callable[[int, int], None]


class ImportFormatError(ValueError):
    """A file that cannot be imported as asked; the message names the file, format and columns."""


@dataclass(frozen=True)
class FileFormat:
    name: str
    doc: str
    container: str  # "csv" or "parquet"
    table: str | None  # stored table; None for the generic formats, which pick it from the columns
    columns: Mapping[str, str] = field(default_factory=dict)  # source column -> field, DROP = not stored
    essential: tuple[str, ...] = ()  # without these the file is not in this format
    epoch_unit: str | None = None  # unit of integer times; None: conform reads it from the magnitude
    exchange: str | None = None  # venue when neither the file nor the caller says
    keep_rows: Callable[[pa.Table], pa.Array | None] | None = None  # mask of rows kept, by design
    row_columns: tuple[str, ...] = ()  # source columns keep_rows reads (not stored)
    skips: str = ""  # what keep_rows drops, for the log

    @property
    def generic(self) -> bool:
        return self.table is None


def _ticker_rows(batch: pa.Table) -> pa.Array | None:
    # The sabot collector wrote every ticker-channel event type into the same file; only `ticker`
    # events are top-of-book ticks (ticker_batch lacks bid/ask). A NULL type is an old ticker row.
    if "type" not in batch.column_names:
        return None
    kind = pc.cast(batch.column("type"), pa.string())
    return pc.fill_null(pc.equal(kind, "ticker"), True)


_SABOT_STATS = ("volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
                "price_percent_chg_24_h", "volume_3d", "open_24h")
_TARDIS = {"exchange": "exchange", "symbol": "symbol", "timestamp": "ts", "local_timestamp": "recv_ts"}


def _tardis(name: str, doc: str, table: str, columns: dict[str, str]) -> FileFormat:
    # tardis always writes every column of a data type, so all of them identify the format.
    cols = {**_TARDIS, **columns}
    return FileFormat(name, doc, "csv", table, cols, essential=tuple(cols), epoch_unit="us")


FORMATS: dict[str, FileFormat] = {f.name: f for f in (
    FileFormat(
        "sabot-parquet", "the seed platform's Coinbase ticker collector (Parquet, decimal strings)",
        "parquet", "ticks",
        {"product_id": "symbol", "parent_timestamp": "ts", "parent_sequence_num": "seq",
         "price": "price", "last_size": "size", "best_bid": "bid", "best_ask": "ask",
         "best_bid_quantity": "bid_size", "best_ask_quantity": "ask_size", "type": DROP,
         **{c: DROP for c in _SABOT_STATS}},
        essential=("product_id", "parent_timestamp", "price"),
        exchange="coinbase", keep_rows=_ticker_rows, row_columns=("type",), skips="events other than 'ticker'"),
    _tardis("tardis-quotes", "tardis.dev quotes CSV (top of book)", "ticks",
            {"ask_amount": "ask_size", "ask_price": "ask", "bid_price": "bid", "bid_amount": "bid_size"}),
    _tardis("tardis-trades", "tardis.dev trades CSV", "trades",
            {"id": "trade_id", "side": "side", "price": "price", "amount": "size"}),
    _tardis("tardis-derivative-ticker", "tardis.dev derivative_ticker CSV (funding, mark, index)",
            "funding",
            {"funding_timestamp": "next_funding_ts", "funding_rate": "funding_rate",
             "predicted_funding_rate": "predicted_rate", "open_interest": "open_interest",
             "last_price": DROP,  # the trade price lives in trades/ticks; funding has no column for it
             "index_price": "index_price", "mark_price": "mark_price"}),
    _tardis("tardis-book", "tardis.dev incremental_book_L2 CSV (absolute sizes, 0 deletes)", "book",
            {"is_snapshot": "is_snapshot", "side": "side", "price": "price", "amount": "size"}),
    FileFormat("csv", "CSV with columns named like a stored table's (or renamed by mapping=)",
               "csv", None),
    FileFormat("parquet", "Parquet with columns named like a stored table's (or renamed by mapping=)",
               "parquet", None),
)}

_COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2"}
_MAGIC = {b"PAR1": ("parquet", None), b"\x1f\x8b": ("csv", "gzip"), b"\x28\xb5\x2f\xfd": ("csv", "zstd")}
_NULLS = ["", "NULL", "null"]
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")
_DECIMAL = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass
class _Plan:
    """One file resolved against one format: what to read and where each column goes."""

    path: Path
    fmt: FileFormat
    spec: TableSpec
    compression: str | None
    rename: dict[str, str]  # source column -> stored field, for the columns kept
    read: list[str]  # source columns to read (kept ones plus those rows are filtered on)
    units: dict[str, str]  # stored time field -> forced epoch unit
    exchange: str | None

    def where(self) -> str:
        return f"{self.fmt.name} file {self.path}"


# ----------------------------------------------------------------------------------- detection

def _container(path: Path) -> tuple[str, str | None]:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet", None
    for ext, codec in _COMPRESSION.items():
        if name.endswith(".csv" + ext):
            return "csv", codec
    if name.endswith(".csv"):
        return "csv", None
    with open(path, "rb") as f:  # no telling extension: trust the first bytes
        head = f.read(4)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "csv", None


def _columns(path: Path, container: str, compression: str | None) -> list[str]:
    try:
        if container == "parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        with pa.input_stream(str(path), compression=compression) as stream:
            head = b""
            while b"\n" not in head and len(head) < (16 << 20):
                block = stream.read(1 << 16)
                if not block:
                    break
                head += block
    except (pa.ArrowException, OSError) as e:
        raise ImportFormatError(f"{path}: cannot read as {container}: {e}") from None
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    names = next(csv.reader([line]), [])
    if not names:
        raise ImportFormatError(f"{path}: empty CSV file, no header row")
    return names


def _table_for(fields: set[str]) -> tuple[TableSpec, bool]:
    """The stored table whose columns best explain `fields`, and whether it explains all of them.

    On a tie the first in TABLES wins (ticks), because a bare price/size file is most often ticks.
    """

    def score(spec: TableSpec) -> tuple[bool, int]:
        fits = fields <= set(spec.names) and all(any(a in fields for a in alts) for alts in spec.required)
        return fits, len(fields & set(spec.names))

    best = max(TABLES.values(), key=score)
    return best, score(best)[0]


def _fits(fmt: FileFormat, columns: set[str]) -> bool:
    if fmt.generic:
        return _table_for(columns - {"date"})[1]
    return set(fmt.essential) <= columns <= set(fmt.columns)


def _detect(path: Path, container: str, columns: list[str]) -> str:
    for fmt in FORMATS.values():
        if fmt.container == container and _fits(fmt, set(columns)):
            return fmt.name
    needs = "; ".join(
        f"{f.name}: {', '.join(f.essential)}" for f in FORMATS.values() if f.container == container and not f.generic
    )
    raise ImportFormatError(
        f"cannot tell the format of {container} file {path}: columns seen: {', '.join(columns)}. "
        f"Known {container} formats need: {needs}; or columns named like a stored table's "
        f"({', '.join(TABLES)}). Pass format=... and, for generic files, mapping={{column: field}}."
    )


def detect_format(path) -> str:
    """The name of the FORMATS entry that reads `path`, from its extension and its columns."""
    path = _existing(path)
    container, compression = _container(path)
    return _detect(path, container, _columns(path, container, compression))


# -------------------------------------------------------------------------------------- planning

def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot import {path}: no such file")
    if not path.is_file():
        raise ImportFormatError(f"cannot import {path}: not a file")
    return path


def _plan(path, format, exchange, mapping, table) -> _Plan:
    path = _existing(path)
    container, compression = _container(path)
    columns = _columns(path, container, compression)
    if table is not None and table not in TABLES:
        raise ImportFormatError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}")
    if format == "auto":
        try:
            format = container if mapping else _detect(path, container, columns)
        except ImportFormatError:
            if table is None:
                raise
            format = container  # the generic plan says which columns do not fit `table`
    fmt = FORMATS.get(format)
    if fmt is None:
        raise ImportFormatError(f"unknown import format {format!r}; known formats: auto, {', '.join(FORMATS)}")
    where = f"{fmt.name} file {path}"
    if fmt.container != container:
        raise ImportFormatError(f"{where}: format {fmt.name} reads {fmt.container} files, this is {container}")
    if fmt.generic:
        return _plan_generic(path, fmt, compression, columns, exchange, mapping or {}, table)
    if mapping:
        raise ImportFormatError(f"{where}: mapping= applies to the generic csv/parquet formats only")
    if table is not None and table != fmt.table:
        raise ImportFormatError(f"{where}: format {fmt.name} imports into {fmt.table}, not {table}")
    missing = [c for c in fmt.essential if c not in columns]
    unknown = [c for c in columns if c not in fmt.columns]
    if missing or unknown:
        raise ImportFormatError(f"{where}: " + _problems(missing, unknown, list(fmt.columns)))
    rename = {c: fmt.columns[c] for c in columns if fmt.columns[c] != DROP}
    spec = TABLES[fmt.table]
    units = {f: fmt.epoch_unit for f in rename.values() if fmt.epoch_unit and _field_type(spec, f) == TS}
    read = [c for c in columns if c in rename or c in fmt.row_columns]
    dropped = [c for c in columns if c not in rename and c not in fmt.row_columns]
    if dropped:
        log.debug("%s: not stored by design: %s", where, ", ".join(dropped))
    return _Plan(path, fmt, spec, compression, rename, read, units, exchange or fmt.exchange)


def _field_type(spec: TableSpec, name: str) -> pa.DataType | None:
    return next((c.type for c in spec.columns if c.name == name), None)


def _problems(missing: list[str], unknown: list[str], known: list[str]) -> str:
    parts = []
    if missing:
        parts.append("missing column(s): " + ", ".join(missing))
    if unknown:
        parts.append("unknown column(s): " + ", ".join(unknown) + " (known: " + ", ".join(known) + ")")
    return "; ".join(parts)


def _plan_generic(path, fmt, compression, columns, exchange, mapping, table) -> _Plan:
    where = f"{fmt.name} file {path}"
    absent = [c for c in mapping if c not in columns]
    if absent:
        raise ImportFormatError(
            f"{where}: mapping names column(s) not in the file: {', '.join(absent)} "
            f"(columns seen: {', '.join(columns)})"
        )
    rename: dict[str, str] = {}
    units: dict[str, str] = {}
    for src in columns:
        target = mapping.get(src, src)
        if not isinstance(target, str):
            raise ImportFormatError(f"{where}: mapping {src!r}: {target!r}: give a field name, 'field:unit' or ''")
        name, _, unit = target.partition(":")
        if name in (DROP, "date"):  # `date` is derived from ts (a DuckDB COPY of a stored table brings it)
            continue
        if unit:
            if unit not in EPOCH_UNITS:
                raise ImportFormatError(
                    f"{where}: mapping {src!r}: {target!r}: epoch unit must be one of {', '.join(EPOCH_UNITS)}"
                )
            units[name] = unit
        rename[src] = name
    doubled = sorted({f for f in rename.values() if list(rename.values()).count(f) > 1})
    if doubled:
        raise ImportFormatError(
            f"{where}: several columns would become " + ", ".join(
                f"{f} ({', '.join(s for s, t in rename.items() if t == f)})" for f in doubled)
        )
    fields = set(rename.values())
    spec = TABLES[table] if table else _table_for(fields)[0]
    unknown = [s if s == f else f"{s} (as {f})" for s, f in rename.items() if f not in spec.names]
    have = fields | ({"exchange"} if exchange else set())
    missing = [" or ".join(alts) for alts in (("exchange",), *spec.required) if not any(a in have for a in alts)]
    if missing or unknown:
        hint = " Rename with mapping={column: field}, drop with mapping={column: ''}"
        if "exchange" in missing:
            hint += ", or pass exchange=..."
        raise ImportFormatError(f"{where} -> {spec.name}: " + _problems(missing, unknown, spec.names) + "." + hint)
    not_time = [f for f in units if _field_type(spec, f) != TS]
    if not_time:
        raise ImportFormatError(f"{where}: an epoch unit only applies to time columns, not {', '.join(not_time)}")
    return _Plan(path, fmt, spec, compression, rename, list(rename), units, exchange)


# --------------------------------------------------------------------------------------- reading

def read_file(path, format="auto", exchange=None, mapping=None, table=None,
              progress: Progress | None = None, batch_rows: int = 1_000_000) -> Iterator[tuple[str, pa.Table]]:
    """Yield (stored table name, chunk in that table's exact schema) for the rows of `path`.

    The file, format, columns and mapping are checked now, so a bad call fails before any row is
    read; the rows themselves stream in chunks of at most `batch_rows`. `progress(done, total)` is
    called in bytes of the file as it is read (for Parquet, prorated by rows), ending at total.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be positive, not {batch_rows}")
    plan = _plan(path, format, exchange, mapping, table)
    return _read(plan, progress, batch_rows)


def _read(plan: _Plan, progress: Progress | None, batch_rows: int) -> Iterator[tuple[str, pa.Table]]:
    total = plan.path.stat().st_size
    seen = kept = 0
    chunks, position = (_csv_chunks if plan.fmt.container == "csv" else _parquet_chunks)(plan, batch_rows)
    try:
        for chunk in chunks:
            out = _convert(plan, chunk, seen)
            seen += chunk.num_rows
            kept += out.num_rows
            if progress:
                progress(min(position(seen), total), total)
            if out.num_rows:
                yield plan.spec.name, out
    except (pa.ArrowException, ConformError, SymbolError, OSError) as e:
        raise ImportFormatError(f"{plan.where()}: {e}") from None
    if progress:
        progress(total, total)
    if seen != kept:
        log.info("%s: skipped %d of %d rows by design (%s)", plan.where(), seen - kept, seen, plan.fmt.skips)
    log.info("%s: %d rows into %s", plan.where(), kept, plan.spec.name)


def _rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


def _csv_type(plan: _Plan, src: str) -> pa.DataType:
    kind = _field_type(plan.spec, plan.rename[src])
    if kind == TS:
        # tardis times are epoch integers; generic ones may be text or numbers: decided per chunk.
        return pa.int64() if plan.fmt.epoch_unit else pa.string()
    if kind == pa.int8():  # side: 'buy'/'sell'/'bid'/'ask' or +-1, conform reads them all
        return pa.string()
    return kind


def _csv_chunks(plan: _Plan, batch_rows: int):
    raw = pa.OSFile(str(plan.path), "rb")
    stream = pa.input_stream(raw, compression=plan.compression)
    convert = pacsv.ConvertOptions(
        include_columns=plan.read,
        # ids and symbols as text, so leading zeros and long ids survive
        column_types={src: _csv_type(plan, src) for src in plan.read},
        null_values=_NULLS,
        strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=convert)
    except pa.ArrowException as e:
        raw.close()
        raise ImportFormatError(f"{plan.where()}: {e}") from None

    def chunks():
        with raw:
            yield from _rechunk(reader, batch_rows)

    return chunks(), lambda _rows: raw.tell()


def _parquet_chunks(plan: _Plan, batch_rows: int):
    pf = pq.ParquetFile(plan.path)
    rows = max(pf.metadata.num_rows, 1)
    size = plan.path.stat().st_size
    batches = pf.iter_batches(batch_size=min(batch_rows, 1 << 20), columns=plan.read)
    return _rechunk(batches, batch_rows), lambda done: size * done // rows


def _epoch(arr: pa.Array, unit: str | None, column: str) -> pa.Array:
    """Time values that are epoch numbers (or text of them) -> timestamp; anything else unchanged."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        valid = arr.drop_null()
        first = valid[0].as_py() if len(valid) else ""
        if _INTEGER.match(first):
            arr = pc.cast(pc.utf8_trim_whitespace(arr), pa.int64())
        elif _DECIMAL.match(first):
            arr = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
        elif unit and len(valid):
            raise ConformError(f"column {column!r}: epoch unit {unit!r} given, but values look like {first!r}")
    if unit is None:
        return arr  # conform reads the unit from the magnitude, or parses the text
    if pa.types.is_integer(arr.type):
        return pc.cast(pc.cast(arr, pa.int64()), pa.timestamp(unit))
    if pa.types.is_floating(arr.type):
        scale = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}[unit]
        return pc.cast(pc.cast(pc.round(pc.multiply(arr, scale)), pa.int64()), TS)
    return arr


def _convert(plan: _Plan, chunk: pa.Table, first_row: int) -> pa.Table:
    keep = plan.fmt.keep_rows(chunk) if plan.fmt.keep_rows else None
    n = chunk.num_rows
    data = {plan.rename[c]: chunk.column(c).combine_chunks() for c in plan.rename}
    for extra in plan.spec.key_extra:
        # A missing id becomes the row's line number in the file: unique, the same on re-import and
        # for any batch_rows (conform's per-chunk occurrence count would restart at chunk edges).
        line = pa.array(np.arange(first_row, first_row + n, dtype=np.int64))
        kind = _field_type(plan.spec, extra)
        line = pc.cast(line, pa.string()) if pa.types.is_string(kind) else line
        if extra not in data:
            data[extra] = line
        elif data[extra].null_count:
            data[extra] = pc.if_else(pc.is_null(data[extra]), line, pc.cast(data[extra], line.type))
    for name in [c.name for c in plan.spec.columns if c.type == TS and c.name in data]:
        data[name] = _epoch(data[name], plan.units.get(name), name)
    table = pa.table(data)
    if keep is not None:
        table = table.filter(keep)
    return conform(table, plan.spec, exchange=plan.exchange)
