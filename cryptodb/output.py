"""Result formats shared by the CLI and the REPL: table, csv, json, jsonl, markdown, vertical.

Every format works from an Arrow table. Timestamps print with all nine fractional digits when
they have them, because nanoseconds are the point of storing them.
"""

from __future__ import annotations

import csv
import json
import math
from typing import Callable, TextIO

import pyarrow as pa
import pyarrow.compute as pc

FORMATS: dict[str, Callable] = {}


def output_format(name: str):
    def register(fn):
        FORMATS[name] = fn
        return fn

    return register


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _cell_text(col: pa.Array) -> list[str]:
    """Column -> display strings (NULL as 'NULL'); floats keep their shortest exact repr."""
    t = col.type
    if pa.types.is_floating(t):
        return ["NULL" if v is None else repr(float(v)) for v in col.to_pylist()]
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        text = pc.cast(col, pa.string())
        return ["NULL" if v is None else v for v in text.to_pylist()]
    if pa.types.is_boolean(t):
        return ["NULL" if v is None else str(v).lower() for v in col.to_pylist()]
    if pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_map(t):
        return ["NULL" if v is None else json.dumps(v, default=str) for v in col.to_pylist()]
    return ["NULL" if v is None else str(v) for v in col.to_pylist()]


def _json_values(col: pa.Array) -> list:
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        return [None if v is None else v.replace(" ", "T", 1) for v in pc.cast(col, pa.string()).to_pylist()]
    if pa.types.is_decimal(t):
        return [None if v is None else float(v) for v in col.to_pylist()]
    values = col.to_pylist()
    if pa.types.is_floating(t):  # JSON has no NaN or infinity
        return [None if v is None or math.isnan(v) or math.isinf(v) else v for v in values]
    return values


def _columns(table: pa.Table) -> list[pa.Array]:
    return [c.combine_chunks() for c in table.columns]


def type_name(t: pa.DataType) -> str:
    names = {pa.float64(): "double", pa.float32(): "float", pa.int64(): "bigint", pa.int32(): "int",
             pa.int16(): "smallint", pa.int8(): "tinyint", pa.string(): "varchar", pa.large_string(): "varchar",
             pa.bool_(): "boolean", pa.date32(): "date", pa.timestamp("ns"): "timestamp_ns",
             pa.timestamp("us"): "timestamp"}
    return names.get(t, str(t))


@output_format("table")
def write_table(table: pa.Table, out: TextIO, total_rows: int | None = None, types=None) -> None:
    """Boxed table with types under the names, numbers right-aligned, and a row count footer."""
    cols = _columns(table)
    cells = [_cell_text(c) for c in cols]
    heads = table.column_names
    types = [t.lower() for t in types] if types else [type_name(c.type) for c in cols]
    widths = [max([len(h), len(t)] + [len(v) for v in cell]) for h, t, cell in zip(heads, types, cells)]
    numeric = [_is_number(c.type) for c in cols]

    def row(values, align_numbers=True):
        parts = [v.rjust(w) if (num and align_numbers) else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric)]
        return "│ " + " │ ".join(parts) + " │"

    line = lambda l, m, r: l + m.join("─" * (w + 2) for w in widths) + r  # noqa: E731
    out.write(line("┌", "┬", "┐") + "\n")
    out.write(row(heads, False) + "\n")
    out.write(row(types, False) + "\n")
    out.write(line("├", "┼", "┤") + "\n")
    for i in range(table.num_rows):
        out.write(row([cell[i] for cell in cells]) + "\n")
    out.write(line("└", "┴", "┘") + "\n")
    total = table.num_rows if total_rows is None else total_rows
    shown = f" ({table.num_rows} shown)" if total != table.num_rows else ""
    out.write(f"{total} row{'s' if total != 1 else ''}{shown}\n")


@output_format("vertical")
def write_vertical(table: pa.Table, out: TextIO, total_rows: int | None = None, types=None) -> None:
    cells = [_cell_text(c) for c in _columns(table)]
    width = max((len(n) for n in table.column_names), default=0)
    for i in range(table.num_rows):
        out.write(f"-[ row {i + 1} ]" + "-" * 20 + "\n")
        for name, cell in zip(table.column_names, cells):
            out.write(f"{name.ljust(width)} | {cell[i]}\n")


@output_format("csv")
def write_csv(table: pa.Table, out: TextIO, total_rows: int | None = None, types=None) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    cells = [[("" if v == "NULL" else v) for v in _cell_text(c)] for c in _columns(table)]
    for i in range(table.num_rows):
        writer.writerow([cell[i] for cell in cells])


def _records(table: pa.Table):
    values = [_json_values(c) for c in _columns(table)]
    names = table.column_names
    for i in range(table.num_rows):
        yield {n: v[i] for n, v in zip(names, values)}


@output_format("json")
def write_json(table: pa.Table, out: TextIO, total_rows: int | None = None, types=None) -> None:
    json.dump(list(_records(table)), out, default=str, indent=1)
    out.write("\n")


@output_format("jsonl")
def write_jsonl(table: pa.Table, out: TextIO, total_rows: int | None = None, types=None) -> None:
    for rec in _records(table):
        out.write(json.dumps(rec, default=str) + "\n")


@output_format("markdown")
def write_markdown(table: pa.Table, out: TextIO, total_rows: int | None = None, types=None) -> None:
    cols = _columns(table)
    cells = [[v.replace("|", "\\|") for v in _cell_text(c)] for c in cols]
    out.write("| " + " | ".join(table.column_names) + " |\n")
    out.write("|" + "|".join("---:" if _is_number(c.type) else "---" for c in cols) + "|\n")
    for i in range(table.num_rows):
        out.write("| " + " | ".join(cell[i] for cell in cells) + " |\n")


def write(table: pa.Table, out: TextIO, fmt: str = "table", total_rows: int | None = None,
          types: list[str] | None = None) -> None:
    """`types`: SQL type names to show (the table format); derived from Arrow types when absent."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}: one of {', '.join(FORMATS)}")
    FORMATS[fmt](table, out, total_rows, types)
