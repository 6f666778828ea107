"""The backtest report: one self-contained HTML file (inline SVG, no script, no link) and a PNG of
its charts, made from the tables `sql/backtest.sql` stores (backtest_equity, backtest_metrics).

A script asks for it in SQL, so a user's copy of the script keeps or drops it like any other line:

    SELECT backtest_report('report.html', 'results/', 'fees 5 bps') AS report;

`backtest_report(path, out, settings)` is a scalar function every Database registers on its
connection. It reads the stored tables from the Parquet store (a separate in-memory DuckDB, so
the query that calls it is not disturbed), writes `path` and `path` with `.png`, copies the three
tables to `out/*.parquet` when `out` is given, and returns the report's path (what the script
prints last). An empty `path` means "beside the database file" (`crypto.duckdb` ->
`crypto.backtest.html`); an in-memory database without a path gets no report (NULL).
"""

from __future__ import annotations

import html
import logging
import math
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("cryptodb")

TABLES = ("backtest_trades", "backtest_equity", "backtest_metrics")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
# (column, heading, format) of the per-market table, in order.
METRIC_COLUMNS = (
    ("trades", "trades", "int"), ("total_return", "return", "pct"), ("annualized_return", "annualised", "pct"),
    ("sharpe", "Sharpe", "ratio"), ("sortino", "Sortino", "ratio"), ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "max drawdown", "pct"), ("max_drawdown_seconds", "drawdown duration", "duration"),
    ("win_rate", "win rate", "pct"), ("profit_factor", "profit factor", "ratio"),
    ("expectancy", "expectancy", "money"), ("fees", "fees", "money"), ("turnover", "turnover", "ratio"),
    ("exposure", "exposure", "pct"), ("final_equity", "final equity", "money"),
)


def register(con, store, db_path: Path | None) -> None:
    """Make `backtest_report(path, out, settings)` callable on `con`."""
    import duckdb

    def backtest_report(path, out, settings):
        return write_backtest_report(store, _report_path(path, db_path), out or None, settings or "")

    varchar = duckdb.sqltype("VARCHAR")
    con.create_function("backtest_report", backtest_report, [varchar, varchar, varchar], varchar,
                        null_handling="special", side_effects=True)


def _report_path(given: str | None, db_path: Path | None) -> Path | None:
    if given:
        return Path(given).expanduser()
    if db_path is None:
        return None
    return db_path.with_name(db_path.stem + ".backtest.html")


def write_backtest_report(store, path: Path | None, out: str | None = None, settings: str = "") -> str | None:
    """Write the HTML report (and its PNG) from the stored backtest tables; return the HTML path."""
    import duckdb

    con = duckdb.connect()
    try:
        if out:
            _export(con, store, Path(out).expanduser())
        if path is None:
            log.warning("backtest report not written: an in-memory database needs --param report=PATH")
            return None
        equity = _read(con, store, "backtest_equity", "exchange, symbol, ts")
        metrics = _read(con, store, "backtest_metrics", "exchange = 'ALL', exchange, symbol")
    finally:
        con.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(equity, metrics, settings), encoding="utf-8")
    path.with_suffix(".png").write_bytes(render_png(equity))
    return str(path)


def _read(con, store, table: str, order: str) -> list[dict]:
    glob = store.glob(table).replace("'", "''")
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = false) ORDER BY {order}")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def _export(con, store, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        glob = store.glob(table).replace("'", "''")
        target = str(folder / f"{table}.parquet").replace("'", "''")
        con.execute(f"COPY (SELECT * FROM read_parquet('{glob}', hive_partitioning = false)) "
                    f"TO '{target}' (FORMAT parquet)")


