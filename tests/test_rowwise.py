"""Row-wise kernels as SQL macros: golden cases against the KERNELS.md formulas written here in Python,
in cryptodb, in plain DuckDB reading the catalog file, and in DuckDB 1.4."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import BASE_NS, ROOT
from cryptodb.udfs import rowwise

import cryptodb

COMPAT_DUCKDB14 = ROOT / ".venv" / "compat-duckdb14"
DAY_NS = 86_400 * 10**9


# -- the inputs: one table of varied rows -------------------------------------------------------------
def _inputs(n: int = 600, seed: int = 7) -> dict[str, list]:
    """Typical values plus, per column, some zeros, NULLs and negative values; rows 0-2 are all
    zero / all NULL / all negated so that every denominator is zero and every input NULL somewhere."""
    rng = np.random.default_rng(seed)

    def col(typical, specials, share=0.2):
        values = [float(v) for v in typical(n)]
        for i in np.flatnonzero(rng.random(n) < share):
            values[i] = specials[rng.integers(len(specials))]
        return values

    price = lambda m: 100 * np.exp(rng.normal(0, 0.01, m))  # noqa: E731
    fx = lambda m: np.exp(rng.normal(0, 0.01, m))  # noqa: E731 - triangles close to consistent
    size = lambda m: rng.uniform(0, 5, m)  # noqa: E731
    rate = lambda m: rng.normal(0, 0.01, m)  # noqa: E731
    cols = {
        **{c: col(price, [0.0, None, -100.0, 100.0]) for c in
           ("bid", "ask", "price", "mid", "perp", "spot", "fut", "fwd", "exec", "arrival", "ref", "a", "b")},
        **{c: col(fx, [0.0, None, -1.0, 1.0]) for c in ("ab", "bc", "ac", "a_quote", "b_quote")},
        **{c: col(size, [0.0, None, -1.0, 1.0]) for c in
           ("bid_size", "ask_size", "volume", "size", "quote_to_account", "vol", "k", "sigma")},
        **{c: col(rate, [0.0, None, -1.0, -1.5, 0.5]) for c in
           ("rate", "funding_rate", "r_dom", "r_for", "mu", "skew", "exkurt")},
        "hours": col(lambda m: rng.choice([1.0, 4.0, 7.0, 8.0, 24.0], m), [0.0, None]),
        "periods": col(lambda m: rng.choice([1.0, 3.0, 0.5], m), [0.0, None, -1.0]),
        "fees_bps": col(lambda m: rng.uniform(0, 10, m), [0.0, None]),
        "pip": col(lambda m: rng.choice([1e-4, 1e-2], m), [None]),
        "t": col(lambda m: rng.uniform(0.01, 2, m), [0.0, None, -0.5]),
        "beta": col(lambda m: rng.normal(1, 0.5, m), [0.0, None]),
        "pct": col(lambda m: rng.uniform(0, 0.03, m), [0.0, None]),
        "notional_max": col(lambda m: rng.uniform(0, 600, m), [0.0, None]),
        "alpha": col(lambda m: rng.uniform(1e-3, 0.2, m), [None, 0.5, 1e-12, 0.999, 1e-300]),
        "side": col(lambda m: rng.choice([1, -1], m), [None, 0], 0.1),
        "ts": [BASE_NS + int(v) for v in rng.integers(0, 100 * DAY_NS, n)],
    }
    cols["side"] = [None if v is None else int(v) for v in cols["side"]]
    to_expiry = [int(rng.integers(-10, 200) * DAY_NS + rng.integers(0, DAY_NS)) for _ in range(n)]
    cols["expiry"] = [t + d for t, d in zip(cols["ts"], to_expiry)]
    for name, values in cols.items():
        values[1] = None
        if name in ("ts", "expiry"):
            values[0] = BASE_NS  # ts == expiry
            continue
        if name == "alpha":  # outside (0, 1) raises: see test_cornish_fisher_rejects_alpha_outside_unit_interval
            continue
        values[0] = 0 if name == "side" else 0.0
        values[2] = None if values[2] is None else -values[2]
    for i in range(3, 8):  # sizes summing to zero, equal timestamps
        cols["ask_size"][i] = -cols["bid_size"][i] if cols["bid_size"][i] is not None else None
        cols["expiry"][i] = cols["ts"][i]
    return cols


INPUTS = _inputs()


def _arrow(cols: dict[str, list]) -> pa.Table:
    types = {"side": pa.int64(), "ts": pa.timestamp("ns"), "expiry": pa.timestamp("ns")}
    return pa.table({c: pa.array(v, types.get(c, pa.float64())) for c, v in cols.items()})


# -- the formulas of KERNELS.md, independently in Python ------------------------------------------------
def _ppf(p):
    return NormalDist().inv_cdf(p)


def _cornish_fisher(mu, sigma, skew, exkurt, alpha):
    z = _ppf(alpha)
    zc = z + (z**2 - 1) * skew / 6 + (z**3 - 3 * z) * exkurt / 24 - (2 * z**3 - 5 * z) * skew**2 / 36
    return -(mu + zc * sigma)


def _apy(rate, hours=8):
    try:
        value = (1 + rate) ** (8760 / hours)
    except OverflowError:  # DuckDB's pow overflows to +inf, which is what it is
        return math.inf
    return None if isinstance(value, complex) else value - 1  # no real compounded rate below -100 %


def _triangular(ab, bc, ac, fees_bps):
    forward, reverse = 1e4 * (ab * bc / ac - 1), 1e4 * (ac / (ab * bc) - 1)
    if forward >= reverse:
        return {"edge_bps": forward - fees_bps, "route": "A>B>C>A"}
    return {"edge_bps": reverse - fees_bps, "route": "A>C>B>A"}


def _and(x, y):
    """SQL's three-valued AND."""
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def _band(price, ref, pct):
    if None in (price, ref, pct) or ref == 0:
        return None
    return abs(price / ref - 1) <= pct


