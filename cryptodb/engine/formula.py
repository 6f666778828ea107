"""Row formulas evaluated over Arrow columns: the arithmetic of row-wise kernels without a DuckDB pass.

A scope that reads an earlier scope's spliced rows often needs a few computed columns beside the
ones it picks: research's CUSUM step reads `ret / NULLIF(ret_std_100, 0)`, and the row-wise
features of the scope before it (`midprice(bid, ask)`, `l1_imbalance(...)`) are computed there
too. On a live micro-batch, DuckDB took ~12 ms for that pass, nearly all of it binding the query
(its text holds the whole CTE); these formulas take ~1 ms. Over 10M rows both take about the
same (memory-bound), so research neither gains nor loses.

Only what can be evaluated exactly as DuckDB does is taken: DOUBLE columns, numeric literals,
`+ - * /`, negation, NULLIF, parentheses, and calls of the built-in row kernels whose bodies are
made of these (udfs.rowwise, the definitions cryptodb installs under those names). Each
operation is the IEEE double operation DuckDB performs, in the same order, so the results are
bit for bit DuckDB's: x / 0 is +-inf, NULL propagates, NULLIF treats NaN as equal to NaN
(DuckDB's comparison), and a DOUBLE literal combined with another literal (1e4 * 2) is folded as
DuckDB folds it. Anything else (a CASE, a function, an integer column, two INTEGER or DECIMAL
literals combined, whose type DuckDB would choose) stays with DuckDB.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
from sqlglot import exp, parse_one

from cryptodb.engine.memory import output_array
from cryptodb.udfs.jit import njit

THREADED_ROWS = 200_000  # from this many rows, two threads share the rows
BLOCK_ROWS = 1024  # rows per register: a block's registers stay in the first-level cache
# What a compiled part is: computed per row from a column, a literal DuckDB types as DOUBLE (1e4),
# or another literal (2 is an INTEGER, 0.5 a DECIMAL).
DOUBLE, DOUBLE_LITERAL, LITERAL = "double", "double literal", "literal"
_FOLD = {"add": float.__add__, "sub": float.__sub__, "mul": float.__mul__, "div": float.__truediv__}


@dataclass(frozen=True)
class Formula:
    """A row formula in postfix form over `inputs` (spliced column names):
    ("col", i), ("lit", value), ("neg",), ("add" | "sub" | "mul" | "div",), ("nullif",)."""

    inputs: tuple[str, ...]
    code: tuple[tuple, ...]


# A name's meaning where a formula reads it: a spliced column, or an expression to compile in
# its own namespace (a CTE's computed column), or None (unknown: not a formula).
Resolver = Callable[[str], "tuple[str, str] | tuple[str, exp.Expression, Resolver] | None"]


def compile_formula(node: exp.Expression, resolve: Resolver) -> Formula | None:
    """The formula computing `node`, or None when DuckDB must compute it."""
    inputs: list[str] = []
    code: list[tuple] = []
    try:
        kind = _emit(node, resolve, inputs, code, depth=0)
    except _NotAFormula:
        return None
    return Formula(tuple(inputs), tuple(code)) if kind == DOUBLE else None


class _NotAFormula(Exception):
    pass


def _emit(node, resolve: Resolver, inputs: list[str], code: list[tuple], depth: int) -> str:
    if depth > 64:
        raise _NotAFormula
    if isinstance(node, exp.Alias):
        return _emit(node.this, resolve, inputs, code, depth + 1)
    if isinstance(node, exp.Paren):
        return _emit(node.this, resolve, inputs, code, depth + 1)
    if isinstance(node, exp.Column):
        if node.table or isinstance(node.this, exp.Star):
            raise _NotAFormula
        target = resolve(node.name.lower())
        if target is None:
            raise _NotAFormula
        if target[0] == "col":
            if target[1] not in inputs:
                inputs.append(target[1])
            code.append(("col", inputs.index(target[1])))
            return DOUBLE
        _, expression, scope = target
        return _emit(expression, scope, inputs, code, depth + 1)
    if isinstance(node, exp.Literal):
        text = node.this.lower()
        if node.is_string or ("e" not in text and sum(c.isdigit() for c in text) > 15):
            # An INTEGER or DECIMAL of more digits than a double holds exactly: DuckDB's cast to
            # DOUBLE need not round it as Python's float() does.
            raise _NotAFormula
        code.append(("lit", float(text)))
        return DOUBLE_LITERAL if "e" in text else LITERAL
    if isinstance(node, exp.Neg):
        if _emit(node.this, resolve, inputs, code, depth + 1) != DOUBLE:
            raise _NotAFormula  # DuckDB types a negated literal itself (-0.0 as DECIMAL is 0)
        code.append(("neg",))
        return DOUBLE
    binary = next((name for cls, name in ((exp.Add, "add"), (exp.Sub, "sub"), (exp.Mul, "mul"),
                                          (exp.Div, "div"), (exp.Nullif, "nullif")) if type(node) is cls), None)
    if binary is not None:
        if isinstance(node, exp.Div) and (node.args.get("typed") or node.args.get("safe")):
            raise _NotAFormula
        kinds = {_emit(node.this, resolve, inputs, code, depth + 1),
                 _emit(node.expression, resolve, inputs, code, depth + 1)}
        if DOUBLE in kinds:
            code.append((binary,))
            return DOUBLE
        if DOUBLE_LITERAL not in kinds or binary == "nullif":
            raise _NotAFormula  # two literals: DuckDB's INTEGER or DECIMAL arithmetic, not ours
        # A DOUBLE literal with another (1e4 * 2): DuckDB folds it into a DOUBLE constant.
        (_, y), (_, x) = code.pop(), code.pop()
        try:
            code.append(("lit", _FOLD[binary](x, y)))
        except ZeroDivisionError:
            raise _NotAFormula from None  # DuckDB's constant is +-inf or NaN; leave it to DuckDB
        return DOUBLE_LITERAL
    if isinstance(node, exp.Anonymous):  # sqlglot knows no row kernel's name: all are Anonymous
        body = _row_kernels().get(node.name.lower())
        if body is None:
            raise _NotAFormula
        expression, params = body
        return _emit(expression, _macro_scope(params, node.expressions, resolve), inputs, code, depth + 1)
    raise _NotAFormula


@functools.cache
def _row_kernels() -> dict[str, tuple[exp.Expression, tuple]]:
    from cryptodb.udfs.rowwise import ROW_KERNELS

    return {k.name: (parse_one(k.body, read="duckdb"), k.params) for k in ROW_KERNELS if k.returns == "DOUBLE"}


def _macro_scope(params: tuple, args: list, outer: Resolver) -> Resolver:
    """A macro's parameters bound to the call's positional arguments (compiled where the call is)."""
    if len(args) > len(params) or any(isinstance(a, (exp.PropertyEQ, exp.Kwarg)) for a in args):
        raise _NotAFormula
    bound = {}
    for param, arg in zip(params, args):
        bound[param.name] = arg
    for param in params[len(args):]:
        if not isinstance(param.default, (int, float)) or isinstance(param.default, bool):
            raise _NotAFormula
        bound[param.name] = exp.Literal.number(param.default)

    def resolve(name: str):
        arg = bound.get(name)
        return None if arg is None else ("expr", arg, outer)

    return resolve


# -- evaluation ------------------------------------------------------------------------------------
LOAD, LIT, NEG, ADD, SUB, MUL, DIV, NULLIF, STORE = range(9)
_OPS = {"neg": NEG, "add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "nullif": NULLIF}


@functools.lru_cache(maxsize=256)
def register_code(formulas: tuple[Formula, ...], inputs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """The formulas as one register program (op, dst, a, b) rows, its literals and register count.
    Every step writes a register of its own; STORE (output j, register) ends each formula."""
    rows, literals, top = [], [], 0
    for j, formula in enumerate(formulas):
        stack = []
        for op, *arg in formula.code:
            if op == "col":
                rows.append((LOAD, top, inputs.index(formula.inputs[arg[0]]), 0))
            elif op == "lit":
                rows.append((LIT, top, len(literals), 0))
                literals.append(arg[0])
            elif op == "neg":
                rows.append((NEG, top, stack.pop(), 0))
            else:
                b, a = stack.pop(), stack.pop()
                rows.append((_OPS[op], top, a, b))
            stack.append(top)
            top += 1
        rows.append((STORE, j, stack.pop(), 0))
    return np.array(rows, np.int64).reshape(-1, 4), np.array(literals, np.float64), top


@njit(cache=True, error_model="numpy")
def _run_segment(code, literals, reg, valid, values, bitmaps, offsets, first, rows, out, ok):
    """Rows [first, first + rows) of every formula, a block of registers' width at a time.
    values[i] / bitmaps[i] / offsets[i]: input i over this segment (an empty bitmap: no NULLs).
    x / 0 is +-inf and 0 / 0 NaN (error_model numpy), DuckDB's IEEE division. `dense[r]`: register
    r has no NULL in this block, so its validity is never written nor read (the common case)."""
    width = reg.shape[1]
    dense = np.ones(reg.shape[0], np.bool_)
    for a in range(0, rows, width):
        n = min(width, rows - a)
        for k in range(code.shape[0]):
            op, d, x, y = code[k, 0], code[k, 1], code[k, 2], code[k, 3]
            rd = reg[d, :n]
            if op == LOAD:
                rd[:] = values[x][a:a + n]
                bm = bitmaps[x]
                dense[d] = len(bm) == 0
                if not dense[d]:
                    o = offsets[x] + a
                    vd = valid[d]
                    for i in range(n):
                        vd[i] = (bm[(o + i) >> 3] >> ((o + i) & 7)) & 1
                    # NULLs are rare in a block: one without any is dense again.
                    dense[d] = vd[:n].all()
                continue
            if op == LIT:
                rd[:] = literals[x]
                dense[d] = True
                continue
            if op == STORE:
                out[d, first + a:first + a + n] = reg[x, :n]
                if dense[x]:
                    ok[d, first + a:first + a + n] = True
                else:
                    ok[d, first + a:first + a + n] = valid[x, :n]
                continue
            rx = reg[x, :n]
            if op == NEG:
                for i in range(n):
                    rd[i] = -rx[i]
                dense[d] = dense[x]
                if not dense[x]:
                    valid[d, :n] = valid[x, :n]
                continue
            ry = reg[y, :n]
            if op == ADD:
                for i in range(n):
                    rd[i] = rx[i] + ry[i]
            elif op == SUB:
                for i in range(n):
                    rd[i] = rx[i] - ry[i]
            elif op == MUL:
                for i in range(n):
                    rd[i] = rx[i] * ry[i]
            elif op == DIV:
                for i in range(n):
                    rd[i] = rx[i] / ry[i]
            if op == NULLIF:
                # DuckDB's NULLIF: NULL where both are values and equal, NaN equal to NaN.
                vd = valid[d]
                for i in range(n):
                    p = rx[i]
                    q = ry[i]
                    rd[i] = p
                    same = p == q or (p != p and q != q)
                    vd[i] = (dense[x] or valid[x, i]) and not ((dense[y] or valid[y, i]) and same)
                dense[d] = vd[:n].all()
            elif dense[x] and dense[y]:
                dense[d] = True
            else:
                vd = valid[d]
                for i in range(n):
                    vd[i] = (dense[x] or valid[x, i]) and (dense[y] or valid[y, i])
                dense[d] = False
    return 0


def evaluate(formulas: list[Formula], columns: dict[str, pa.ChunkedArray], rows: int) -> list[pa.Array]:
    """Each formula over `rows` rows of `columns` (float64 each), as an Arrow float64 column."""
    names = tuple(columns)
    code, literals, registers = register_code(tuple(formulas), names)
    out = output_array(rows, len(formulas)).T  # row-major by formula: each output contiguous
    ok = np.empty((len(formulas), rows), np.bool_)
    located = {name: _Chunks(col) for name, col in columns.items()}
    cuts = sorted({0, rows, *(int(x) for chunks in located.values() for x in chunks.starts)})
    segments = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]

    def run(part: list[tuple[int, int]]) -> None:
        scratch = np.empty((max(registers, 1), BLOCK_ROWS))
        valid = np.empty(scratch.shape, np.bool_)
        for a, b in part:
            views = [located[name].view(a, b) for name in names]
            # Tuples, not numba's typed lists: building one of those cost ~50 us an input.
            _run_segment(code, literals, scratch, valid, tuple(v for v, _, _ in views), tuple(m for _, m, _ in views),
                         np.array([o for _, _, o in views], np.int64), a, b - a, out, ok)

    if rows >= THREADED_ROWS:
        half = _halves(segments, rows)
        with ThreadPoolExecutor(2) as pool:  # the core lets go of the GIL
            list(pool.map(run, half))
    else:
        run(segments)
    return [_to_arrow(out[j], ok[j]) for j in range(len(formulas))]


def _halves(segments: list[tuple[int, int]], rows: int) -> list[list[tuple[int, int]]]:
    """Segments split into two runs of about equal rows (one large segment is cut in two)."""
    middle = rows // 2
    first, second = [], []
    for a, b in segments:
        if b <= middle:
            first.append((a, b))
        elif a >= middle:
            second.append((a, b))
        else:
            first.append((a, middle))
            second.append((middle, b))
    return [first, second]


_NO_BITMAP = np.empty(0, np.uint8)
_NO_BITMAP.setflags(write=False)


class _Chunks:
    """A column's chunks and the row each starts at (DuckDB hands 10M rows over in ~200)."""

    def __init__(self, col: pa.ChunkedArray):
        self.chunks = [c for c in col.chunks if len(c)]
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks])

    def view(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows [a, b), inside one chunk: values (indexed from 0), the validity bitmap (empty when
        the chunk has no NULL) and the bit offset of row a in it."""
        i = int(np.searchsorted(self.starts, a, side="right")) - 1
        chunk, lo = self.chunks[i], a - int(self.starts[i])
        if b - a > len(chunk) - lo:
            raise AssertionError("a segment crosses a chunk boundary")
        values = np.frombuffer(chunk.buffers()[1], np.float64, count=chunk.offset + len(chunk))
        values = _read_only(values[chunk.offset + lo: chunk.offset + lo + (b - a)])
        if chunk.null_count == 0 or chunk.buffers()[0] is None:
            return values, _NO_BITMAP, 0
        return values, _read_only(np.frombuffer(chunk.buffers()[0], np.uint8)), chunk.offset + lo


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: the core's inputs form one tuple type only if all are alike (an Arrow
    buffer we filled ourselves is writable, one DuckDB filled is not)."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _to_arrow(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    nulls = len(valid) - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.float64(), len(values), [bitmap, pa.py_buffer(values)], nulls)