# -- HTML --------------------------------------------------------------------------------------------
def render_html(equity: list[dict], metrics: list[dict], settings: str = "") -> str:
    overall = [r for r in equity if r["exchange"] == "ALL"]
    markets = _series_by_market(equity)
    total = next((m for m in metrics if m["exchange"] == "ALL"), None)
    times = [_epoch(r["ts"]) for r in overall]
    charts = [
        ("Equity, all markets", _svg_chart([("ALL", times, [r["equity"] for r in overall], PALETTE[0])],
                                           _money, area=False)),
        ("Drawdown, all markets", _svg_chart([("ALL", times, [100 * r["drawdown"] for r in overall], "#d62728")],
                                             lambda v: f"{v:.1f}%", area=True, height=200)),
        ("Return per market", _svg_chart(
            [(name, [_epoch(r["ts"]) for r in rows], [100 * (r["equity"] / rows[0]["equity"] - 1) for r in rows],
              PALETTE[i % len(PALETTE)]) for i, (name, rows) in enumerate(markets.items())],
            lambda v: f"{v:.1f}%", legend=True)),
    ]
    cards = ""
    if total:
        cards = "".join(
            f'<div class="card"><div class="label">{html.escape(label)}</div>'
            f'<div class="value">{_fmt(total.get(column), kind)}</div></div>'
            for column, label, kind in (("total_return", "total return", "pct"),
                                        ("annualized_return", "annualised", "pct"), ("sharpe", "Sharpe", "ratio"),
                                        ("sortino", "Sortino", "ratio"), ("max_drawdown", "max drawdown", "pct"),
                                        ("trades", "trades", "int"), ("win_rate", "win rate", "pct"),
                                        ("profit_factor", "profit factor", "ratio")))
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in METRIC_COLUMNS)
    rows = "".join(
        f'<tr class="{"total" if m["exchange"] == "ALL" else ""}"><td>{html.escape(str(m["exchange"]))}</td>'
        f'<td>{html.escape(str(m["symbol"]))}</td>'
        + "".join(f"<td>{_fmt(m.get(c), kind)}</td>" for c, _, kind in METRIC_COLUMNS) + "</tr>"
        for m in metrics)
    span = ""
    if times:
        span = f"{_time_text(times[0])} to {_time_text(times[-1])} UTC, {len(markets)} market(s)"
    sections = "".join(f"<h2>{html.escape(title)}</h2>{svg}" for title, svg in charts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cryptodb backtest</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} .sub {{ color: #666; margin-top: 0; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1.2em 0; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.9em; min-width: 7em; }}
.card .label {{ color: #666; font-size: 0.8em; }} .card .value {{ font-size: 1.3em; font-weight: 600; }}
table {{ border-collapse: collapse; font-size: 0.85em; width: 100%; }}
th, td {{ padding: 0.3em 0.5em; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }}
tr.total td {{ font-weight: 600; border-top: 2px solid #999; }}
svg {{ width: 100%; height: auto; }} .settings {{ color: #555; font-size: 0.85em; }}
</style></head><body>
<h1>Backtest</h1><p class="sub">{html.escape(span)}</p>
<p class="settings">{html.escape(settings)}</p>
<div class="cards">{cards}</div>
{sections}
<h2>Per market</h2>
<table><thead><tr><th>exchange</th><th>symbol</th>{head}</tr></thead><tbody>{rows}</tbody></table>
<p class="settings">Sharpe and Sortino: returns of equity sampled at a fixed interval, annualised; drawdowns on
the same samples; annualised return over the calendar time from the first to the last tick.</p>
</body></html>
"""


def _series_by_market(equity: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in equity:
        if r["exchange"] != "ALL":
            out.setdefault(f"{r['exchange']} {r['symbol']}", []).append(r)
    return out


def _svg_chart(series, y_format, area: bool = False, legend: bool = False, width: int = 1000,
               height: int = 320) -> str:
    """A line chart: series = [(label, xs, ys, color)], xs in epoch seconds."""
    left, right, top, bottom = 80, 20 + (170 if legend else 0), 12, 30
    xs_all = [x for _, xs, _, _ in series for x in xs]
    ys_all = [y for _, _, ys, _ in series for y in ys if y is not None and math.isfinite(y)]
    if not xs_all or not ys_all:
        return '<p class="settings">(no data)</p>'
    x0, x1 = min(xs_all), max(xs_all)
    y_ticks = nice_ticks(min(ys_all + ([0.0] if area else [])), max(ys_all + ([0.0] if area else [])))
    y0, y1 = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x):
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def py(y):
        return top + (y1 - y) / ((y1 - y0) or 1) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'font-family="sans-serif" font-size="11">']
    for t in y_ticks:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#555">'
                     f'{html.escape(y_format(t))}</text>')
    for t in time_ticks(x0, x1):
        parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{height - bottom}" stroke="#f3f3f3"/>'
                     f'<text x="{px(t):.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">'
                     f'{_time_text(t, short=True)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>')
    for i, (label, xs, ys, color) in enumerate(series):
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys) if y is not None)
        if area and points:
            base = py(0.0)
            parts.append(f'<polygon points="{px(xs[0]):.1f},{base:.1f} {points} {px(xs[-1]):.1f},{base:.1f}" '
                         f'fill="{color}" fill-opacity="0.25" stroke="none"/>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        if legend:
            ly = top + 14 * i + 8
            parts.append(f'<line x1="{width - right + 12}" x2="{width - right + 30}" y1="{ly}" y2="{ly}" '
                         f'stroke="{color}" stroke-width="2"/><text x="{width - right + 36}" y="{ly + 4}">'
                         f'{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- PNG ---------------------------------------------------------------------------------------------
def render_png(equity: list[dict], width: int = 1000, height: int = 620) -> bytes:
    """Equity and drawdown of all markets together, as a PNG."""
    from cryptodb.png import Canvas

    canvas = Canvas(width, height)
    overall = [r for r in equity if r["exchange"] == "ALL"]
    xs = [_epoch(r["ts"]) for r in overall]
    panels = (("EQUITY, ALL MARKETS", [r["equity"] for r in overall], _money, (31, 119, 180), False, 20, 360),
              ("DRAWDOWN", [100 * r["drawdown"] for r in overall], lambda v: f"{v:.1f}%", (214, 39, 40), True,
               400, 580))
    for title, ys, y_format, color, area, top, bottom in panels:
        _png_panel(canvas, title, xs, ys, y_format, color, area, top, bottom)
    return canvas.to_png()


def _png_panel(canvas, title, xs, ys, y_format, color, area, top, bottom) -> None:
    left, right = 90, canvas.width - 20
    canvas.text(left, top - 14, title, scale=1)
    grey, light = (200, 200, 200), (238, 238, 238)
    if not xs:
        return
    y_ticks = nice_ticks(min(ys + ([0.0] if area else [])), max(ys + ([0.0] if area else [])))
    y0, y1 = y_ticks[0], y_ticks[-1]
    x0, x1 = xs[0], xs[-1]

    def px(x):
        return left + (x - x0) / ((x1 - x0) or 1) * (right - left)

    def py(y):
        return top + (y1 - y) / ((y1 - y0) or 1) * (bottom - top)

    for t in y_ticks:
        canvas.line(left, py(t), right, py(t), light)
        label = y_format(t).upper()
        canvas.text(left - 8 - canvas.text_width(label), int(py(t)) - 3, label)
    for t in time_ticks(x0, x1):
        canvas.line(px(t), top, px(t), bottom, light)
        label = _time_text(t, short=True)
        x = min(max(int(px(t)) - canvas.text_width(label) // 2, left), right - canvas.text_width(label))
        canvas.text(x, bottom + 6, label)
    if area:
        canvas.fill_between([px(x) for x in xs], [py(y) for y in ys], py(0.0), (244, 190, 190))
    canvas.polyline([px(x) for x in xs], [py(y) for y in ys], color, width=2)
    for x_a, y_a, x_b, y_b in ((left, top, right, top), (left, bottom, right, bottom), (left, top, left, bottom),
                               (right, top, right, bottom)):
        canvas.line(x_a, y_a, x_b, y_b, grey)


# -- axes and numbers --------------------------------------------------------------------------------
def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.01 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = [first]
    while ticks[-1] < hi - 1e-12 * step:
        ticks.append(first + len(ticks) * step)
    return ticks


_TIME_STEPS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400,
               7 * 86400, 30 * 86400, 91 * 86400, 365 * 86400)


def time_ticks(x0: float, x1: float, most: int = 8) -> list[float]:
    """Tick times (epoch seconds) on a round step, at most `most` of them inside [x0, x1]."""
    span = max(x1 - x0, 1e-9)
    step = next((s for s in _TIME_STEPS if span / s <= most), _TIME_STEPS[-1])
    first = math.ceil(x0 / step) * step
    return [first + i * step for i in range(int((x1 - first) // step) + 1)]


def _epoch(ts) -> float:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def _time_text(seconds: float, short: bool = False) -> str:
    t = datetime.fromtimestamp(seconds, timezone.utc)
    return t.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def _money(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "money":
        return html.escape(_money(value))
    if kind == "duration":
        return _duration(value)
    return html.escape(str(value))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