def _fat_finger(price, ref, size, pct, notional_max):
    notional_ok = None if None in (price, size, notional_max) else price * size <= notional_max
    return _and(_band(price, ref, pct), notional_ok)


def _cip(spot, fwd, r_dom, r_for, t):
    ratio = fwd / spot
    return math.log(ratio) / t - (r_dom - r_for) if ratio > 0 else None


@dataclass(frozen=True)
class Golden:
    """One macro call over the input columns and its reference; the reference's parameter names
    are the input columns it reads. `strict`: any NULL input gives NULL (else the reference decides)."""

    call: str
    reference: Callable
    strict: bool = True

    @property
    def columns(self) -> list[str]:
        return list(inspect.signature(self.reference).parameters)

    @property
    def kernel(self) -> str:
        return self.call.partition("(")[0]

    def expected(self, row: dict):
        args = [row[c] for c in self.columns]
        if self.strict and None in args:
            return None
        try:
            return self.reference(*args)
        except ZeroDivisionError:  # the contract: division by zero gives NULL
            return None


GOLDEN = [
    Golden("midprice(bid, ask)", lambda bid, ask: (bid + ask) / 2),
    Golden("microprice(bid, ask, bid_size, ask_size)",
           lambda bid, ask, bid_size, ask_size: (bid * ask_size + ask * bid_size) / (bid_size + ask_size)),
    Golden("quoted_spread(bid, ask)", lambda bid, ask: ask - bid),
    Golden("spread_bps(bid, ask)", lambda bid, ask: 1e4 * (ask - bid) / ((bid + ask) / 2)),
    Golden("effective_spread(price, mid, side)", lambda price, mid, side: 2 * side * (price - mid)),
    Golden("effective_spread_bps(price, mid, side)", lambda price, mid, side: 1e4 * 2 * side * (price - mid) / mid),
    Golden("l1_imbalance(bid_size, ask_size)",
           lambda bid_size, ask_size: (bid_size - ask_size) / (bid_size + ask_size)),
    Golden("signed_volume(side, volume)", lambda side, volume: side * volume),
    Golden("funding_apr(rate)", lambda rate: rate * 24 * 365 / 8),
    Golden("funding_apr(rate, hours := hours)", lambda rate, hours: rate * 24 * 365 / hours),
    Golden("funding_apy(rate)", lambda rate: _apy(rate)),
    Golden("funding_apy(rate, hours := hours)", lambda rate, hours: _apy(rate, hours)),
    Golden("basis_bps(perp, spot)", lambda perp, spot: 1e4 * (perp / spot - 1)),
    Golden("basis_annualized(fut, spot, ts, expiry)",
           lambda fut, spot, ts, expiry: (fut / spot - 1) * (365 * 86400 / ((expiry - ts) / 1e9))),
    Golden("cash_and_carry_edge_bps(perp, spot, funding_rate, fees_bps)",
           lambda perp, spot, funding_rate, fees_bps: 1e4 * (perp - spot) / spot + 1e4 * funding_rate - fees_bps),
    Golden("cash_and_carry_edge_bps(perp, spot, funding_rate, fees_bps, periods := periods)",
           lambda perp, spot, funding_rate, fees_bps, periods:
           1e4 * (perp - spot) / spot + 1e4 * funding_rate * periods - fees_bps),
    Golden("perp_fair_price(spot, funding_rate)", lambda spot, funding_rate: spot * (1 + funding_rate)),
    Golden("perp_fair_price(spot, funding_rate, periods := periods)",
           lambda spot, funding_rate, periods: spot * (1 + funding_rate * periods)),
    Golden("triangular_arbitrage(ab, bc, ac, fees_bps)", _triangular),
    Golden("fx_cross(a_quote, b_quote)", lambda a_quote, b_quote: a_quote / b_quote),
    Golden("pip_value(size, pip, quote_to_account)", lambda size, pip, quote_to_account: size * pip * quote_to_account),
    Golden("forward_points(spot, r_dom, r_for, t)",
           lambda spot, r_dom, r_for, t: spot * math.exp((r_dom - r_for) * t) - spot),
    Golden("cip_basis(spot, fwd, r_dom, r_for, t)", _cip),
    Golden("carry_signal(r_dom, r_for, vol)", lambda r_dom, r_for, vol: (r_dom - r_for) - vol),
    Golden("carry_signal(r_dom, r_for, vol, k := k)", lambda r_dom, r_for, vol, k: (r_dom - r_for) - k * vol),
    Golden("implementation_shortfall_bps(exec, arrival, side)",
           lambda exec, arrival, side: 1e4 * side * (exec - arrival) / arrival),
    Golden("arrival_impact_bps(exec, mid, side)", lambda exec, mid, side: 1e4 * side * (exec - mid) / mid),
    Golden("pairs_spread(a, b, beta)", lambda a, b, beta: a - beta * b),
    Golden("price_band(price, ref, pct)", _band, strict=False),
    Golden("circuit_breaker(price, ref, pct)", lambda price, ref, pct: abs(price / ref - 1) > pct),
    Golden("fat_finger(price, ref, size, pct, notional_max)", _fat_finger, strict=False),
    Golden("norm_ppf(alpha)", lambda alpha: _ppf(alpha)),
    Golden("cornish_fisher_var(mu, sigma, skew, exkurt)",
           lambda mu, sigma, skew, exkurt: _cornish_fisher(mu, sigma, skew, exkurt, 0.05)),
    Golden("cornish_fisher_var(mu, sigma, skew, exkurt, alpha := alpha)", _cornish_fisher),
]


