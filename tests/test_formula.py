"""Row formulas evaluated in Arrow (cryptodb.engine.formula) against DuckDB computing the same SQL:
bit for bit, NULLs included, over values chosen to hit every edge (zeros, equal pairs, NaN,
infinities, signed zeros), one chunk or many, on one thread or two."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from cryptodb.udfs import rowwise
from sqlglot import parse_one

import cryptodb
from cryptodb.engine import formula, shortcut

COLUMNS = ("a", "b", "c", "d", "e")


def _column(rng: np.random.Generator, n: int) -> pa.Array:
    values = rng.normal(100, 5, n)
    specials = np.array([0.0, -0.0, 1.0, np.nan, np.inf, -np.inf, 100.0])
    pick = rng.random(n) < 0.15
    values[pick] = specials[rng.integers(len(specials), size=pick.sum())]
    values[rng.random(n) < 0.1] = 100.0  # equal pairs: NULLIF(x, y) and x - y = 0
    return pa.array(values, mask=rng.random(n) < 0.1)


def _table(n: int, seed: int = 1, chunks: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    table = pa.table({c: _column(rng, n) for c in COLUMNS})
    if chunks > 1:  # columns chunked differently: a formula's inputs then meet at odd rows
        cols = []
        for j, c in enumerate(COLUMNS):
            cuts = sorted(set(rng.integers(1, n, size=chunks + j).tolist()))
            col = table.column(c).combine_chunks()
            cols.append(pa.chunked_array([col.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n])]))
        table = pa.table(cols, names=list(COLUMNS))
    return table


def _compile(sql: str):
    return formula.compile_formula(parse_one(sql, read="duckdb"),
                                   lambda name: ("col", name) if name in COLUMNS else None)


def _assert_same(got: pa.Array, want: pa.ChunkedArray) -> None:
    want = want.combine_chunks()
    assert got.type == want.type == pa.float64()
    assert got.is_valid().equals(want.is_valid())
    valid = np.asarray(got.is_valid().to_numpy(zero_copy_only=False))
    g = got.to_numpy(zero_copy_only=False)[valid]
    w = want.to_numpy(zero_copy_only=False)[valid]
    # Bit for bit, except that any NaN equals any NaN (DuckDB and numpy may carry other payloads).
    same = (g.view(np.int64) == w.view(np.int64)) | (np.isnan(g) & np.isnan(w))
    assert same.all(), f"{(~same).sum()} values differ, first: {g[~same][:3]} against {w[~same][:3]}"


def _duckdb(table: pa.Table, sqls: list[str]) -> pa.Table:
    con = duckdb.connect()
    for statement in rowwise.install_sql():
        con.execute(statement)
    con.register("t", table)
    return con.sql(f"SELECT {', '.join(sqls)} FROM t").to_arrow_table()


def _row_kernel_calls() -> list[str]:
    """Every DOUBLE row kernel called over columns, its parameters with defaults left out."""
    calls = []
    for kernel in rowwise.ROW_KERNELS:
        required = [p for p in kernel.params if p.default is rowwise.REQUIRED]
        if kernel.returns == "DOUBLE" and len(required) <= len(COLUMNS):
            calls.append(f"{kernel.name}({', '.join(COLUMNS[:len(required)])})")
    return calls


CALLS = _row_kernel_calls()
# The arithmetic row kernels must be formulas; the rest (pow, exp, ln, CASE, epoch_ns, a NULLIF of
# two literals in funding_apr's default) are left to DuckDB.
ARITHMETIC = {"midprice", "microprice", "quoted_spread", "spread_bps", "effective_spread", "effective_spread_bps",
              "l1_imbalance", "signed_volume", "basis_bps", "cash_and_carry_edge_bps", "perp_fair_price", "fx_cross",
              "pip_value", "carry_signal", "implementation_shortfall_bps", "arrival_impact_bps", "pairs_spread"}


def test_arithmetic_row_kernels_compile_and_others_do_not():
    compiled = {call.split("(")[0] for call in CALLS if _compile(call) is not None}
    assert compiled == ARITHMETIC


@pytest.mark.parametrize("chunks", [1, 7])
def test_row_kernels_equal_duckdb_bit_for_bit(chunks):
    table = _table(5_000, chunks=chunks)
    calls = [c for c in CALLS if c.split("(")[0] in ARITHMETIC]
    formulas = [_compile(c) for c in calls]
    got = formula.evaluate(formulas, {c: table.column(c) for c in COLUMNS}, table.num_rows)
    want = _duckdb(table, calls)
    for call, g, w in zip(calls, got, want.columns):
        _assert_same(g, w)


EXPRESSIONS = [
    "a + b * c - d / e",
    "-(a - b) / NULLIF(c, d)",
    "NULLIF(a, b)",
    "NULLIF(a, 100)",
    "a / 0",
    "(a + 1e4) * 2.5 - 3",
    "midprice(a, b) - microprice(a, b, c, d)",
    "spread_bps(a + 1, NULLIF(b, c))",
]


@pytest.mark.parametrize("chunks", [1, 5])
@pytest.mark.parametrize("sql", EXPRESSIONS)
def test_expressions_equal_duckdb_on_two_threads(sql, chunks):
    n = formula.THREADED_ROWS + 1_234  # the rows split between two threads, chunks cut in between
    table = _table(n, seed=3, chunks=chunks)
    f = _compile(sql)
    assert f is not None
    got = formula.evaluate([f], {c: table.column(c) for c in f.inputs}, n)
    _assert_same(got[0], _duckdb(table, [sql]).column(0))


@pytest.mark.parametrize("sql", [
    "CASE WHEN a > 0 THEN a END",  # not arithmetic
    "abs(a)",  # a function that is no row kernel
    "1 + 2",  # two literals: DuckDB chooses their type
    "a * (2 * 3)",
    "-1.0 * a",  # a negated literal (DuckDB types -0.0 as a DECIMAL zero)
    "a || 'x'",
    "t.a + b",  # qualified: left to DuckDB
    "a + unknown",
    "funding_apr(a)",  # its default makes NULLIF(8, 0): two literals
    "a * 0.1234567890123456",  # more digits than a double holds: DuckDB's cast may round otherwise
])
def test_other_shapes_are_left_to_duckdb(sql):
    assert _compile(sql) is None


def test_a_scope_reading_spliced_rows_uses_formulas_and_gets_duckdbs_result(monkeypatch):
    """Research's second step: row-wise features of the scope before and an expression over two
    kernel outputs are formulas; the rows equal those with every formula left to DuckDB."""
    sql = """
        WITH base AS (
            SELECT symbol, ts, bid, ask, bid_size, ask_size, price,
                   midprice(bid, ask) AS mid, l1_imbalance(bid_size, ask_size) AS imbalance,
                   log_return(price) OVER w AS ret, rolling_std(price, 5) OVER w AS sd,
                   price - first_seen(price) OVER w AS pnl
            FROM ticks WINDOW w AS (PARTITION BY symbol ORDER BY ts))
        SELECT *, cusum_stat(ret / NULLIF(sd, 0), 0.5, 4) OVER (PARTITION BY symbol ORDER BY ts) AS cs
        FROM base ORDER BY symbol, ts"""
    used = []
    evaluate = formula.evaluate

    def spy(formulas, columns, rows):
        used.append(len(formulas))
        return evaluate(formulas, columns, rows)

    with cryptodb.connect() as db:
        db.generate(symbols=3, ticks=3_000, seed=5)
        monkeypatch.setattr(shortcut, "evaluate", spy)
        in_arrow = db.sql(sql).to_arrow_table()
        assert used == [4]  # mid, imbalance, pnl and the CUSUM input
        monkeypatch.setattr(shortcut, "compile_formula", lambda node, resolve: None)
        by_duckdb = db.sql(sql).to_arrow_table()
    assert used == [4]
    assert in_arrow.column_names == by_duckdb.column_names
    for name in in_arrow.column_names:
        assert in_arrow.column(name).equals(by_duckdb.column(name)), name


def test_an_integer_input_sends_the_formula_to_duckdb():
    """A formula over a column that is not DOUBLE (here BIGINT) is computed by DuckDB."""
    with cryptodb.connect() as db:
        db.sql("CREATE TABLE q AS SELECT range AS ts, 'X' AS s, range::BIGINT AS k, range * 1.5 AS x FROM range(50)")
        rows = db.sql("""
            WITH b AS (SELECT ts, s, k, x, k - x AS gap, ema(x, 3) OVER (PARTITION BY s ORDER BY ts) AS e FROM q)
            SELECT gap, ema(gap / NULLIF(e, 0), 2) OVER (PARTITION BY s ORDER BY ts) AS z FROM b ORDER BY ts
        """).fetchall()
    assert [r[0] for r in rows] == [k - k * 1.5 for k in range(50)]
    assert rows[-1][1] is not None


def test_formula_inputs_are_named_once():
    f = _compile("midprice(a, a) + a")
    assert f.inputs == ("a",)
