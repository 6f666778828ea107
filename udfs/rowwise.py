"""Row-wise kernels: closed-form formulas over one row, shipped as SQL macros in the catalog file.

Unlike the window kernels these need no state and no Python: each is one declarative unit whose
body is plain DuckDB SQL, so the catalog stores it (`CREATE MACRO`) and any DuckDB 1.4+ client that
opens the file can call it, with or without cryptodb installed.

Rules every body follows (tests/test_rowwise.py checks them):
- A zero denominator gives NULL (`NULLIF(d, 0)`): DuckDB's default IEEE division would give +-inf.
- A logarithm of a non-positive number gives NULL: DuckDB 2.0 returns NaN or -inf there and 1.4 raises.
- SQL NULL in gives NULL out, except that fat_finger is SQL's AND (a failed notional check is FALSE
  even when ref is NULL); funding_apy's NaN (a rate below -100 %) becomes NULL.
- A body names only its parameters (macros cannot see the caller's columns) and uses only syntax both
  DuckDB 1.4 and 2.0 accept: named defaults `x := 8`, and `lambda x: ...` (2.0 rejects `x -> ...`).
- A macro a body calls (norm_ppf) comes earlier in ROW_KERNELS: DuckDB checks names at CREATE time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

REQUIRED = object()


@dataclass(frozen=True)
class RowParam:
    """A macro parameter; one with a default is a named parameter (`hours := 8`) and comes last."""

    name: str
    default: object = REQUIRED

    def sql(self) -> str:
        if self.default is REQUIRED:
            return self.name
        value = self.default
        literal = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)
        return f"{self.name} := {literal}"


@dataclass(frozen=True)
class RowKernel:
    """One row-wise kernel: `name(params) -> returns`, computed by the SQL expression `body`."""

    name: str
    params: tuple[RowParam, ...]
    body: str
    doc: str
    category: str  # microstructure, crypto, fx, execution, cross-asset, risk, statistics
    returns: str = "DOUBLE"  # the result type for DOUBLE inputs (checked by the tests)

    def signature(self) -> str:
        return f"{self.name}({', '.join(p.sql() for p in self.params)}) -> {self.returns}"


def _unit(signature: str, body: str, doc: str, category: str, returns: str = "DOUBLE") -> RowKernel:
    """Build a unit from its SQL signature, e.g. `funding_apr(rate, hours := 8)`."""
    name, _, args = signature.partition("(")
    params = []
    for arg in args.rstrip(")").split(","):
        arg_name, _, default = (part.strip() for part in arg.partition(":="))
        params.append(RowParam(arg_name, ast.literal_eval(default) if default else REQUIRED))
    return RowKernel(name.strip(), tuple(params), " ".join(body.split()), doc, category, returns)


def _horner(coefficients: tuple[float, ...], var: str) -> str:
    """c0*v^n + ... + cn in Horner form, with exponent literals so that DuckDB reads them as DOUBLE."""
    expr = f"{coefficients[0]:.17e}"
    for c in coefficients[1:]:
        expr = f"({expr} * {var} + {c:.17e})"
    return expr


# Wichura (1988), Algorithm AS241 PPND16: relative error ~1e-16 over (0, 1) without a refinement
# step (a Newton/Halley refinement of Acklam's approximation would need erfc, which DuckDB lacks).
_AS241_CENTRAL = (  # |p - 0.5| <= 0.425, in r = 0.180625 - q^2; times q
    (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4, 4.5921953931549871457e4,
     1.3731693765509461125e4, 1.9715909503065514427e3, 1.3314166789178437745e2, 3.3871328727963666080e0),
    (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4, 2.1213794301586595867e4,
     5.3941960214247511077e3, 6.8718700749205790830e2, 4.2313330701600911252e1, 1.0),
)
_AS241_NEAR = (  # r = sqrt(-ln(min(p, 1 - p))) <= 5, in r - 1.6
    (7.7454501427834140764e-4, 2.2723844989269184583e-2, 2.4178072517745061177e-1, 1.2704582524523683826e0,
     3.6478483247632046050e0, 5.7694972214606914055e0, 4.6303378461565452959e0, 1.4234371107496835773e0),
    (1.0507500716444168432e-9, 5.4759380849953449460e-4, 1.5198666563616457197e-2, 1.4810397642748007459e-1,
     6.8976733498510000455e-1, 1.6763848301838038494e0, 2.0531916266377588219e0, 1.0),
)
_AS241_FAR = (  # r > 5 (p < 1.4e-11), in r - 5
    (2.0103343992922881327e-7, 2.7115555687434875782e-5, 1.2426609473880784386e-3, 2.6532189526576123093e-2,
     2.9656057182850489123e-1, 1.7848265399172913358e0, 5.4637849111641143699e0, 6.6579046435011037772e0),
    (2.0442631033899397856e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5, 7.8686913114561325910e-4,
     1.4875361290850614853e-2, 1.3692988092273580531e-1, 5.9983220655588793769e-1, 1.0),
)


def _norm_ppf_body() -> str:
    # Written out: p and the tail's r appear ~40 times, so DuckDB plans it in 20-100 ms, and it runs
    # ~2.5x faster per row than binding them once with one-element list_transform lambdas.
    q = "(p - 0.5)"
    r_central = f"(0.180625 - {q} * {q})"
    # The CASE inside ln keeps its argument in (0, 0.5] on every row however DuckDB evaluates it.
    r_tail = "sqrt(-ln(CASE WHEN p > 0 AND p < 1 THEN least(p, 1 - p) END))"

    def ratio(coefficients, var):
        num, den = coefficients
        return f"{_horner(num, var)} / {_horner(den, var)}"

    return (
        "CASE WHEN p <= 0 OR p >= 1 THEN NULL "
        f"WHEN abs({q}) <= 0.425 THEN {q} * {ratio(_AS241_CENTRAL, r_central)} "
        f"WHEN {r_tail} <= 5 THEN sign({q}) * {ratio(_AS241_NEAR, f'({r_tail} - 1.6)')} "
        f"ELSE sign({q}) * {ratio(_AS241_FAR, f'({r_tail} - 5)')} END"
    )


def _triangular_body() -> str:
    forward = "1e4 * (ab * bc / NULLIF(ac, 0) - 1)"  # A>B>C>A
    reverse = "1e4 * (ac / NULLIF(ab * bc, 0) - 1)"  # A>C>B>A
    return (
        f"CAST(CASE WHEN {forward} IS NULL OR {reverse} IS NULL OR fees_bps IS NULL THEN NULL "
        f"WHEN {forward} >= {reverse} THEN {{'edge_bps': {forward} - fees_bps, 'route': 'A>B>C>A'}} "
        f"ELSE {{'edge_bps': {reverse} - fees_bps, 'route': 'A>C>B>A'}} END "
        "AS STRUCT(edge_bps DOUBLE, route VARCHAR))"
    )


def _cornish_fisher_body() -> str:
    # z appears 12 times: written out, each a copy of norm_ppf, planning one call took 0.2 s in
    # DuckDB 2.0 and 2 s in 1.4. A one-element list_transform binds z once; the other arguments
    # travel in the same struct so that the lambda body names nothing of the caller's (a caller's
    # column called v cannot be captured).
    zc = ("v.z + (v.z * v.z - 1) * v.skew / 6 + (v.z * v.z * v.z - 3 * v.z) * v.exkurt / 24 "
          "- (2 * v.z * v.z * v.z - 5 * v.z) * v.skew * v.skew / 36")
    return (
        "CASE WHEN alpha <= 0 OR alpha >= 1 "
        "THEN error('cornish_fisher_var: parameter alpha must be in (0, 1), got ' || alpha) "
        "ELSE list_transform([{'z': norm_ppf(alpha), 'mu': mu, 'sigma': sigma, 'skew': skew, 'exkurt': exkurt}], "
        f"lambda v: -(v.mu + ({zc}) * v.sigma))[1] END"
    )


_MID = "(bid + ask) / 2"

ROW_KERNELS: list[RowKernel] = [
    # -- microstructure ------------------------------------------------------------------------
    _unit("midprice(bid, ask)", _MID, "mid quote (bid + ask) / 2", "microstructure"),
    _unit("microprice(bid, ask, bid_size, ask_size)",
          "(bid * ask_size + ask * bid_size) / NULLIF(bid_size + ask_size, 0)",
          "size-weighted mid (bid*ask_size + ask*bid_size) / (bid_size + ask_size); NULL if sizes sum to 0",
          "microstructure"),
    _unit("quoted_spread(bid, ask)", "ask - bid", "quoted spread ask - bid, in price units", "microstructure"),
    _unit("spread_bps(bid, ask)", f"1e4 * (ask - bid) / NULLIF({_MID}, 0)",
          "quoted spread in basis points of the mid: 1e4 * (ask - bid) / midprice", "microstructure"),
    _unit("effective_spread(price, mid, side)", "2 * side * (price - mid)",
          "effective spread 2 * side * (price - mid); side +1 buy, -1 sell", "microstructure"),
    _unit("effective_spread_bps(price, mid, side)", "1e4 * 2 * side * (price - mid) / NULLIF(mid, 0)",
          "effective spread in basis points of the mid: 1e4 * 2 * side * (price - mid) / mid", "microstructure"),
    _unit("l1_imbalance(bid_size, ask_size)", "(bid_size - ask_size) / NULLIF(bid_size + ask_size, 0)",
          "top-of-book imbalance (bid_size - ask_size) / (bid_size + ask_size), in [-1, 1]", "microstructure"),
    _unit("signed_volume(side, volume)", "side * volume",
          "volume signed by the aggressor side (+1 buy, -1 sell)", "microstructure"),
    # -- crypto --------------------------------------------------------------------------------
    _unit("funding_apr(rate, hours := 8)", "rate * 24 * 365 / NULLIF(hours, 0)",
          "funding rate per `hours` period as a simple annual rate: rate * 24 * 365 / hours", "crypto"),
    _unit("funding_apy(rate, hours := 8)",
          # A rate below -100 % has no real compounded value: NaN from pow becomes NULL.
          "NULLIF(pow(1 + rate, 8760 / NULLIF(hours, 0)), 'NaN'::DOUBLE) - 1",
          "funding rate per `hours` period compounded over a year: (1 + rate)^(8760 / hours) - 1", "crypto"),
    _unit("basis_bps(perp, spot)", "1e4 * (perp / NULLIF(spot, 0) - 1)",
          "perp or future premium over spot in basis points: 1e4 * (perp / spot - 1)", "crypto"),
    _unit("basis_annualized(fut, spot, ts, expiry)",
          # epoch_ns, not epoch: 1.4's epoch() truncates TIMESTAMP_NS to microseconds, 2.0's rounds.
          "(fut / NULLIF(spot, 0) - 1) * (365 * 86400 / NULLIF((epoch_ns(expiry) - epoch_ns(ts)) / 1e9, 0))",
          "basis annualised to expiry: (fut / spot - 1) * (365 days / (expiry - ts))", "crypto"),
    _unit("cash_and_carry_edge_bps(perp, spot, funding_rate, fees_bps, periods := 1)",
          "1e4 * (perp - spot) / NULLIF(spot, 0) + 1e4 * funding_rate * periods - fees_bps",
          "short perp + long spot edge in bps: premium + funding received over `periods` - fees", "crypto"),
    _unit("perp_fair_price(spot, funding_rate, periods := 1)", "spot * (1 + funding_rate * periods)",
          "perp price implied by spot and funding over `periods`: spot * (1 + funding_rate * periods)",
          "crypto"),
    _unit("triangular_arbitrage(ab, bc, ac, fees_bps)", _triangular_body(),
          "best triangular route: 1e4*(ab*bc/ac - 1) 'A>B>C>A' or 1e4*(ac/(ab*bc) - 1) 'A>C>B>A', minus fees",
          "crypto", returns="STRUCT(edge_bps DOUBLE, route VARCHAR)"),
    # -- fx ------------------------------------------------------------------------------------
    _unit("fx_cross(a_quote, b_quote)", "a_quote / NULLIF(b_quote, 0)",
          "cross rate of two quotes against a common currency: a_quote / b_quote", "fx"),
    _unit("pip_value(size, pip, quote_to_account)", "size * pip * quote_to_account",
          "value of one pip in the account currency: size * pip * quote_to_account", "fx"),
    _unit("forward_points(spot, r_dom, r_for, t_years)", "spot * exp((r_dom - r_for) * t_years) - spot",
          "covered-interest forward minus spot: spot * exp((r_dom - r_for) * t) - spot", "fx"),
    _unit("cip_basis(spot, fwd, r_dom, r_for, t)",
          "ln(CASE WHEN fwd / NULLIF(spot, 0) > 0 THEN fwd / spot END) / NULLIF(t, 0) - (r_dom - r_for)",
          "covered interest parity deviation: ln(fwd / spot) / t - (r_dom - r_for)", "fx"),
    _unit("carry_signal(r_dom, r_for, vol, k := 1)", "(r_dom - r_for) - k * vol",
          "rate differential less a volatility penalty: (r_dom - r_for) - k * vol", "fx"),
    # -- execution -----------------------------------------------------------------------------
    _unit("implementation_shortfall_bps(exec, arrival, side)",
          "1e4 * side * (exec - arrival) / NULLIF(arrival, 0)",
          "execution cost vs the arrival price in bps: 1e4 * side * (exec - arrival) / arrival", "execution"),
    _unit("arrival_impact_bps(exec, mid, side)", "1e4 * side * (exec - mid) / NULLIF(mid, 0)",
          "execution cost vs the mid in bps: 1e4 * side * (exec - mid) / mid", "execution"),
    _unit("pairs_spread(a, b, beta)", "a - beta * b", "hedged pair spread a - beta * b", "cross-asset"),
    # -- risk ----------------------------------------------------------------------------------
    _unit("price_band(price, ref, pct)", "abs(price / NULLIF(ref, 0) - 1) <= pct",
          "true when price is within pct of ref: abs(price / ref - 1) <= pct", "risk", returns="BOOLEAN"),
    _unit("circuit_breaker(price, ref, pct)", "abs(price / NULLIF(ref, 0) - 1) > pct",
          "true when price moved more than pct from ref: abs(price / ref - 1) > pct", "risk", returns="BOOLEAN"),
    _unit("fat_finger(price, ref, size, pct, notional_max)",
          "abs(price / NULLIF(ref, 0) - 1) <= pct AND price * size <= notional_max",
          "order check: price_band(price, ref, pct) AND price * size <= notional_max (SQL AND)", "risk",
          returns="BOOLEAN"),
    _unit("norm_ppf(p)", _norm_ppf_body(),
          "inverse standard normal CDF (Wichura AS241, ~1e-16 relative); NULL outside (0, 1)", "statistics"),
    _unit("cornish_fisher_var(mu, sigma, skew, exkurt, alpha := 0.05)", _cornish_fisher_body(),
          "Cornish-Fisher VaR -(mu + zc * sigma), z = norm_ppf(alpha) adjusted for skew and excess kurtosis",
          "risk"),
]


def macro_sql(kernel: RowKernel) -> str:
    params = ", ".join(p.sql() for p in kernel.params)
    return f"CREATE OR REPLACE MACRO {kernel.name}({params}) AS {kernel.body}"


def comment_sql(kernel: RowKernel) -> str:
    """The doc, visible to any client as duckdb_functions().comment."""
    text = kernel.signature() + ": " + kernel.doc
    return f"COMMENT ON MACRO {kernel.name} IS '" + text.replace("'", "''") + "'"


def install_sql() -> list[str]:
    """Every statement that creates (or replaces) the row-wise macros and their comments, in order."""
    return [sql for kernel in ROW_KERNELS for sql in (macro_sql(kernel), comment_sql(kernel))]