def _golden_query(cases=GOLDEN, source: str = "inputs") -> str:
    calls = ",\n  ".join(f"{c.call} AS c{i}" for i, c in enumerate(cases))
    return f"SELECT\n  {calls}\nFROM {source} ORDER BY rownum"


def _with_rownum(cols: dict[str, list]) -> pa.Table:
    return _arrow(cols).append_column("rownum", pa.array(range(len(cols["ts"])), pa.int64()))


def _same(got, want) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if want is None or got is None or isinstance(want, (bool, str)):
        return got == want and type(got) is type(want)
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)


def _check(rows: list[tuple], cases=GOLDEN, cols=INPUTS) -> None:
    """rows: the golden query's result, in input order."""
    input_rows = [dict(zip(cols, values)) for values in zip(*cols.values())]
    assert len(rows) == len(input_rows)
    for j, case in enumerate(cases):
        bad = [(row, got[j], case.expected(row)) for row, got in zip(input_rows, rows)
               if not _same(got[j], case.expected(row))]
        assert not bad, f"{case.call}: {len(bad)} rows differ, first: {bad[0]}"
        assert any(case.expected(r) is None for r in input_rows), f"{case.call}: no NULL/zero row tried"
        assert sum(case.expected(r) is not None for r in input_rows) > len(input_rows) // 2


