"""Bring any Arrow table into one of the stored shapes (ingest.schema), or say exactly why not.

Everything that enters the store passes here: generator, importers, collectors and
`Database.insert_*`. Numbers are parsed once, here, at the edge.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import TS, TableSpec
from .symbols import normalize_symbol


class ConformError(ValueError):
    pass


def to_timestamp_ns(arr: pa.ChunkedArray | pa.Array, column: str = "ts") -> pa.Array:
    """Any time representation -> timestamp[ns] (UTC, no zone).

    Strings are RFC3339/ISO-8601 (up to 9 fractional digits; an offset is applied, none means UTC).
    Integers are epoch time whose unit is read from the magnitude: s, ms, us or ns.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            arr = pc.cast(arr, pa.timestamp(t.unit, tz="UTC")).cast(pa.timestamp(t.unit))
        return pc.cast(arr, TS)
    if pa.types.is_date(t):
        return pc.cast(pc.cast(arr, pa.timestamp("s")), TS)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            return pc.cast(pc.cast(arr, pa.timestamp("ns", tz="UTC")), TS)
        except pa.ArrowInvalid:
            try:
                return pc.cast(pc.replace_substring(arr, " ", "T"), TS)
            except pa.ArrowInvalid as e:
                raise ConformError(f"column {column!r}: cannot parse time: {e}") from None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
        finite = values[np.isfinite(values)]
        big = float(np.abs(finite).max()) if finite.size else 0.0
        scale = 1 if big >= 1e17 else 1_000 if big >= 1e14 else 1_000_000 if big >= 1e11 else 1_000_000_000
        if pa.types.is_integer(t):
            ns = pc.multiply(pc.cast(arr, pa.int64()), pa.scalar(scale, pa.int64()))
        else:
            ns = pa.array(np.round(values * scale), pa.float64(), mask=~np.isfinite(values))
            ns = pc.cast(ns, pa.int64())
        return pc.cast(ns, TS)
    raise ConformError(f"column {column!r}: type {t} is not a time")


def _to_float(arr: pa.Array, column: str) -> pa.Array:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.if_else(pc.equal(pc.utf8_trim_whitespace(arr), ""), None, arr)
    try:
        return pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ConformError(f"column {column!r}: not a number: {e}") from None


