"""`.plot`: a line chart of a query's numeric columns over its time column.

The x axis is the first timestamp or date column (else the row number); every other numeric
column is a series on one shared y axis. The terminal chart draws with braille dots (2 x 4 per
character cell); `--png FILE` draws the same lines into a PNG with `cryptodb.png` (the canvas the
HTML report's charts use), so neither needs a plotting library.

Both go through `trace`, which turns a polyline of any number of points into one vertical span
per pixel column (the range the line covers there, joined to the neighbouring columns), so a
million rows cost a few numpy passes and at most a width's worth of Python.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .commands import UsageError

ANSI_COLORS = ("34", "31", "32", "33", "35", "36")  # blue, red, green, yellow, magenta, cyan
RGB_COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (23, 190, 207))
# Braille dot bits by (row 0-3, column 0-1) inside a cell.
_BRAILLE = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


@dataclass
class Chart:
    x: np.ndarray  # float64: nanoseconds for time, else the values or row numbers
    x_name: str
    x_is_time: bool
    series: list[tuple[str, np.ndarray]]  # float64, NaN where NULL

    @property
    def y_range(self) -> tuple[float, float]:
        finite = [s[np.isfinite(s)] for _, s in self.series]
        values = np.concatenate(finite) if finite else np.array([])
        if not values.size:
            raise UsageError("nothing to plot: every value is NULL")
        low, high = float(values.min()), float(values.max())
        if low == high:
            pad = abs(low) * 0.01 or 0.5
            low, high = low - pad, high + pad
        return low, high

    @property
    def x_range(self) -> tuple[float, float]:
        low, high = float(self.x.min()), float(self.x.max())
        return (low, high) if high > low else (low - 1, high + 1)


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def chart_from_table(table: pa.Table) -> Chart:
    if table.num_rows == 0:
        raise UsageError("nothing to plot: the query returned no rows")
    columns = {name: table.column(name).combine_chunks() for name in table.column_names}
    x_name = next((n for n, c in columns.items() if _is_time(c.type)), None)
    if x_name is not None:
        col = columns[x_name]
        tz = getattr(col.type, "tz", None)
        nanos = pc.cast(col, pa.timestamp("ns", tz=tz)).cast(pa.int64())
        x = nanos.to_numpy(zero_copy_only=False).astype(np.float64)
        keep = nanos.is_valid().to_numpy(zero_copy_only=False)
    else:
        x, keep = np.arange(table.num_rows, dtype=np.float64), np.ones(table.num_rows, bool)
    series = [(name, pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False))
              for name, col in columns.items() if name != x_name and _is_number(col.type)]
    if not series:
        raise UsageError("nothing to plot: the query has no numeric column")
    order = np.argsort(x[keep], kind="stable")
    return Chart(x[keep][order], x_name or "row", x_name is not None, [(n, s[keep][order]) for n, s in series])


def trace(xpix: np.ndarray, ypix: np.ndarray, width: int) -> list[tuple[int, int, int]]:
    """(column, top, bottom) spans drawing the line through points sorted by x; NaN breaks it."""
    valid = np.isfinite(ypix)
    if not valid.any():
        return []
    after_gap = np.r_[True, ~valid[:-1]][valid]  # a point right after a NULL starts a new line
    xs = np.clip(np.rint(xpix[valid]).astype(np.int64), 0, width - 1)
    ys = np.rint(ypix[valid]).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    lows, highs = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    firsts, lasts = ys[starts], ys[np.r_[starts[1:], len(ys)] - 1]
    spans, previous = [], None  # previous: (column, last y)
    for k, column in enumerate(xs[starts].tolist()):
        top, bottom = int(lows[k]), int(highs[k])
        if previous is not None and not after_gap[starts[k]]:
            col0, y0 = previous
            step = (int(firsts[k]) - y0) / (column - col0)
            for j in range(col0 + 1, column):  # columns the segment crosses without a point
                a, b = y0 + step * (j - 1 - col0), y0 + step * (j - col0)
                spans.append((j, round(min(a, b)), round(max(a, b))))
            edge = round(y0 + step * (column - 1 - col0))
            top, bottom = min(top, edge), max(bottom, edge)
        spans.append((column, top, bottom))
        previous = (column, int(lasts[k]))
    return spans


def _scaled(chart: Chart, width: int, height: int) -> list[tuple[str, list[tuple[int, int, int]]]]:
    (x0, x1), (y0, y1) = chart.x_range, chart.y_range
    xpix = (chart.x - x0) / (x1 - x0) * (width - 1)
    return [(name, trace(xpix, (y1 - ys) / (y1 - y0) * (height - 1), width)) for name, ys in chart.series]


def number_text(v: float) -> str:
    return f"{v:.6g}"


def x_text(chart: Chart, v: float) -> str:
    if not chart.x_is_time:
        return number_text(v)
    return datetime.fromtimestamp(v / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def render_terminal(chart: Chart, columns: int, lines: int, color: bool = False) -> str:
    y0, y1 = chart.y_range
    height = max(min(lines - 6, 20), 4)
    dot_rows = 4 * height
    mid_row = height // 2
    labels = {0: number_text(y1), height - 1: number_text(y0),
              mid_row: number_text(y1 - (4 * mid_row) / (dot_rows - 1) * (y1 - y0))}
    label_width = max(len(t) for t in labels.values())
    width = max(columns - label_width - 3, 10)
    cells = [[0] * width for _ in range(height)]
    owner = [[-1] * width for _ in range(height)]
    for index, (_, spans) in enumerate(_scaled(chart, 2 * width, dot_rows)):
        for column, top, bottom in spans:
            cx, dx = divmod(column, 2)
            for y in range(max(top, 0), min(bottom, dot_rows - 1) + 1):
                cy, dy = divmod(y, 4)
                cells[cy][cx] |= _BRAILLE[dy][dx]
                owner[cy][cx] = index

    def paint(text: str, index: int) -> str:
        return f"\x1b[{ANSI_COLORS[index % len(ANSI_COLORS)]}m{text}\x1b[0m" if color and index >= 0 else text

    out = []
    for r in range(height):
        axis = f"{labels[r].rjust(label_width)} ┤" if r in labels else f"{' ' * label_width} │"
        out.append(axis + "".join(paint(chr(0x2800 + cells[r][c]), owner[r][c]) if cells[r][c] else " "
                                  for c in range(width)))
    out.append(" " * label_width + " └" + "─" * width)
    left, right = x_text(chart, chart.x_range[0]), x_text(chart, chart.x_range[1])
    out.append(" " * (label_width + 2) + left + right.rjust(max(width - len(left), len(right) + 1)))
    legend = "  ".join(paint("━━", i) + f" {name}" for i, (name, _) in enumerate(chart.series))
    out.append(" " * (label_width + 2) + legend + f"  over {chart.x_name}")
    return "\n".join(out) + "\n"


def render_png(chart: Chart, path, width: int = 960, height: int = 480) -> None:
    from cryptodb.png import GLYPH_H, Canvas

    scale = 2
    text_height = GLYPH_H * scale
    canvas = Canvas(width, height)
    y0, y1 = chart.y_range
    ticks = [y1 - (y1 - y0) * k / 4 for k in range(5)]
    label_width = max(Canvas.text_width(number_text(v), scale) for v in ticks)
    left, right = label_width + 16, width - 16
    top, bottom = 20 + text_height + 12, height - (text_height + 20)
    plot_w, plot_h = right - left + 1, bottom - top + 1
    grid, axis, ink = (228, 228, 228), (90, 90, 90), (40, 40, 40)
    for k, v in enumerate(ticks):
        y = top + round(k * (plot_h - 1) / 4)
        canvas.rect(left, y, right + 1, y + 1, grid)
        label = number_text(v)
        canvas.text(left - 8 - Canvas.text_width(label, scale), y - text_height // 2, label, ink, scale)
    canvas.rect(left - 1, top, left, bottom + 2, axis)
    canvas.rect(left - 1, bottom + 1, right + 1, bottom + 2, axis)
    for index, (_, spans) in enumerate(_scaled(chart, plot_w, plot_h)):
        rgb = RGB_COLORS[index % len(RGB_COLORS)]
        for column, span_top, span_bottom in spans:  # two pixels wide, to be seen
            canvas.rect(left + column, top + span_top, min(left + column + 2, right + 1), top + span_bottom + 1, rgb)
    x_left, x_right = x_text(chart, chart.x_range[0]), x_text(chart, chart.x_range[1])
    canvas.text(left, bottom + 10, x_left, ink, scale)
    canvas.text(right - Canvas.text_width(x_right, scale), bottom + 10, x_right, ink, scale)
    x = left
    swatch = 20 + text_height // 2
    for index, (name, _) in enumerate(chart.series):
        canvas.rect(x, swatch - 2, x + 21, swatch + 2, RGB_COLORS[index % len(RGB_COLORS)])
        canvas.text(x + 28, 20, name, ink, scale)
        x += 28 + Canvas.text_width(name, scale) + 20
    Path(path).write_bytes(canvas.to_png())


_PNG_FIRST = re.compile(r"^--png\s+(\S+)\s+(.+)$", re.DOTALL)
_PNG_LAST = re.compile(r"^(.+?)\s+--png\s+(\S+)\s*;?\s*$", re.DOTALL)


def split_png_option(arg: str) -> tuple[str | None, str]:
    """`--png FILE QUERY` or `QUERY --png FILE` -> (FILE, QUERY); (None, arg) without the option."""
    m = _PNG_FIRST.match(arg.strip())
    if m:
        return m.group(1), m.group(2)
    m = _PNG_LAST.match(arg.strip())
    if m:
        return m.group(2), m.group(1)
    return None, arg


def plot_command(session, arg: str) -> None:
    png, query = split_png_option(arg)
    if not query.strip() or query.strip().startswith("--png"):
        raise UsageError("usage: .plot [--png FILE] QUERY")
    chart = chart_from_table(session.query(query))
    names = ", ".join(name for name, _ in chart.series)
    if png:
        render_png(chart, png)
        session.note(f"wrote {png}: {names} over {chart.x_name}, {len(chart.x):,} rows")
        return
    size = shutil.get_terminal_size()
    session.emit(render_terminal(chart, size.columns, size.lines, color=session.interactive), page=False)
