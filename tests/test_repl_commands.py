"""The REPL without a terminal: lines fed to a ReplSession, special commands, output, errors,
configuration, a locked catalog, and the `cryptodb repl` command on piped input.

Expected values come from references computed here (TA-Lib, numpy, DuckDB on the raw rows),
never from numbers copied out of the REPL's own output.
"""

import _thread
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import talib
from cryptodb.repl import config as repl_config
from cryptodb.repl.app import open_database
from cryptodb.repl.cancel import QueryCancelled, run_cancellable
from cryptodb.repl.catalog import load_snapshot
from cryptodb.repl.completion import suggest
from cryptodb.repl.config import ReplConfig, load_config
from cryptodb.repl.pager import pager_command, too_big
from cryptodb.repl.plot import Chart, chart_from_table, render_png, render_terminal, split_png_option
from cryptodb.repl.refresher import CatalogRefresher
from cryptodb.repl.session import ReplSession

import cryptodb

ROOT = Path(__file__).resolve().parent.parent
BTC = "SELECT ts, price FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts, seq"


@pytest.fixture(scope="module")
def market_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("repl") / "market.duckdb"
    with cryptodb.connect(path) as db:
        db.generate(symbols=["BTC-USD", "ETH-USD"], ticks=3000, seed=1)
    return path


@pytest.fixture(scope="module")
def btc_prices(market_db) -> np.ndarray:
    with cryptodb.connect(market_db, read_only=True) as db:
        return np.array([p for _, p in db.con.execute(BTC).fetchall()])


class Console:
    """A session on string streams, with helpers that feed lines and return what came out."""

    def __init__(self, db, settings=None, catalog=None):
        self.out, self.err = io.StringIO(), io.StringIO()
        self.session = ReplSession(db, settings or ReplConfig(), self.out, self.err, catalog=catalog)

    def run(self, *lines: str) -> tuple[str, str]:
        out_at, err_at = self.out.tell(), self.err.tell()
        for line in lines:
            self.session.feed_line(line)
        self.session.finish()
        return self.out.getvalue()[out_at:], self.err.getvalue()[err_at:]


@pytest.fixture
def console(market_db):
    with cryptodb.connect(market_db) as db:
        yield Console(db)


def boxed_rows(text: str) -> list[list[str]]:
    """Cells of a boxed table's data rows (the two header rows dropped)."""
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")]
    return rows[2:]


def as_float(cell: str) -> float:
    return np.nan if cell in ("NULL", "") else float(cell)


# -- queries and output modes --------------------------------------------------------------------------------
def test_kernel_query_over_several_lines_equals_talib(console, btc_prices):
    out, err = console.run(
        "SELECT ts, price,",
        "       rsi(price, 14) OVER w AS rsi",
        "FROM ticks WHERE symbol = 'BTC-USD'",
        "WINDOW w AS (ORDER BY ts, seq)",
        "ORDER BY ts, seq LIMIT 40;")
    rows = boxed_rows(out)
    assert len(rows) == 40
    got = np.array([as_float(r[2]) for r in rows])
    np.testing.assert_allclose(got, talib.RSI(btc_prices, 14)[:40], rtol=1e-9, equal_nan=True)
    names, types = ([c.strip() for c in line.strip("│").split("│")] for line in out.splitlines()[1:3])
    assert names == ["ts", "price", "rsi"]
    assert types == ["timestamp_ns", "double", "double"], "types under the names"
    assert "40 rows" in out
    assert "time " in err, "the timer is on by default"
    assert console.session.errors == 0


def test_numbers_are_right_aligned(console):
    out, _ = console.run("SELECT * FROM (VALUES (1, 'a'), (1000, 'bbbb')) t(n, s);")
    first, second = boxed_rows(out)
    lines = [line for line in out.splitlines() if line.startswith("│")][2:]
    one, thousand = lines[0].split("│")[1], lines[1].split("│")[1]
    assert one.strip() == "1" and thousand.strip() == "1000" and one.index("1") > thousand.index("1")
    assert len(one.rstrip()) == len(thousand.rstrip()), "numbers end in the same column"
    assert lines[0].split("│")[2].startswith(" a "), "text stays left-aligned"
    assert first == ["1", "a"] and second == ["1000", "bbbb"]


