"""The REPL's completion engine as pure functions: text before (and after) the cursor -> suggestions.

No terminal and no database: a hand-made catalog snapshot (plus the real kernel registry, which
loads without numba) stands in for what the refresher reads from DuckDB.
"""

import pytest
from cryptodb.repl.catalog import CatalogSnapshot, Column, Routine, kernel_routines
from cryptodb.repl.completion import suggest
from cryptodb.repl.enter_rule import ready_to_run
from cryptodb.repl.lexer import COMMAND, KERNEL, lexer_class
from cryptodb.repl.sqltext import split_statements


def _columns(*specs):
    return tuple(Column(*spec.split(":")) for spec in specs)


@pytest.fixture(scope="module")
def catalog():
    return CatalogSnapshot(
        tables={
            "ticks": _columns("exchange:VARCHAR", "symbol:VARCHAR", "ts:TIMESTAMP_NS", "price:DOUBLE",
                              "bid:DOUBLE", "ask:DOUBLE", "bid_size:DOUBLE"),
            "trades": _columns("symbol:VARCHAR", "ts:TIMESTAMP_NS", "price:DOUBLE", "size:DOUBLE",
                               "side:INTEGER", "trade_id:VARCHAR"),
            "features": _columns("symbol:VARCHAR", "ts:TIMESTAMP_NS", "ret:DOUBLE"),
        },
        views=frozenset({"ticks", "trades"}),
        kernels=kernel_routines(),
        functions={
            "abs": Routine("abs", "scalar", "abs(x) -> DOUBLE", "Absolute value"),
            "arg_max": Routine("arg_max", "aggregate", "arg_max(arg, val)", "Finds the row with the maximum val."),
            "read_parquet": Routine("read_parquet", "table", "read_parquet(path)", "Read Parquet files"),
            "my_macro": Routine("my_macro", "macro", "my_macro(a, b)", ""),
        },
        symbols=("BCH-USD", "BTC-USD", "ETH-USD"),
        scripts=("overview", "research"),
    )


def texts(before, catalog, after="", **kw):
    return [s.text for s in suggest(before, catalog, after, **kw)]


# -- keywords ------------------------------------------------------------------------------------------------
def test_statement_keywords_follow_the_case_typed(catalog):
    assert texts("SEL", catalog) == ["SELECT"]
    assert texts("sel", catalog) == ["select"]
    assert "SUMMARIZE" in texts("", catalog)
    assert texts("select 1; wi", catalog) == ["with"], "completion looks at the statement the cursor is in"


def test_after_a_name_come_clause_keywords(catalog):
    after_table = texts("SELECT * FROM ticks WHER", catalog)
    assert after_table == ["WHERE"]
    assert "BY" in texts("SELECT * FROM ticks GROUP ", catalog)
    assert "ALTER" not in texts("SELECT price ", catalog), "statement-only keywords stay at the start"


# -- tables and views ----------------------------------------------------------------------------------------
def test_tables_and_views_after_from_and_join(catalog):
    from_ = suggest("SELECT * FROM t", catalog)
    assert [(s.text, s.kind) for s in from_] == [("ticks", "view"), ("trades", "view")]
    assert texts("SELECT * FROM ticks JOIN tr", catalog) == ["trades"]
    assert texts("SELECT * FROM ticks, fe", catalog) == ["features"]
    assert "read_parquet" in texts("SELECT * FROM re", catalog), "table functions too"
    assert texts("INSERT INTO fe", catalog) == ["features"]
    assert texts("CREATE TABLE ", catalog) == [], "a new name: nothing to suggest"


def test_ctes_are_relations_too(catalog):
    assert texts("WITH recent AS (SELECT * FROM ticks) SELECT * FROM rec", catalog) == ["recent"]


# -- columns -------------------------------------------------------------------------------------------------
def test_columns_are_scoped_to_the_tables_in_from(catalog):
    got = texts("SELECT ", catalog, " FROM trades")
    assert {"side", "trade_id", "price"} <= set(got)
    assert "bid_size" not in got and "ret" not in got
    assert texts("SELECT s", catalog, " FROM trades")[:3] == ["side", "size", "symbol"]
    meta = next(s.meta for s in suggest("SELECT si", catalog, " FROM trades") if s.text == "side")
    assert "INTEGER" in meta and "trades" in meta


def test_without_from_every_tables_columns_are_offered(catalog):
    got = texts("SELECT ", catalog)
    assert {"bid_size", "side", "ret"} <= set(got)


