"""Pass 1: find kernel calls in a parsed statement and check them before any data is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import duckdb
from sqlglot import exp

from cryptodb.errors import CryptodbError
from cryptodb.udfs import registry
from cryptodb.udfs.kernel import KernelParamError, KernelSpec


class KernelShapeError(CryptodbError):
    """A kernel call that cannot run as written; the message says what to write instead."""


@dataclass
class KernelCall:
    node: exp.Window  # replaced by the kernel's output column
    scope: exp.Select  # the SELECT whose rows the kernel runs over
    spec: KernelSpec
    field: str | None  # an alias such as macd_hist picks one field of a STRUCT kernel
    name: str  # as written
    inputs: list[exp.Expression]
    positional: list[exp.Expression]
    named: dict[str, exp.Expression]
    partition: list[exp.Expression]
    order: list[exp.Ordered]
    params: dict = field(default_factory=dict)
    _window_key: tuple | None = field(default=None, repr=False, compare=False)
    _input_key: tuple | None = field(default=None, repr=False, compare=False)

    def window_key(self) -> tuple:
        """Calls with equal keys share grouping and ordering work. Kept after the first call: it is
        asked for many times per statement, and generating the SQL each time was 15 % of a live batch."""
        if self._window_key is None:
            self._window_key = (tuple(p.sql() for p in self.partition), tuple(o.sql() for o in self.order))
        return self._window_key

    def input_key(self) -> tuple:
        """The input expressions as SQL, kept like `window_key` (live mode names states by them)."""
        if self._input_key is None:
            self._input_key = tuple(e.sql() for e in self.inputs)
        return self._input_key


@lru_cache(maxsize=1)
def duckdb_builtins() -> frozenset[str]:
    """DuckDB's own function names: a kernel sharing one is a kernel only when given parameters."""
    names = duckdb.connect().sql("SELECT DISTINCT lower(function_name) FROM duckdb_functions()").fetchall()
    return frozenset(n for (n,) in names)


def _named_window(scope: exp.Select, name: str) -> exp.Window | None:
    for w in scope.args.get("windows") or []:
        if w.this.name.lower() == name.lower():
            return w
    return None


def _frame_is_default(spec: exp.WindowSpec | None) -> bool:
    """No frame, or the cumulative frame a kernel computes anyway."""
    if spec is None:
        return True
    start = str(spec.args.get("start") or "").upper()
    end = str(spec.args.get("end") or "").upper()
    return start == "UNBOUNDED" and str(spec.args.get("start_side") or "").upper() == "PRECEDING" \
        and end == "CURRENT ROW"


def _example(name: str, spec: KernelSpec) -> str:
    args = ", ".join(spec.inputs)
    return f"{name}({args}, ...) OVER (PARTITION BY symbol ORDER BY ts)"


def find_calls(tree: exp.Expression) -> list[KernelCall]:
    calls = []
    for node in tree.find_all(exp.Window):
        fn = node.this
        if not isinstance(fn, exp.Anonymous):
            continue
        found = registry.resolve(fn.name)
        if found is None:
            continue
        spec, field_name = found
        name = fn.name.lower()
        if name in duckdb_builtins() and len(fn.expressions) <= len(spec.inputs):
            continue  # stddev(x) OVER w is DuckDB's; stddev(x, 20) OVER w is the kernel
        scope = node.find_ancestor(exp.Select)
        if scope is None:
            raise KernelShapeError(f"{name}: a kernel call must be inside a SELECT")
        partition = list(node.args.get("partition_by") or [])
        order_node = node.args.get("order")
        frame = node.args.get("spec")
        base = node.args.get("alias")
        if base is not None:
            named = _named_window(scope, base.name)
            if named is None:
                raise KernelShapeError(f"{name}: window {base.name!r} is not defined in this SELECT's WINDOW clause")
            partition = partition or list(named.args.get("partition_by") or [])
            order_node = order_node or named.args.get("order")
            frame = frame or named.args.get("spec")
        order = list(order_node.expressions) if order_node else []
        if not order:
            raise KernelShapeError(
                f"{name}: a kernel runs in time order; give its window an ORDER BY, e.g. {_example(name, spec)}")
        if not _frame_is_default(frame):
            raise KernelShapeError(
                f"{name}: kernels compute their own window from their parameters; remove the frame clause "
                f"'{frame.sql()}' (write e.g. {name}(..., 20) for the last 20 rows or INTERVAL 5 MINUTE for time)")
        positional, named_args = [], {}
        for arg in fn.expressions:
            if isinstance(arg, (exp.PropertyEQ, exp.Kwarg)):
                named_args[arg.this.name.lower()] = arg.expression
            elif named_args:
                raise KernelShapeError(f"{name}: positional arguments cannot follow named ones")
            else:
                positional.append(arg)
        k = len(spec.inputs)
        if len(positional) < k:
            raise KernelShapeError(
                f"{name}: expects {k} input column(s) before its parameters: {spec.signature()}")
        calls.append(KernelCall(node, scope, spec, field_name, name, positional[:k], positional[k:],
                                named_args, partition, order))
    return calls


def bind_params(con: duckdb.DuckDBPyConnection, calls: list[KernelCall], sql: str | None = None,
                bound: tuple | None = None) -> tuple[str, tuple]:
    """Evaluate every parameter expression as a constant (literals, INTERVALs, getvariable(...),
    arithmetic) in one DuckDB query, then check it against the kernel's declaration. Returns that
    query and the values it gave, which a caller binding the same calls again may pass back as
    `sql` and `bound`: the same values are not checked again (live mode binds on every batch)."""
    exprs = [e for c in calls for e in (*c.positional, *c.named.values())]
    values = ()
    if exprs:
        sql = sql or "SELECT " + ", ".join(e.sql(dialect="duckdb") for e in exprs)
        try:
            values = tuple(con.execute(sql).fetchall()[0])
        except duckdb.Error:
            _blame_non_constant(con, calls)
            raise
    if bound is not None and values == bound:
        return sql or "", values
    it = iter(values)
    for c in calls:
        positional = [next(it) for _ in c.positional]
        named = {k: next(it) for k in c.named}
        try:
            c.params = c.spec.bind(positional, named)
        except KernelParamError as e:
            raise KernelShapeError(str(e)) from None
    return sql or "", values


def _blame_non_constant(con, calls) -> None:
    for c in calls:
        names = [p.name for p in c.spec.params]
        items = [(names[i] if i < len(names) else str(i + 1), e) for i, e in enumerate(c.positional)]
        items += list(c.named.items())
        for label, e in items:
            try:
                con.execute("SELECT " + e.sql(dialect="duckdb")).fetchall()
            except duckdb.Error as err:
                raise KernelShapeError(
                    f"{c.name}: parameter {label} ({e.sql()}) must be a constant (a literal, an INTERVAL, "
                    f"getvariable('name') or arithmetic on those): {str(err).splitlines()[0]}") from None