def test_csv_and_json_modes_give_the_kernel_values(console, btc_prices):
    query = ("SELECT ts, sma(price, 5) OVER (ORDER BY ts, seq) AS sma FROM ticks "
             "WHERE symbol = 'BTC-USD' ORDER BY ts, seq LIMIT 12;")
    reference = np.convolve(btc_prices[:12], np.ones(5) / 5, mode="valid")
    out, _ = console.run(".mode csv", query)
    lines = out.strip().splitlines()
    assert lines[0] == "ts,sma"
    got = np.array([as_float(line.split(",")[1]) for line in lines[1:]])
    assert np.isnan(got[:4]).all()
    np.testing.assert_allclose(got[4:], reference, rtol=1e-12)
    out, _ = console.run(".mode json", query)
    records = json.loads(out)
    np.testing.assert_allclose([r["sma"] for r in records[4:]], reference, rtol=1e-12)
    assert records[0]["sma"] is None and records[0]["ts"].startswith("20")


def test_other_modes_and_a_bad_one(console):
    out, _ = console.run(".mode markdown", "SELECT 1 AS a, 'x' AS b;")
    assert out.splitlines()[:2] == ["| a | b |", "|---:|---|"]
    out, _ = console.run(".mode vertical", "SELECT 1 AS a, 'x' AS b;")
    assert "a | 1" in out and "b | x" in out
    out, _ = console.run(".mode jsonl", "SELECT 1 AS a;")
    assert json.loads(out) == {"a": 1}
    _, err = console.run(".mode html")
    assert ".mode is one of table, csv" in err
    assert console.session.settings.mode == "jsonl", "a bad .mode changes nothing"


def test_display_row_cap_keeps_the_total(console):
    out, err = console.run(".maxrows 5", "SELECT * FROM range(123);")
    assert len(boxed_rows(out)) == 5
    assert "123 rows (5 shown)" in out
    out, err = console.run(".mode csv", "SELECT * FROM range(123);")
    assert len(out.strip().splitlines()) == 6 and "5 of 123 rows shown" in err
    console.run(".maxrows 0", ".mode table")
    out, _ = console.run("SELECT * FROM range(123);")
    assert len(boxed_rows(out)) == 123


def test_timer_on_and_off(console):
    _, err = console.run(".timer off", "SELECT 1;")
    assert "time" not in err.replace("timer", "")
    _, err = console.run(".timer on", "SELECT 1;")
    assert "time " in err


# -- errors --------------------------------------------------------------------------------------------------
def test_parse_errors_show_a_caret_and_the_session_goes_on(console):
    _, err = console.run("SELEC price FROM ticks;")
    assert 'syntax error at or near "SELEC"' in err
    line, caret = [x for x in err.splitlines() if x.startswith("LINE") or x.strip().startswith("^")][:2]
    assert caret.index("^") == line.index("SELEC")
    _, err = console.run("SELECT pric", "FROM ticks;")
    lines = err.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("LINE 1:"))
    assert lines[at + 1].index("^") == lines[at].index("pric")
    out, err = console.run("SELECT 6 * 7 AS answer;")
    assert boxed_rows(out) == [["42"]]
    assert console.session.errors == 2


def test_kernel_errors_and_unknown_commands(console):
    _, err = console.run("SELECT rsi(price, 1) OVER (ORDER BY ts) FROM ticks;")
    assert "rsi" in err and "n" in err
    _, err = console.run(".nonsense")
    assert "no command '.nonsense'" in err
    _, err = console.run(".kernels not_a_kernel")
    assert "no kernel 'not_a_kernel'" in err


# -- catalog commands ----------------------------------------------------------------------------------------
def test_tables_and_dt_agree(console):
    tables, _ = console.run(".tables")
    dt, _ = console.run("\\dt")
    assert tables == dt
    names = {row[0]: row[1] for row in boxed_rows(tables)}
    assert names["ticks"] == "view" and "trades" in names
    assert not any(n.startswith("cryptodb_") for n in names)