def test_qualified_names_use_the_alias(catalog):
    assert texts("SELECT t.", catalog, " FROM ticks t JOIN trades r ON t.ts = r.ts") == \
        ["ask", "bid", "bid_size", "exchange", "price", "symbol", "ts"]
    assert texts("SELECT * FROM ticks t JOIN trades r ON r.sid", catalog) == ["side"]
    assert texts("SELECT trades.tr", catalog, " FROM trades") == ["trade_id"]


def test_cte_and_subquery_columns(catalog):
    cte = "WITH r AS (SELECT ts, price AS p, rsi(price, 14) OVER w AS r14 FROM ticks WINDOW w AS (ORDER BY ts)) "
    got = texts(cte + "SELECT ", catalog, " FROM r")
    assert got[:3] == ["p", "r14", "ts"]
    assert "bid" not in got
    star = texts("WITH r AS (SELECT * FROM trades) SELECT ", catalog, " FROM r")
    assert "side" in star and "bid" not in star
    inner = texts("SELECT (SELECT s", catalog, " FROM trades) FROM ticks")
    assert inner[:3] == ["side", "size", "symbol"], "the cursor's own query decides the scope"


def test_columns_inside_a_kernel_call(catalog):
    assert texts("SELECT rsi(pr", catalog, ", 14) OVER w FROM ticks")[0] == "price"


def test_window_names_after_over(catalog):
    got = texts("SELECT rsi(price) OVER ", catalog,
                " FROM ticks WINDOW w AS (ORDER BY ts), slow AS (PARTITION BY symbol ORDER BY ts)")
    assert got == ["slow", "w"]


# -- kernels, macros, functions ------------------------------------------------------------------------------
def test_kernels_come_with_signature_and_doc(catalog):
    found = suggest("SELECT ts, rs", catalog)
    assert [s.text for s in found] == ["rsi"]
    assert found[0].kind == "kernel"
    assert found[0].meta.startswith("rsi(x, n := 14) -> DOUBLE")
    assert "relative strength" in found[0].meta.lower()
    assert texts("SELECT macd_h", catalog) == ["macd_hist"], "field aliases are kernels too"


def test_row_kernels_macros_and_duckdb_functions(catalog):
    mid = suggest("SELECT midp", catalog)
    assert [s.text for s in mid] == ["midprice"] and mid[0].meta.startswith("midprice(bid, ask)")
    assert texts("SELECT ab", catalog) == ["abs"]
    assert texts("SELECT my_", catalog) == ["my_macro"]
    assert "arg_max" in texts("SELECT arg", catalog)
    assert "read_parquet" not in texts("SELECT rea", catalog), "table functions belong in FROM"


def test_kernels_rank_after_columns_and_before_functions(catalog):
    got = suggest("SELECT p", catalog, " FROM ticks")
    kinds = [s.kind for s in got]
    assert kinds[0] == "column"
    assert kinds.index("kernel") < kinds.index("keyword")


def test_substring_matches_only_when_nothing_starts_with_the_prefix(catalog):
    assert texts("SELECT _hist", catalog) == ["macd_hist"]


# -- symbols and paths in strings ----------------------------------------------------------------------------
def test_symbols_inside_a_string_after_symbol_equals(catalog):
    found = suggest("SELECT * FROM ticks WHERE symbol = 'B", catalog)
    assert [s.text for s in found] == ["BCH-USD'", "BTC-USD'"]
    assert all(s.start == -1 for s in found), "only the typed part of the literal is replaced"
    assert texts("SELECT * FROM ticks WHERE symbol = 'bt", catalog, "' LIMIT 5") == ["BTC-USD"], \
        "no second quote when one follows the cursor"
    assert texts("SELECT * FROM ticks t WHERE t.symbol IN ('BTC-USD', 'E", catalog) == ["ETH-USD'"]
    assert texts("SELECT * FROM ticks WHERE exchange = 'B", catalog) == [], "only the symbol column"


def test_quoted_symbols_right_after_symbol_equals(catalog):
    assert texts("SELECT * FROM ticks WHERE symbol = ", catalog)[:3] == ["'BCH-USD'", "'BTC-USD'", "'ETH-USD'"]


def test_file_paths_inside_quotes(catalog, tmp_path):
    (tmp_path / "ticks-2026.parquet").write_bytes(b"")
    (tmp_path / "trades.csv").write_text("")
    (tmp_path / "archive").mkdir()
    (tmp_path / ".hidden").write_text("")
    base = f"{tmp_path}/"
    got = suggest(f"SELECT * FROM read_parquet('{base}t", catalog)
    assert [s.text for s in got] == ["ticks-2026.parquet'", "trades.csv'"]
    assert got[0].start == -1
    assert texts(f"COPY ticks TO '{base}", catalog) == ["archive/", "ticks-2026.parquet'", "trades.csv'"]
    assert texts(f"SELECT * FROM '{base}ar", catalog) == ["archive/"]