# -- the tests ----------------------------------------------------------------------------------------
def test_every_kernel_has_a_golden_case_and_a_doc():
    tested = {case.kernel for case in GOLDEN}
    names = [k.name for k in rowwise.ROW_KERNELS]
    assert len(names) == len(set(names))
    assert set(names) - tested == set()
    for k in rowwise.ROW_KERNELS:
        assert k.doc and "\n" not in k.doc, k.name
        assert k.category in {"microstructure", "crypto", "fx", "execution", "cross-asset", "risk", "statistics"}


def test_no_name_is_both_a_row_macro_and_a_window_kernel():
    from cryptodb.udfs import registry

    assert registry.names() & {k.name for k in rowwise.ROW_KERNELS} == set()


def test_macro_sql_shape():
    apr = next(k for k in rowwise.ROW_KERNELS if k.name == "funding_apr")
    assert rowwise.macro_sql(apr) == (
        "CREATE OR REPLACE MACRO funding_apr(rate, hours := 8) AS rate * 24 * 365 / NULLIF(hours, 0)")
    cf = next(k for k in rowwise.ROW_KERNELS if k.name == "cornish_fisher_var")
    assert cf.signature() == "cornish_fisher_var(mu, sigma, skew, exkurt, alpha := 0.05) -> DOUBLE"
    assert len(rowwise.install_sql()) == 2 * len(rowwise.ROW_KERNELS)


def test_golden_in_cryptodb(db):
    db.con.register("inputs", _with_rownum(INPUTS))
    _check(db.sql(_golden_query()).fetchall())


def test_declared_return_types(db):
    db.con.register("inputs", _with_rownum(INPUTS))
    types = db.sql("SELECT " + ", ".join(f"typeof({c.call})" for c in GOLDEN) + " FROM inputs LIMIT 1").fetchall()[0]
    declared = {k.name: k.returns for k in rowwise.ROW_KERNELS}
    for case, got in zip(GOLDEN, types):
        assert got == declared[case.kernel], case.call


def test_zero_denominators_give_null_never_inf_or_nan(db):
    zero = {c: 0.0 for c in INPUTS}
    zero.update(side=1, ts=BASE_NS, expiry=BASE_NS, alpha=0.05)
    db.con.register("inputs", _with_rownum({c: [v] for c, v in zero.items()}))
    row = db.sql(_golden_query()).fetchall()[0]
    for case, got in zip(GOLDEN, row):
        if isinstance(got, float):
            assert math.isfinite(got), case.call
    by_call = dict(zip((c.call for c in GOLDEN), row))
    for call in ("microprice(bid, ask, bid_size, ask_size)", "spread_bps(bid, ask)", "l1_imbalance(bid_size, ask_size)",
                 "funding_apr(rate, hours := hours)", "basis_bps(perp, spot)", "fx_cross(a_quote, b_quote)",
                 "basis_annualized(fut, spot, ts, expiry)", "triangular_arbitrage(ab, bc, ac, fees_bps)",
                 "cip_basis(spot, fwd, r_dom, r_for, t)", "price_band(price, ref, pct)"):
        assert by_call[call] is None, call


