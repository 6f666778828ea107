"""Every CLI command, as a user runs it: the real `python -m cryptodb` in a child process for the
exit-code and stream contracts, in-process `main()` where only the output matters."""

import csv
import io
import json

import pytest
from conftest import BASE_NS, make_ticks, run_cli

import cryptodb
from cryptodb.cli import main


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(db_path):
    with cryptodb.connect(db_path) as db:
        db.insert_ticks(make_ticks(40))
        db.insert_ticks(make_ticks(10, "ETH-USD", seed=5))
    return db_path


def test_init_creates_catalog_and_data_folder(db_path):
    proc = run_cli("init", "--db", str(db_path), check=True)
    assert "created" in proc.stderr and proc.stdout == ""
    assert db_path.exists() and (db_path.with_suffix(".data") / "ticks").is_dir()
    again = run_cli("--db", str(db_path), "init", check=True)
    assert "opened existing" in again.stderr


def test_default_database_from_environment(tmp_path, capsys, monkeypatch):
    target = tmp_path / "env.duckdb"
    monkeypatch.setenv("CRYPTODB_DB", str(target))
    assert cli(capsys, "init")[0] == 0
    assert target.exists()


def test_sql_formats(filled, capsys):
    q = "SELECT symbol, count(*) AS n, min(ts) AS first FROM ticks GROUP BY symbol ORDER BY symbol"
    code, out, _ = cli(capsys, "sql", q, "--db", str(filled), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["symbol"], r["n"]) for r in rows] == [("BTC-USD", "40"), ("ETH-USD", "10")]
    assert rows[0]["first"] == "2026-01-01 00:00:00.000000000"
    _, out, _ = cli(capsys, "sql", q, "--db", str(filled), "--format", "json")
    assert json.loads(out)[1] == {"symbol": "ETH-USD", "n": 10, "first": "2026-01-01T00:00:00.000000000"}
    _, out, _ = cli(capsys, "sql", q, "--db", str(filled), "--format", "jsonl")
    assert [json.loads(line)["n"] for line in out.splitlines()] == [40, 10]
    _, out, _ = cli(capsys, "sql", q, "--db", str(filled), "--format", "markdown")
    assert out.splitlines()[0] == "| symbol | n | first |" and out.splitlines()[1] == "|---|---:|---|"
    _, out, _ = cli(capsys, "sql", q, "--db", str(filled))
    lines = out.splitlines()
    assert "varchar" in lines[2] and "bigint" in lines[2] and lines[-1] == "2 rows"
    assert "│     40 │" in out  # numbers right-aligned under the 6-wide 'bigint' heading


def test_sql_table_output_caps_rows_and_says_so(filled, capsys):
    _, out, _ = cli(capsys, "sql", "SELECT * FROM range(5000)", "--db", str(filled))
    assert out.splitlines()[-1] == "5000 rows (1000 shown)"
    _, out, _ = cli(capsys, "sql", "SELECT * FROM range(5000)", "--db", str(filled), "--format", "csv")
    assert len(out.splitlines()) == 5001


def test_sql_nanoseconds_survive_to_output(filled, capsys):
    _, out, _ = cli(capsys, "sql", "SELECT ts FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts LIMIT 2 OFFSET 1",
                    "--db", str(filled), "--format", "csv")
    assert out.splitlines()[1] == "2026-01-01 00:00:00.001000003"


def test_errors_are_one_line_with_nonzero_exit(filled):
    proc = run_cli("sql", "SELEC 1", "--db", str(filled))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("cryptodb: error: Parser Error") and len(proc.stderr.splitlines()) == 1
    debug = run_cli("--debug", "sql", "SELEC 1", "--db", str(filled))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_read_only_sql_cannot_write(filled, capsys):
    code, _, err = cli(capsys, "sql", "CREATE TABLE x AS SELECT 1", "--db", str(filled), "--read-only")
    assert code == 1 and "read-only" in err.lower()


def test_run_script_by_path_and_name_with_params(filled, tmp_path, capsys):
    script = tmp_path / "top.sql"
    script.write_text("SET VARIABLE k = coalesce(getvariable('k'), 1);\n"
                      "SELECT symbol FROM ticks GROUP BY symbol ORDER BY count(*) DESC LIMIT getvariable('k');")
    code, out, _ = cli(capsys, "run", str(script), "--db", str(filled), "--format", "csv")
    assert code == 0 and out.splitlines() == ["symbol", "BTC-USD"]
    _, out, _ = cli(capsys, "run", str(script), "--db", str(filled), "--format", "csv", "--param", "k=2")
    assert out.splitlines() == ["symbol", "BTC-USD", "ETH-USD"]
    code, out, _ = cli(capsys, "run", "overview", "--db", str(filled), "--format", "jsonl")
    assert code == 0 and json.loads(out.splitlines()[0])["ticks"] == 40
    code, _, err = cli(capsys, "run", "overview", "--db", str(filled), "--param", "bad name=1")
    assert code == 1 and "--param" in err


def test_info_reports_tables_and_symbols(filled, capsys):
    code, out, _ = cli(capsys, "info", "--db", str(filled), "--format", "jsonl")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ticks = next(r for r in lines if r.get("table") == "ticks")
    assert ticks["rows"] == 50 and ticks["symbols"] == 2 and ticks["files"] == 2
    assert ticks["first_ts"] == "2026-01-01 00:00:00.000000000"
    per_symbol = {r["symbol"]: r["rows"] for r in lines if "symbol" in r}
    assert per_symbol == {"BTC-USD": 40, "ETH-USD": 10}