def test_relative_paths_use_the_listing_given(catalog):
    listed = []

    def fake_list_dir(folder):
        listed.append(folder)
        return [("data", True), ("day1.csv", False)]

    assert texts("SELECT * FROM read_csv('./d", catalog, list_dir=fake_list_dir) == ["data/", "day1.csv'"]
    assert listed == ["./"]


def test_nothing_inside_comments_or_after_a_literal(catalog):
    assert texts("SELECT 1 -- rs", catalog) == []
    assert texts("SELECT /* rs", catalog) == []
    assert texts("SELECT 'abc'", catalog) == []
    assert texts("SELECT * FROM ticks WHERE note = 'rs", catalog) == []


# -- special commands ----------------------------------------------------------------------------------------
def test_dot_and_backslash_commands(catalog):
    tables = suggest(".ta", catalog)
    assert [s.text for s in tables] == [".tables"] and tables[0].meta
    assert texts("\\d", catalog) == ["\\d", "\\dt"]
    assert {".mode", ".maxrows"} <= set(texts(".m", catalog))
    assert ".quit" in texts(".", catalog) and "\\q" in texts("\\", catalog)


def test_command_arguments(catalog, tmp_path):
    assert texts(".mode c", catalog) == ["csv"]
    assert texts(".timer o", catalog) == ["off", "on"]
    assert texts(".kernels rs", catalog) == ["rsi"]
    assert texts(".schema ti", catalog) == ["ticks"]
    assert texts("\\d tr", catalog) == ["trades"]
    assert texts(".help .ti", catalog) == [".timer"]
    assert texts(".run re", catalog, list_dir=lambda folder: [("repl", True), ("rest.sql", False)]) == \
        ["research", "repl/", "rest.sql"], "shipped scripts, then .sql files and folders"
    (tmp_path / "mine.sql").write_text("SELECT 1;")
    (tmp_path / "notes.txt").write_text("")
    assert texts(f".run {tmp_path}/", catalog) == ["mine.sql"], "scripts: .sql files only"
    assert texts(f".read {tmp_path}/no", catalog) == ["notes.txt"]
    assert texts(f".once {tmp_path}/m", catalog) == ["mine.sql"]


def test_commands_that_take_a_query_complete_sql(catalog):
    assert texts(".plot SELECT ts, pri", catalog, "")[0] == "price"
    assert texts(".plot --png out.png SELECT ts, rs", catalog) == ["rsi"]
    assert texts("watch 2 SELECT count(*) FROM tr", catalog) == ["trades"]
    assert texts("watch 2", catalog) == [], "the seconds first"


# -- the Enter rule and the tokenizer ------------------------------------------------------------------------
@pytest.mark.parametrize("text, runs", [
    ("SELECT 1;", True),
    ("SELECT 1", False),
    ("SELECT 1\nFROM ticks\n;", True),
    ("SELECT ';'", False),
    ("SELECT 'it''s';", True),
    ("SELECT 1; -- done", True),
    ("SELECT 1 /* ; */", False),
    ("SELECT 1; /* open", False),
    ('SELECT "a;b"', False),
    (".tables", True),
    ("  \\dt", True),
    (".mode csv", True),
    ("watch 2 SELECT 1", True),
    ("quit", True),
    ("", True),
])
def test_enter_runs_complete_statements_and_commands(text, runs):
    assert ready_to_run(text) is runs


def test_statements_split_at_semicolons_outside_strings():
    assert split_statements("SELECT ';' AS a; SELECT 2; -- trailing") == ["SELECT ';' AS a;", " SELECT 2;"]
    assert split_statements("SELECT 1; SELECT 2") == ["SELECT 1;", " SELECT 2"]


# -- highlighting --------------------------------------------------------------------------------------------
def test_kernel_calls_are_highlighted_but_same_named_columns_are_not():
    lexer = lexer_class(lambda: frozenset({"rsi", "prev"}))()
    tokens = [(token, value) for _, token, value in lexer.get_tokens_unprocessed(
        "SELECT rsi(price, 14) OVER w, prev FROM t")]
    assert (KERNEL, "rsi") in tokens
    assert (KERNEL, "prev") not in tokens
    assert any(value == "OVER" and "Keyword" in str(token) for token, value in tokens)
    command = [(token, value) for _, token, value in lexer.get_tokens_unprocessed(".plot SELECT rsi(x) OVER w")]
    assert command[0] == (COMMAND, ".plot")
    assert (KERNEL, "rsi") in command