def test_struct_fields_and_literal_defaults(db):
    rows = db.sql("SELECT (triangular_arbitrage(1.0, 2.0, 1.9, 1)).route,"
                  " triangular_arbitrage(1.0, 2.0, 2.1, 0).edge_bps,"
                  " funding_apr(0.0001), funding_apr(0.0001, 1), funding_apr(0.0001, hours := 1),"
                  " cornish_fisher_var(0, 1, 0, 0), cornish_fisher_var(0, 1, 0, 0, alpha := 0.01)").fetchall()[0]
    assert rows[0] == "A>B>C>A"  # 2.0/1.9 - 1 beats 1.9/2.0 - 1
    assert math.isclose(rows[1], 1e4 * (2.1 / 2.0 - 1), rel_tol=1e-12)
    assert math.isclose(rows[2], 0.0001 * 1095, rel_tol=1e-12)
    assert math.isclose(rows[3], 0.0001 * 8760, rel_tol=1e-12) and rows[3] == rows[4]
    assert math.isclose(rows[5], -NormalDist().inv_cdf(0.05), rel_tol=1e-13)
    assert math.isclose(rows[6], -NormalDist().inv_cdf(0.01), rel_tol=1e-13)


def test_norm_ppf_accuracy(db):
    """<= 1e-9 absolute against Python's inv_cdf, and p recovered through erfc (an independent CDF)."""
    ps = np.concatenate([np.logspace(-300, np.log10(0.5), 400), 1 - np.logspace(-15, np.log10(0.5), 200),
                         np.linspace(0.01, 0.99, 99)])
    db.con.register("ps", pa.table({"p": ps}))
    got = db.sql("SELECT p, norm_ppf(p) FROM ps").fetchall()
    for p, z in got:
        assert abs(z - NormalDist().inv_cdf(p)) <= 1e-9, p
        if p <= 0.5:
            assert math.isclose(0.5 * math.erfc(-z / math.sqrt(2)), p, rel_tol=1e-12), p
    assert db.sql("SELECT norm_ppf(0), norm_ppf(1), norm_ppf(-0.1), norm_ppf(NULL)").fetchall() == [(None,) * 4]
    _check_edges(db.sql(EDGE_QUERY).fetchall())


# Outside (0, 1) on rows (not folded as constants), and callers' columns named like the bodies' lambda
# variables: DuckDB 1.4 raises on ln(0) if a guard is missing; a capture would change the numbers.
EDGE_QUERY = ("SELECT norm_ppf(p), cornish_fisher_var(v, z, 0, 0), cornish_fisher_var(_r, _p, v, 0)"
              " FROM (VALUES (0.0, 1.0, 2.0, 1), (1.0, 1.0, 2.0, 2), (-0.1, 1.0, 2.0, 3), (NULL, 1.0, 2.0, 4),"
              " (0.5, -1.0, 0.5, 5)) t(p, v, z, i), (SELECT 3.0 AS _r, 4.0 AS _p) ORDER BY i")


def _edge_expected():
    z = NormalDist().inv_cdf(0.05)
    rows = []
    for p, v, zz in [(0.0, 1.0, 2.0), (1.0, 1.0, 2.0), (-0.1, 1.0, 2.0), (None, 1.0, 2.0), (0.5, -1.0, 0.5)]:
        ppf = None if p is None or not 0 < p < 1 else NormalDist().inv_cdf(p)
        rows.append((ppf, -(v + z * zz), _cornish_fisher(3.0, 4.0, v, 0.0, 0.05)))
    return rows


def _check_edges(rows) -> None:
    assert all(_same(got, want) for r, e in zip(rows, _edge_expected()) for got, want in zip(r, e)), rows