def test_compact_via_cli(filled, capsys):
    with cryptodb.connect(filled) as db:
        db.insert_ticks(make_ticks(5, start_ns=BASE_NS + 10**12, seq_start=1000))
    code, out, _ = cli(capsys, "compact", "--db", str(filled))
    assert code == 0 and "ticks: 1 partition(s) compacted, files 3 -> 2" in out
    with cryptodb.connect(filled, read_only=True) as db:
        assert db.sql("SELECT count(*) FROM ticks").fetchall() == [(55,)]


def test_import_round_trip_of_copied_ticks(filled, tmp_path, capsys):
    exported = tmp_path / "x.parquet"
    with cryptodb.connect(filled) as db:
        db.sql(f"COPY (SELECT * FROM ticks) TO '{exported}'")
        original = db.sql("SELECT * EXCLUDE (date) FROM ticks ORDER BY symbol, ts").to_arrow_table()
    target = tmp_path / "copy.duckdb"
    code, out, _ = cli(capsys, "import", str(exported), "--db", str(target))
    assert code == 0 and "50 rows into ticks" in out
    with cryptodb.connect(target, read_only=True) as db:
        back = db.sql("SELECT * EXCLUDE (date) FROM ticks ORDER BY symbol, ts").to_arrow_table()
    assert back.equals(original)
    # The same file again adds nothing.
    _, out, _ = cli(capsys, "import", str(exported), "--db", str(target))
    assert "0 rows into ticks (50 duplicates skipped)" in out


def test_import_with_mapping_and_errors(tmp_path, capsys):
    src = tmp_path / "mine.csv"
    src.write_text("pair,time,last,junk\nBTC/USD,2026-01-01T00:00:00.5Z,100.5,x\n")
    target = str(tmp_path / "m.duckdb")
    code, _, err = cli(capsys, "import", str(src), "--db", target, "--exchange", "kraken")
    assert code == 1 and "pair" in err and "junk" in err
    code, out, _ = cli(capsys, "import", str(src), "--db", target, "--exchange", "kraken",
                       "--map", "pair=symbol", "--map", "time=ts", "--map", "last=price", "--map", "junk=")
    assert code == 0 and "1 rows into ticks" in out
    with cryptodb.connect(target, read_only=True) as db:
        assert db.sql("SELECT exchange, symbol, epoch_ns(ts), price FROM ticks").fetchall() == [
            ("kraken", "BTC-USD", BASE_NS + 500_000_000, 100.5)]


def test_generate_then_query(db_path, capsys):
    code, _, err = cli(capsys, "generate", "--db", str(db_path), "--symbols", "BTC-USD,ETH-USD",
                       "--ticks", "5000", "--seed", "3")
    assert code == 0 and "generated 5,000 ticks" in err
    with cryptodb.connect(db_path, read_only=True) as db:
        assert db.symbols() == ["BTC-USD", "ETH-USD"]
        assert db.sql("SELECT count(*) FROM ticks").fetchall() == [(5000,)]
        assert db.sql("SELECT count(*) FROM trades").fetchall()[0][0] > 0


def test_generate_count_of_symbols_is_deterministic(tmp_path, capsys):
    paths = [tmp_path / "a.duckdb", tmp_path / "b.duckdb"]
    for p in paths:
        assert cli(capsys, "generate", "--db", str(p), "--symbols", "3", "--ticks", "3000", "--seed", "9")[0] == 0
    tables = []
    for p in paths:
        with cryptodb.connect(p, read_only=True) as db:
            tables.append(db.sql("SELECT * FROM ticks ORDER BY symbol, ts, seq").to_arrow_table())
    assert tables[0].equals(tables[1]) and tables[0].num_rows == 3000
    assert sorted(set(tables[0].column("symbol").to_pylist())) == ["BTC-USD", "DOGE-USD", "ETH-USD"]


def test_console_script_and_module_entry_points():
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "cryptodb"
    assert script.exists() or shutil.which("cryptodb")
    proc = run_cli("--version", check=True)
    assert proc.stdout.strip() == f"cryptodb {cryptodb.__version__}"
    helped = run_cli("--help", check=True)
    for name in ("init", "generate", "import", "sql", "run", "info", "compact"):
        assert name in helped.stdout


def test_kernels_listing_and_one_kernel(capsys):
    code, out, _ = cli(capsys, "kernels", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    names = {r["name"] for r in rows}
    assert code == 0 and {"rsi", "macd_hist", "midprice", "realized_var"} <= names
    assert next(r for r in rows if r["name"] == "rsi")["signature"] == "rsi(x, n := 14) -> DOUBLE"
    code, out, _ = cli(capsys, "kernels", "bbands")
    assert code == 0 and out.startswith("bbands(x, n := 20") and "bbands_upper" in out
    code, _, err = cli(capsys, "kernels", "nope")
    assert code == 1 and "no kernel 'nope'" in err


def test_kernel_query_and_refresh_from_the_cli(filled, capsys):
    q = "SELECT ts, rsi(price, 14) OVER (ORDER BY ts) AS r FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts"
    code, out, _ = cli(capsys, "sql", q, "--db", str(filled), "--format", "csv")
    values = [line.split(",")[1] for line in out.splitlines()[1:]]
    assert code == 0 and len(values) == 40 and values[:14] == [""] * 14 and values[14] != ""
    code, _, _ = cli(capsys, "sql", f"CREATE VIEW r AS {q}", "--db", str(filled))
    assert code == 0
    code, out, _ = cli(capsys, "refresh", "--db", str(filled))
    assert code == 0 and out.strip() == "refreshed r"