def test_schema_and_describe(console):
    out, _ = console.run(".schema")
    assert "CREATE VIEW ticks AS SELECT" in out
    one, _ = console.run(".schema ticks")
    short, _ = console.run("\\d ticks")
    assert one == short
    columns = {row[0]: row[1] for row in boxed_rows(one)}
    assert columns["ts"] == "TIMESTAMP_NS" and columns["price"] == "DOUBLE"
    _, err = console.run(".schema nope")
    assert "nope" in err


def test_kernels_list_and_one_in_full(console):
    out, _ = console.run(".kernels")
    names = [row[0] for row in boxed_rows(out)]
    assert {"rsi", "macd", "midprice"} <= set(names)
    assert len(names) == len(cryptodb.kernels())
    out, _ = console.run(".kernels rsi")
    assert out.strip() == cryptodb.describe_kernel("rsi").strip()


def test_symbols_with_counts(console, market_db):
    out, _ = console.run(".symbols")
    with cryptodb.connect(market_db, read_only=True) as db:
        expected = dict(db.con.execute("SELECT symbol, count(*) FROM ticks GROUP BY 1").fetchall())
    assert {row[0]: int(row[1]) for row in boxed_rows(out)} == expected


def test_ddl_refreshes_the_completion_catalog(market_db):
    with cryptodb.connect(market_db) as db:
        cursor = db.con.cursor()
        refresher = CatalogRefresher(lambda: load_snapshot(cursor, db)).start()
        try:
            assert refresher.wait(30)
            assert "ticks" in refresher.snapshot.tables and "BTC-USD" in refresher.snapshot.symbols
            assert "rsi" in refresher.snapshot.kernels and "abs" in refresher.snapshot.functions
            assert "fills_for_repl_test" not in refresher.snapshot.tables
            console = Console(db, catalog=refresher)
            console.run("CREATE TABLE fills_for_repl_test AS SELECT 1 AS fill_qty, 2.5 AS fill_px;")
            assert refresher.wait(30)
            names = [s.text for s in suggest("SELECT fill", refresher.snapshot, " FROM fills_for_repl_test")]
            assert names[:2] == ["fill_px", "fill_qty"], "the new table's columns, first"
            console.run("DROP TABLE fills_for_repl_test;")
            assert refresher.wait(30)
            assert "fills_for_repl_test" not in refresher.snapshot.tables
        finally:
            refresher.stop()
            cursor.close()


# -- files and scripts ---------------------------------------------------------------------------------------
def test_once_writes_every_row_of_the_next_result(console, tmp_path):
    target = tmp_path / "out.csv"
    out, err = console.run(".maxrows 3", ".mode csv", f".once {target}", "SELECT range AS n FROM range(10);")
    assert out == "" and f"wrote {target}" in err
    assert target.read_text().split() == ["n"] + [str(i) for i in range(10)]
    out, _ = console.run("SELECT 1 AS again;")
    assert out.split() == ["again", "1"], "only the next result goes to the file"


def test_read_runs_sql_and_commands(console, tmp_path):
    script = tmp_path / "batch.sql"
    script.write_text(".mode csv\nSELECT 40 + 2\n  AS answer;\n-- a comment\nSELECT 'done' AS status;\n")
    out, _ = console.run(f".read {script}")
    assert out.split() == ["answer", "42", "status", "done"]
    out, _ = console.run(f"\\i {script}")
    assert out.split() == ["answer", "42", "status", "done"]
    _, err = console.run(f".read {tmp_path}/missing.sql")
    assert "cannot read" in err


def test_run_a_script_with_parameters(console, tmp_path):
    script = tmp_path / "mine.sql"
    script.write_text("SET VARIABLE n = coalesce(getvariable('n'), 1);\n"
                      "SELECT getvariable('n') * 2 AS doubled, '${label:-none}' AS label;\n")
    out, _ = console.run(".mode csv", f".run {script} n=21 label=hello")
    assert out.split() == ["doubled,label", "42,hello"]