@pytest.mark.parametrize("alpha", ["0", "1", "1.5", "-0.05"])
def test_cornish_fisher_rejects_alpha_outside_unit_interval(db, alpha):
    with pytest.raises(duckdb.InvalidInputException, match=r"cornish_fisher_var: parameter alpha must be in \(0, 1\)"):
        db.sql(f"SELECT cornish_fisher_var(0, 1, 0, 0, alpha := {alpha})").fetchall()


def test_macros_are_documented_in_the_catalog(db):
    rows = db.sql("SELECT function_name, parameters, comment FROM duckdb_functions() "
                  "WHERE function_type = 'macro' AND schema_name = 'main'").fetchall()
    found = {name: (params, comment) for name, params, comment in rows}
    for k in rowwise.ROW_KERNELS:
        params, comment = found[k.name]
        assert params == [p.name for p in k.params]
        assert comment == f"{k.signature()}: {k.doc}"


def test_catalog_file_macros_work_in_plain_duckdb(db_path, tmp_path):
    cryptodb.connect(db_path).close()
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        con.register("inputs", _with_rownum(INPUTS))
        _check(con.sql(_golden_query()).fetchall())
    finally:
        con.close()


def test_old_catalog_gets_the_macros_on_read_write_open(db_path):
    cryptodb.connect(db_path).close()
    con = duckdb.connect(str(db_path))
    for k in rowwise.ROW_KERNELS[::-1]:
        con.execute(f"DROP MACRO {k.name}")
    con.execute("UPDATE cryptodb_meta SET value = '1' WHERE key = 'catalog_version'")
    con.close()
    with cryptodb.connect(db_path, read_only=True) as d:  # a reader never writes the catalog
        with pytest.raises(duckdb.CatalogException):
            d.sql("SELECT midprice(1, 2)").fetchall()
    with cryptodb.connect(db_path) as d:
        assert d.sql("SELECT midprice(1, 2)").fetchall() == [(1.5,)]
        assert d.sql("SELECT value FROM cryptodb_meta WHERE key = 'catalog_version'").fetchall() == [("2",)]


_DUCKDB14_CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import duckdb
    catalog, parquet, query, install, edges = sys.argv[2:7]
    out = {"version": duckdb.__version__}
    for where in ("file", "fresh"):
        con = duckdb.connect(catalog, read_only=True) if where == "file" else duckdb.connect()
        if where == "fresh":
            for statement in json.loads(install):
                con.execute(statement)
        source = "read_parquet(" + repr(parquet) + ")"
        out[where] = [list(r) for r in con.sql(query.replace("FROM inputs", "FROM " + source)).fetchall()]
        out[where + "_edges"] = [list(r) for r in con.sql(edges).fetchall()]
        con.close()
    print(json.dumps(out))
""")


def test_macros_in_duckdb_14(db_path, tmp_path):
    """The file's macros load and run in DuckDB 1.4, and the bodies also CREATE there as they are."""
    if not (COMPAT_DUCKDB14 / "duckdb").is_dir():
        pytest.skip("duckdb 1.4 not installed beside the venv (make test installs it)")
    import pyarrow.parquet as pq

    cryptodb.connect(db_path).close()
    parquet = tmp_path / "inputs.parquet"
    pq.write_table(_with_rownum(INPUTS), parquet)
    out = subprocess.run(
        [sys.executable, "-I", "-c", _DUCKDB14_CHILD, str(COMPAT_DUCKDB14), str(db_path), str(parquet),
         _golden_query(), json.dumps(rowwise.install_sql()), EDGE_QUERY],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["version"].startswith("1.4")
    _check([tuple(r) for r in result["file"]])
    _check([tuple(r) for r in result["fresh"]])
    _check_edges(result["file_edges"])
    _check_edges(result["fresh_edges"])


def test_rowwise_module_is_light():
    code = ("import sys, cryptodb.udfs.rowwise; "
            "print([m for m in ('numba', 'numpy', 'pandas', 'pyarrow', 'duckdb') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