def _to_side(arr: pa.Array, column: str) -> pa.Array:
    """'buy'/'bid'/'b'/+1 -> +1, 'sell'/'ask'/'offer'/'s'/-1 -> -1, anything else NULL."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
        buy = pc.is_in(low, pa.array(["buy", "b", "bid", "bids", "1", "+1"]))
        sell = pc.is_in(low, pa.array(["sell", "s", "ask", "asks", "offer", "-1"]))
        none = pa.scalar(None, pa.int8())
        return pc.if_else(buy, pa.scalar(1, pa.int8()), pc.if_else(sell, pa.scalar(-1, pa.int8()), none))
    if pa.types.is_boolean(arr.type):
        raise ConformError(f"column {column!r}: boolean side is ambiguous; map it to +1/-1 first")
    sign = pc.sign(pc.cast(arr, pa.float64()))
    return pc.cast(pc.if_else(pc.equal(sign, 0), None, sign), pa.int8())


def _normalize_symbols(arr: pa.Array) -> pa.Array:
    uniq = pc.unique(arr)
    mapping = {s: normalize_symbol(s) for s in uniq.to_pylist() if s is not None}
    if all(k == v for k, v in mapping.items()):
        return arr
    keys = pa.array(list(mapping), pa.string())
    values = pa.array(list(mapping.values()), pa.string())
    return pc.take(values, pc.index_in(arr, keys))


def _codes(arr: pa.Array) -> np.ndarray:
    return pc.dictionary_encode(arr).indices.to_numpy(zero_copy_only=False)


def _occurrence(keys: list[np.ndarray]) -> np.ndarray:
    """0, 1, 2 ... for rows sharing the same key values, in input order."""
    n = len(keys[0])
    order = np.lexsort([np.arange(n)] + keys[::-1])
    same = np.ones(n, dtype=bool)
    same[0] = False
    for k in keys:
        ks = k[order]
        same[1:] &= ks[1:] == ks[:-1]
    run_start = np.maximum.accumulate(np.where(~same, np.arange(n), 0))
    occ = np.empty(n, dtype=np.int64)
    occ[order] = np.arange(n) - run_start
    return occ


def conform(data, spec: TableSpec, exchange: str | None = None) -> pa.Table:
    """Return `data` (Arrow table, pandas or polars frame) in `spec`'s exact schema.

    Missing optional columns become NULL; missing required ones, and columns the table does not
    know, raise ConformError naming them all. A NULL key column (seq, trade_id) is filled with the
    row's occurrence number among rows with the same exchange, symbol and ts, so re-importing the
    same file yields the same keys and is de-duplicated.
    """
    table = _as_arrow(data)
    names = set(table.column_names) - {"date"}  # `date` is derived from ts (a round trip brings it)
    known = set(spec.names)
    unknown = sorted(names - known)
    have = names | ({"exchange"} if exchange else set())
    missing = [" or ".join(alts) for alts in spec.required if not any(a in have for a in alts)]
    if "exchange" not in have:
        missing.insert(0, "exchange (a column, or pass exchange=...)")
    if unknown or missing:
        parts = []
        if missing:
            parts.append("missing required column(s): " + ", ".join(missing))
        if unknown:
            parts.append("unknown column(s): " + ", ".join(unknown) + f" (known: {', '.join(spec.names)})")
        raise ConformError(f"{spec.name}: " + "; ".join(parts))

    n = table.num_rows
    out = {}
    for col in spec.columns:
        if col.name in names:
            arr = table.column(col.name).combine_chunks()
        elif col.name == "exchange":
            arr = pa.array([exchange] * n, pa.string()) if n else pa.array([], pa.string())
        else:
            out[col.name] = pa.nulls(n, col.type)
            continue
        if col.type == TS:
            arr = to_timestamp_ns(arr, col.name)
        elif col.name == "side" and col.type == pa.int8():
            arr = _to_side(arr, col.name)
        elif pa.types.is_floating(col.type):
            arr = _to_float(arr, col.name)
        elif pa.types.is_string(col.type):
            arr = pc.cast(arr, pa.string())
        else:
            try:
                arr = pc.cast(arr, col.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ConformError(f"{spec.name}: column {col.name!r}: {e}") from None
        out[col.name] = arr

    if exchange and "exchange" in names:
        out["exchange"] = pc.fill_null(out["exchange"], exchange)
    out["exchange"] = pc.utf8_lower(out["exchange"])
    for req in ("symbol", "ts", "exchange"):
        nulls = out[req].null_count
        if nulls:
            raise ConformError(f"{spec.name}: {nulls} row(s) have no {req}")
    out["symbol"] = _normalize_symbols(out["symbol"])

    for extra in spec.key_extra:
        arr = out[extra]
        if arr.null_count:
            occ = _occurrence([
                _codes(out["exchange"]),
                _codes(out["symbol"]),
                out["ts"].cast(pa.int64()).to_numpy(zero_copy_only=False),
            ])
            fill = pa.array(occ).cast(arr.type) if not pa.types.is_string(arr.type) else pa.array(occ.astype(str))
            out[extra] = pc.if_else(pc.is_null(arr), fill, arr)
    return pa.table(out, schema=spec.arrow_schema)


def _as_arrow(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    mod = type(data).__module__
    if mod.startswith("polars"):
        return data.to_arrow()
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, dict):
        return pa.table(data)
    raise ConformError(f"cannot insert {type(data).__name__}: pass a pyarrow Table, pandas or polars DataFrame")