def test_edit_puts_the_edited_text_at_the_next_prompt(console, tmp_path, monkeypatch):
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'a').write(' LIMIT 3;')\n")
    monkeypatch.setenv("VISUAL", f"{sys.executable} {editor}")
    console.run("SELECT * FROM ticks;")
    console.run(".edit")
    assert console.session.next_input == "SELECT * FROM ticks; LIMIT 3;"
    saved = tmp_path / "q.sql"
    saved.write_text("SELECT 1")
    console.run(f"\\e {saved}")
    assert console.session.next_input == "SELECT 1 LIMIT 3;"


def test_quit_stops_reading(console):
    console.session.run_text(".mode csv\nSELECT 1 AS a;\n.quit\nSELECT 2 AS b;\n")
    assert console.out.getvalue().split() == ["a", "1"] and console.session.quit_requested


# -- plots ---------------------------------------------------------------------------------------------------
def _png_pixels(path: Path) -> tuple[int, int, np.ndarray]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, width, height = 8, b"", 0, 0
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return width, height, raw[:, 1:].reshape(height, width, 3)


def test_plot_png_draws_the_series_where_the_data_is(console, tmp_path):
    target = tmp_path / "chart.png"
    _, err = console.run(f".plot --png {target} SELECT TIMESTAMP '2026-01-01' + INTERVAL (i) MINUTE AS t, "
                         "i * 1.0 AS up, 100.0 - i AS down FROM range(101) r(i)")
    assert f"wrote {target}" in err and "up, down over t" in err
    width, height, pixels = _png_pixels(target)
    assert (width, height) == (960, 480)
    up = np.argwhere((pixels == (31, 119, 180)).all(axis=2))  # the first series' colour
    down = np.argwhere((pixels == (214, 39, 40)).all(axis=2))
    assert len(up) > 500 and len(down) > 500
    plot_rows = up[up[:, 1] > 200]  # leave the legend's swatch out
    left, right = plot_rows[plot_rows[:, 1] < 300], plot_rows[plot_rows[:, 1] > 800]
    assert left[:, 0].mean() > right[:, 0].mean(), "a rising series ends higher (smaller y)"
    down_rows = down[down[:, 1] > 200]
    assert down_rows[down_rows[:, 1] < 300][:, 0].mean() < down_rows[down_rows[:, 1] > 800][:, 0].mean()


def test_plot_in_the_terminal(console, btc_prices):
    out, err = console.run(".plot SELECT ts, price FROM ticks WHERE symbol = 'BTC-USD'")
    assert err == ""
    lines = out.splitlines()
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in out), "braille dots"
    assert lines[0].split("┤")[0].strip() == f"{btc_prices.max():.6g}"
    bottom = next(line for line in lines if "└" in line)
    assert lines[lines.index(bottom) - 1].split("┤")[0].strip() == f"{btc_prices.min():.6g}"
    assert "price" in lines[-1] and "over ts" in lines[-1]
    _, err = console.run(".plot SELECT 'a' AS s")
    assert "no numeric column" in err


def test_terminal_chart_puts_each_point_in_its_cell():
    chart = Chart(np.arange(3, dtype=float), "row", False, [("v", np.array([0.0, np.nan, 1.0]))])
    text = render_terminal(chart, columns=20, lines=10)
    rows = text.splitlines()[:4]
    assert rows[0].split("┤")[1].rstrip()[-1] != " ", "the high point is in the top row, last column"
    assert rows[3].split("┤")[1][0] != " ", "the low point is in the bottom row, first column"
    assert set(rows[1].split("│")[1]) == {" "}, "a NULL breaks the line: nothing in between"


