"""`cryptodb repl` in a real terminal (pexpect): a kernel completed with Tab, `.mode csv`,
Ctrl-C on a long query, another query after it, Ctrl-D to leave.

The values printed are checked against TA-Lib and numpy on the same rows. Timeouts are generous:
the machine running the suite may be busy.
"""

import csv
import os
import re
import sys
import time

import numpy as np
import pytest
import talib

import cryptodb

pexpect = pytest.importorskip("pexpect")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")
PROMPT = "cryptodb> "
LEFT_PROMPT = "\x1b[?2004l"  # prompt_toolkit turns bracketed paste off when it returns the input
SLOW = 60  # seconds: the first kernel query loads numba


@pytest.fixture(scope="module")
def market_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("terminal") / "market.duckdb"
    with cryptodb.connect(path) as db:
        db.generate(symbols=["BTC-USD", "ETH-USD"], ticks=2000, seed=3)
        prices = np.array([p for (p,) in db.con.execute(
            "SELECT price FROM ticks WHERE symbol = 'BTC-USD' ORDER BY ts, seq").fetchall()])
    return path, prices


def _plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("│").split("│")]


@pytest.fixture
def repl(market_db, tmp_path):
    path, _ = market_db
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "CRYPTODB_PAGER": "", "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "cryptodb", "--db", str(path), "repl"], env=env,
                          cwd=str(tmp_path), dimensions=(50, 200), encoding="utf-8", timeout=SLOW)
    try:
        child.expect_exact(PROMPT)
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def test_a_session_in_a_terminal(repl, market_db, tmp_path):
    _, prices = market_db
    child = repl

    # A kernel query, its name completed with Tab from the menu (signature shown beside it).
    child.send("SELECT ts, price, rs")
    child.expect_exact("rsi(x, n := 14) -> DOUBLE")
    child.send("\t")
    child.send("(price, 14) OVER w AS rsi FROM ticks WHERE symbol = 'BTC-USD' "
               "WINDOW w AS (ORDER BY ts, seq) ORDER BY ts, seq LIMIT 30;")
    child.send("\r")
    child.expect(r"30 rows\r?\n")
    table = [_cells(line) for line in _plain(child.before).splitlines() if line.startswith("│")]
    assert table[0] == ["ts", "price", "rsi"] and table[1] == ["timestamp_ns", "double", "double"]
    got = np.array([np.nan if r[2] == "NULL" else float(r[2]) for r in table[2:]])
    np.testing.assert_allclose(got, talib.RSI(prices, 14)[:30], rtol=1e-9, equal_nan=True)
    child.expect(r"time [0-9.]+ s")
    child.expect_exact(PROMPT)

    # CSV mode, another kernel.
    child.send(".mode csv\r")
    child.expect_exact(PROMPT)
    child.send("SELECT sma(price, 4) OVER (ORDER BY ts, seq) AS sma4 FROM ticks WHERE symbol = 'BTC-USD' "
               "ORDER BY ts, seq LIMIT 9;\r")
    child.expect(r"time [0-9.]+ s")
    lines = _plain(child.before).splitlines()
    start = lines.index("sma4")
    values = [row[0] for row in csv.reader(lines[start + 1:start + 10])]
    got = np.array([np.nan if v == "" else float(v) for v in values])
    np.testing.assert_allclose(got[3:], np.convolve(prices[:9], np.ones(4) / 4, mode="valid"), rtol=1e-12)
    assert np.isnan(got[:3]).all()
    child.expect_exact(PROMPT)

    # Ctrl-C stops a query that would run for hours; the connection stays usable.
    child.send("SELECT sum(a.range * b.range) FROM range(1000000000) a, range(1000000000) b;\r")
    child.expect_exact(LEFT_PROMPT)  # the input is accepted: the query runs
    time.sleep(0.5)
    child.sendintr()
    child.expect_exact("cancelled", timeout=SLOW)
    child.expect_exact(PROMPT)
    child.send("SELECT 6 * 7 AS answer;\r")
    child.expect(r"answer\r?\n42\r?\n")
    child.expect_exact(PROMPT)

    # Ctrl-D leaves, and the session went to the history file.
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "state" / "cryptodb" / "history").read_text()
    assert "SELECT 6 * 7 AS answer;" in history and "rsi(price, 14)" in history