def test_chart_uses_the_first_time_column_and_numeric_columns():
    table = pa.table({"name": ["a", "b", "c"], "day": pa.array([2, 0, 1], pa.date32()),
                      "v": [3, None, 5], "w": [0.5, 1.5, 2.5]})
    chart = chart_from_table(table)
    assert chart.x_name == "day" and [n for n, _ in chart.series] == ["v", "w"]
    np.testing.assert_array_equal(chart.x, np.array([0, 1, 2]) * 86_400e9)
    np.testing.assert_array_equal(chart.series[1][1], [1.5, 2.5, 0.5])
    assert np.isnan(chart.series[0][1][0])
    assert split_png_option("SELECT 1 --png a.png") == ("a.png", "SELECT 1")
    assert split_png_option("--png a.png SELECT 1") == ("a.png", "SELECT 1")


def test_png_of_a_flat_series(tmp_path):
    chart = Chart(np.arange(5, dtype=float), "row", False, [("flat", np.full(5, 7.0))])
    render_png(chart, tmp_path / "flat.png", width=200, height=100)
    width, height, _ = _png_pixels(tmp_path / "flat.png")
    assert (width, height) == (200, 100)


# -- watch and Ctrl-C ----------------------------------------------------------------------------------------
def test_watch_reruns_the_query(console):
    console.session.watch_runs = 3
    out, err = console.run(".mode csv", "watch 0.05 SELECT count(*) AS n FROM ticks WHERE symbol = 'BTC-USD'")
    assert out.split().count("n") == 3
    assert err.count("every 0.05 s") == 3
    _, err = console.run("watch soon SELECT 1")
    assert "usage: watch SECONDS QUERY" in err


def _interrupt_main_once_a_query_runs() -> None:
    """Ctrl-C as the terminal sends it (KeyboardInterrupt in the main thread), but only once the
    query's worker thread runs, so that it cannot land anywhere else in the test."""

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(t.name == "cryptodb-query" for t in threading.enumerate()):
                time.sleep(0.3)
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()


def test_ctrl_c_cancels_a_running_query_and_the_connection_stays_usable(console):
    _interrupt_main_once_a_query_runs()
    started = time.perf_counter()
    _, err = console.run("SELECT sum(a.range * b.range) FROM range(1000000000) a, range(1000000000) b;")
    assert "cancelled" in err and time.perf_counter() - started < 30
    out, _ = console.run(".mode csv", "SELECT 6 * 7 AS answer;")
    assert out.split() == ["answer", "42"]


def test_cancel_repeats_the_interrupt_until_the_work_stops():
    interrupts = []
    stop = threading.Event()

    def work():
        time.sleep(0.2)  # be sure the caller is waiting
        _thread.interrupt_main()
        if not stop.wait(10):
            return "finished"
        raise RuntimeError("interrupted")

    def interrupt():
        interrupts.append(time.perf_counter())
        if len(interrupts) == 3:  # the first interrupts land where nothing can be stopped
            stop.set()

    with pytest.raises(QueryCancelled):
        run_cancellable(work, interrupt, poll_seconds=0.01)
    assert len(interrupts) >= 3


# -- configuration -------------------------------------------------------------------------------------------
def test_config_search_order(tmp_path):
    user = tmp_path / "xdg" / "cryptodb"
    user.mkdir(parents=True)
    (user / "config.toml").write_text("[repl]\nmax_rows = 10\nkey_bindings = 'vi'\nstyle = 'monokai'\n")
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.cryptodb.repl]\nmax_rows = 20\ntimer = false\n")
    (project / "cryptodb.toml").write_text("[repl]\nmax_rows = 30\nstartup_sql = ['SET threads = 1;']\n"
                                           "pager = false\nbogus = 1\nmode = 'xml'\n")
    config = load_config(project / "sub", {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert config.max_rows == 30, "cryptodb.toml wins over pyproject.toml, which wins over the user file"
    assert config.timer is False and config.key_bindings == "vi" and config.style == "monokai"
    assert config.startup_sql == "SET threads = 1;" and config.pager == ""
    assert config.mode == "table"
    assert any("unknown setting 'bogus'" in w for w in config.warnings)
    assert any("mode is one of" in w for w in config.warnings)
    assert len(config.sources) == 3


def test_config_without_a_toml_reader_is_skipped_with_a_warning(tmp_path, monkeypatch):
    (tmp_path / "cryptodb.toml").write_text("[repl]\nmax_rows = 5\n")
    monkeypatch.setattr(repl_config, "_toml_loader", lambda: None)
    config = load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert config.max_rows == 1000 and "tomli" in config.warnings[0]


def test_state_and_pager_locations():
    assert repl_config.history_path({"XDG_STATE_HOME": "/s"}) == Path("/s/cryptodb/history")
    assert repl_config.history_path({"HOME": "/h"}) == Path("/h/.local/state/cryptodb/history")
    assert pager_command(None, {"CRYPTODB_PAGER": "more"}) == "more"
    assert pager_command("most", {"CRYPTODB_PAGER": ""}) is None, "an empty CRYPTODB_PAGER turns it off"
    assert pager_command("most", {}) == "most"
    assert pager_command("", {}) is None
    assert too_big("a\n" * 30, columns=80, lines=24) and not too_big("a\n" * 10, columns=80, lines=24)
    assert too_big("x" * 81 + "\n", columns=80, lines=24)


def test_startup_sql_runs_first(market_db):
    with cryptodb.connect(market_db) as db:
        console = Console(db)
        console.session.run_text("SET VARIABLE greeting = 'hi';\n.mode csv")
        out, _ = console.run("SELECT getvariable('greeting') AS g;")
        assert out.split() == ["g", "hi"]


# -- a locked catalog ----------------------------------------------------------------------------------------
def _hold(path: Path, read_only: bool) -> subprocess.Popen:
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == '1'); "
            "print('ready', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path), "1" if read_only else "0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_a_locked_catalog_names_the_holder_and_offers_read_only(tmp_path):
    path = tmp_path / "locked.duckdb"
    cryptodb.connect(path).close()
    holder = _hold(path, read_only=True)
    try:
        err, asked = io.StringIO(), []
        db = open_database(path, False, lambda question: asked.append(question) or True, err)
        assert db is not None and db.read_only
        db.close()
        assert f"locked by process {holder.pid}" in err.getvalue()
        assert asked and "read-only" in asked[0]
        err = io.StringIO()
        assert open_database(path, False, None, err) is None, "without a terminal nobody is asked"
        assert "--read-only" in err.getvalue()
    finally:
        holder.communicate("")
    writer = _hold(path, read_only=False)
    try:
        err = io.StringIO()
        assert open_database(path, False, lambda question: True, err) is None
        assert "readers cannot open it while a writer holds it" in err.getvalue()
    finally:
        writer.communicate("")


# -- the command itself --------------------------------------------------------------------------------------
def _repl(db_path: Path, text: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "cryptodb", "--db", str(db_path), "repl", *args], input=text,
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)


def test_piped_input_prints_results_on_stdout_and_the_rest_on_stderr(market_db, tmp_path):
    proc = _repl(market_db, ".mode csv\nSELECT symbol, count(*) AS n\nFROM ticks GROUP BY 1 ORDER BY 1;\n", tmp_path,
                 "--read-only")
    assert proc.returncode == 0, proc.stderr
    with cryptodb.connect(market_db, read_only=True) as db:
        expected = db.con.execute("SELECT symbol, count(*) FROM ticks GROUP BY 1 ORDER BY 1").fetchall()
    assert proc.stdout.split() == ["symbol,n"] + [f"{s},{n}" for s, n in expected]
    assert "time " in proc.stderr
    failed = _repl(market_db, "SELECT nope;\nSELECT 1 AS ok;\n", tmp_path, "-r")
    assert failed.returncode == 1 and "nope" in failed.stderr and "ok" in failed.stdout


def test_the_repl_path_keeps_heavy_imports_away():
    code = (
        "import sys, cryptodb, cryptodb.cli\n"
        "cryptodb.cli.build_parser()\n"
        "assert 'prompt_toolkit' not in sys.modules, 'the CLI imports prompt_toolkit only for repl'\n"
        "import cryptodb.repl.app, cryptodb.repl.prompt\n"
        "heavy = sorted({'numba', 'sqlglot', 'matplotlib', 'pandas'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=120)
    assert proc.returncode == 0, proc.stderr
