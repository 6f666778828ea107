"""Pass 3: compute the kernels of one scope over the Arrow columns of its input rows.

Rows arrive in storage order. When every partition is already in ORDER BY order (the store
keeps files time-sorted, so this is the normal case) they are processed as they are; otherwise
they are processed in a stable sort by (partition, keys), so ties keep storage order. Both paths
feed the same kernels in the same per-partition order, so they give identical results.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cryptodb.engine.calls import KernelCall, KernelShapeError
from cryptodb.engine.fusion import FusedCall, fuse
from cryptodb.engine.memory import keep_large_pages, output_array
from cryptodb.engine.planner import ScopePlan, dependency_of
from cryptodb.engine.resume import ResidentStates, call_id, partition_names
from cryptodb.udfs.jit import njit

_THREADS = max(1, min(4, os.cpu_count() or 1))
# Below this many rows a statement's kernels run one after another on the calling thread: handing
# a live micro-batch's 46 small calls to a pool cost more than computing them.
THREADED_ROWS = 50_000
ARROW_TYPES = {"DOUBLE": pa.float64(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_()}
_SIGN = np.int64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True)
def _string_changes(offsets, data, valid):
    """changed[i]: row i+1 differs from row i (bytes compared exactly; NULL differs from a value)."""
    n = len(offsets) - 1
    changed = np.zeros(max(n - 1, 0), np.bool_)
    for i in range(n - 1):
        if valid[i] != valid[i + 1]:
            changed[i] = True
            continue
        a0, a1, b0, b1 = offsets[i], offsets[i + 1], offsets[i + 1], offsets[i + 2]
        if a1 - a0 != b1 - b0:
            changed[i] = True
            continue
        for k in range(a1 - a0):
            if data[a0 + k] != data[b0 + k]:
                changed[i] = True
                break
    return changed


@njit(cache=True)
def _string_run_starts(offsets, data):
    """Rows where a run of equal strings starts (no NULLs). Equal consecutive strings of length L
    make the bytes periodic with period L, so runs are checked by comparing the byte stream with
    itself shifted by L, a block of rows at a time: 4x faster than comparing string by string."""
    n = len(offsets) - 1
    out = np.empty(n, np.int64)
    m = 0
    i = 0
    while i < n:
        out[m] = i
        m += 1
        L = offsets[i + 1] - offsets[i]
        j = i + 1  # rows i..j-1 are equal
        ahead = data[L:]  # ahead[b] = data[b + L]; unsigned indices below let the loop vectorize
        while j < n:
            stop = min(j + 256, n)
            k = j
            while k < stop and offsets[k + 1] - offsets[k] == L:
                k += 1
            d = np.uint8(0)
            for b in range(np.uint64(offsets[j] - L), np.uint64(offsets[k] - L)):
                d |= ahead[b] ^ data[b]
            if d == 0 and k == stop:
                j = stop
                continue
            while j < k:  # find the first row of this block that differs from the one before
                e = offsets[j]
                same = True
                for b in range(e, e + L):
                    if data[b] != data[b - L]:
                        same = False
                        break
                if not same:
                    break
                j += 1
            break
        i = j
    return out[:m]


def _run_starts(arr: pa.Array) -> np.ndarray:
    """Rows where a key column's value differs from the previous row's (row 0 included)."""
    t = arr.type
    if arr.null_count == 0 and (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)):
        _, offsets, data = arr.buffers()[:3]
        width = np.int64 if pa.types.is_large_string(t) else np.int32
        offs = np.frombuffer(offsets, width)[arr.offset: arr.offset + len(arr) + 1]
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        if _THREADS < 2 or len(arr) < 4 * THREADED_ROWS:
            return _string_run_starts(offs, raw)
        # Two halves at once (the bytes of 10M symbols: 0.04 s on one thread). The second half
        # starts one row early, so that its first row is compared with the row before it.
        half = len(arr) // 2
        with ThreadPoolExecutor(1) as helper:
            later = helper.submit(_string_run_starts, offs[half - 1:], raw)
            first = _string_run_starts(offs[:half + 1], raw)
            return np.concatenate([first, later.result()[1:] + (half - 1)])
    return np.concatenate([[0], np.flatnonzero(_changes(arr)) + 1])


def _changes(arr: pa.Array) -> np.ndarray:
    """Where a key column changes value from one row to the next."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        validity, offsets, data = arr.buffers()[:3]
        width = np.int64 if pa.types.is_large_string(t) else np.int32
        offs = np.frombuffer(offsets, width)[arr.offset: arr.offset + len(arr) + 1]
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        valid = (arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count
                 else np.ones(len(arr), bool))
        return _string_changes(offs, raw, valid)
    # NULL = NULL is unknown, so a run of NULLs breaks at every row; that is only slower, not wrong.
    n = len(arr)
    return pc.invert(pc.fill_null(pc.equal(arr.slice(1), arr.slice(0, n - 1)), False)).to_numpy(
        zero_copy_only=False)


def _head_codes(heads: pa.Array) -> tuple[np.ndarray, int]:
    """Dense codes of a few values (NULL gets a code of its own) and how many codes there are."""
    encoded = pc.dictionary_encode(heads)
    k = len(encoded.dictionary)
    codes = encoded.indices.fill_null(k).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, k + int(encoded.indices.null_count > 0)


def partition_ids(table: pa.Table, columns: list[str]) -> tuple[np.ndarray, int, np.ndarray]:
    """Dense partition ids 0..G-1 (NULL is a partition of its own, as in SQL), and the rows where
    runs of equal keys start.

    Rows of a partition mostly come in runs (one file per symbol and day), so only the first row
    of each run is encoded, not every row: with several key columns the runs are those of the
    columns together (every place where any column changes). As many runs as partitions means
    each partition's rows are stored together."""
    n = table.num_rows
    if not columns:
        return np.zeros(n, np.int64), 1, np.zeros(min(n, 1), np.int64)
    if n == 0:
        return np.zeros(0, np.int64), 0, np.zeros(0, np.int64)
    arrays = [table.column(c).combine_chunks() for c in columns]
    starts = _run_starts(arrays[0])
    for arr in arrays[1:]:
        starts = np.union1d(starts, _run_starts(arr))
    where = pa.array(starts)
    head_codes, groups = _head_codes(arrays[0].take(where))
    for arr in arrays[1:]:
        codes, k = _head_codes(arr.take(where))
        # Densify after each column (over the runs, not the rows), so the products stay small.
        uniques, head_codes = np.unique(head_codes * k + codes, return_inverse=True)
        groups = len(uniques)
    starts = starts.astype(np.int64)
    return _expand_runs(head_codes.astype(np.int64), starts, n), groups, starts


def _expand_runs(codes: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Each row's id from its run's (np.repeat), in pooled memory: a fresh array of 10M ids was
    faulted in page by page on every query."""
    out = output_array(n, 1)[:, 0].view(np.int64)
    _fill_runs(out, codes, starts)
    return out


@njit(cache=True)
def _fill_runs(out, codes, starts):
    for k in range(len(starts)):
        out[starts[k]:starts[k + 1] if k + 1 < len(starts) else len(out)] = codes[k]


def _sortable(col: pa.ChunkedArray, desc: bool, nulls_first: bool) -> tuple[np.ndarray, bool]:
    """A key column as int64 whose order is the SQL order; also whether it was a time."""
    arr = col.combine_chunks()
    t = arr.type
    is_time = pa.types.is_timestamp(t) or pa.types.is_date(t)
    if pa.types.is_timestamp(t):
        values = pc.cast(arr, pa.timestamp("ns", tz=t.tz)).cast(pa.int64())
    elif pa.types.is_date(t):
        values = pc.multiply(pc.cast(pc.cast(arr, pa.date32()), pa.int64()), 86_400_000_000_000)
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        values = pc.cast(arr, pa.int64())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        f = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        bits = f.view(np.int64)
        values = pa.array(bits ^ ((bits >> 63) & _SIGN), mask=np.isnan(f))  # IEEE order as integers
    else:
        raise KernelShapeError(f"ORDER BY of a kernel window must be a time or a number, not {t}")
    if values.null_count == 0 and not desc:
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64), is_time
    nulls = values.is_null().to_numpy(zero_copy_only=False)
    key = values.to_numpy(zero_copy_only=False).astype(np.int64, copy=True)
    if desc:
        key = ~key
    key[nulls] = np.iinfo(np.int64).min if nulls_first else np.iinfo(np.int64).max
    return key, is_time


@njit(cache=True)
def _in_order(gid, keys, groups):
    # keys: a tuple of int64 columns. The partition's previous row stays in a local while its
    # rows follow one another (the store's order), not a load and a store of last[g] per row.
    last = np.full(groups, -1, np.int64)
    cur = -1
    p = -1
    for r in range(len(gid)):
        g = gid[r]
        if g != cur:
            if cur >= 0:
                last[cur] = p
            cur = g
            p = last[g]
        if p >= 0:
            for k in range(len(keys)):
                if keys[k][r] > keys[k][p]:
                    break
                if keys[k][r] < keys[k][p]:
                    return False
        p = r
    return True


@njit(cache=True)
def _runs_in_order(keys, starts, n):
    """`_in_order` when each partition's rows are stored together from `starts`: each row is
    compared with the row before it, except a partition's first, and no partition id is read."""
    j = 1  # the next partition's first row is starts[j]
    for r in range(1, n):
        if j < len(starts) and r == starts[j]:
            j += 1
            continue
        for k in range(len(keys)):
            if keys[k][r] > keys[k][r - 1]:
                break
            if keys[k][r] < keys[k][r - 1]:
                return False
    return True


_IDENTITY = np.arange(0, dtype=np.int64)


def identity(n: int) -> np.ndarray:
    """0..n-1, shared read-only between queries (allocating it was a tenth of a kernel query)."""
    global _IDENTITY
    if len(_IDENTITY) < n:
        _IDENTITY = np.arange(max(n, 2 * len(_IDENTITY)), dtype=np.int64)
        _IDENTITY.setflags(write=False)
    return _IDENTITY[:n]


def processing_order(gid: np.ndarray, keys: tuple[np.ndarray, ...], groups: int,
                     runs: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Row indices in processing order, and whether storage order already was that order. `keys`
    are the ORDER BY columns as int64 arrays: a tuple, not a matrix, since stacking research's ts
    and seq into one (0.3 s over 10M rows) cost more than checking the order. `runs`: where each
    partition's rows start, when every partition's rows are stored together."""
    n = len(gid)
    if _runs_in_order(keys, runs, n) if runs is not None else _in_order(gid, keys, groups):
        return identity(n), True
    sort_keys = list(keys[::-1]) + [gid]
    return np.lexsort(sort_keys).astype(np.int64), False


@njit(cache=True)
def _contiguous_cuts(gid, rows, groups, parts):
    """Positions in `rows` that split it into about `parts` pieces at partition boundaries, or an
    empty array when some partition's rows are not contiguous in `rows` (then it cannot be split)."""
    n = len(rows)
    seen = np.zeros(groups, np.bool_)
    cuts = np.zeros(parts + 1, np.int64)
    cuts[parts] = n
    k = 1
    prev = -1
    for p in range(n):
        g = gid[rows[p]]
        if g == prev:
            continue
        if seen[g]:
            return np.zeros(0, np.int64)
        seen[g] = True
        prev = g
        while k < parts and p >= k * n // parts:
            cuts[k] = p
            k += 1
    for j in range(k, parts):
        cuts[j] = n
    return cuts


def split_points(gid: np.ndarray, rows: np.ndarray, groups: int, parts: int,
                 runs: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Ranges of `rows` holding whole partitions, so that one kernel runs on several threads.
    `runs`: where each partition starts, when `rows` is storage order and stores each partition's
    rows together (then the cuts are the partition starts nearest to even shares, found without
    reading every row)."""
    n = len(rows)
    if parts < 2 or groups < 2 or n < 100_000:
        return [(0, n)]
    if runs is not None:
        at = np.searchsorted(runs, np.arange(1, parts) * n // parts)
        cuts = np.concatenate([[0], np.where(at < len(runs), runs[np.minimum(at, len(runs) - 1)], n), [n]])
    else:
        cuts = _contiguous_cuts(gid, rows, groups, parts)
    if not len(cuts):
        return [(0, len(rows))]
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _as_float(col: pa.ChunkedArray, kernel: str) -> np.ndarray:
    if pa.types.is_float64(col.type):
        return _pooled_float64(col)
    arr = col.combine_chunks()
    t = arr.type
    if pa.types.is_timestamp(t):
        arr = pc.cast(pc.cast(arr, pa.timestamp("ns", tz=t.tz)), pa.int64())
    elif pa.types.is_boolean(t):
        arr = pc.cast(arr, pa.int8())
    elif pa.types.is_null(t):
        return np.full(len(arr), np.nan)
    try:
        arr = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise KernelShapeError(f"{kernel}: inputs must be numbers, got a column of {t}") from None
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _pooled_float64(col: pa.ChunkedArray) -> np.ndarray:
    """A float64 column as one array in pooled memory, NULL as NaN: `combine_chunks` put 10M values
    in fresh pages on every query."""
    out = output_array(len(col), 1)[:, 0]
    at = 0
    for chunk in col.chunks:
        out[at: at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
        at += len(chunk)
    return out


@njit(cache=True)
def _validity(values):
    """Arrow's validity bitmap for `values` (NaN = NULL) and the NULL count, in one pass."""
    n = len(values)
    bits = np.empty((n + 7) // 8, np.uint8)
    valid = 0
    for j in range(n // 8):
        b = 0
        for k in range(8):
            v = values[8 * j + k]
            b |= (1 if v == v else 0) << k
        bits[j] = b
    if n % 8:
        b = 0
        for k in range(n % 8):
            v = values[n - n % 8 + k]
            b |= (1 if v == v else 0) << k
        bits[n // 8] = b
    for j in range(len(bits)):
        valid += _POPCOUNT[bits[j]]
    return bits, n - valid


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.int64)


def _to_arrow(values: np.ndarray, sql_type: str) -> pa.Array:
    # Kernels mark NULL with NaN; SQL gets NULL, never NaN. The values are not copied.
    values = np.ascontiguousarray(values)
    bits, nulls = _validity(values)
    arr = pa.Array.from_buffers(pa.float64(), len(values), [pa.py_buffer(bits) if nulls else None,
                                                           pa.py_buffer(values)], nulls)
    target = ARROW_TYPES.get(sql_type, pa.float64())
    return arr if target == pa.float64() else pc.cast(arr, target)


def outputs_as_arrow(call: KernelCall, out: np.ndarray) -> pa.Array:
    outputs = call.spec.outputs
    if call.field is not None:
        j = [o.name for o in outputs].index(call.field)
        return _to_arrow(out[:, j], outputs[j].type)
    if not call.spec.is_struct:
        return _to_arrow(out[:, 0], outputs[0].type)
    fields = [_to_arrow(out[:, j], o.type) for j, o in enumerate(outputs)]
    return pa.StructArray.from_arrays(fields, names=[o.name for o in outputs])


def _needs_time(call: KernelCall) -> bool:
    for p in call.spec.params:
        v = call.params.get(p.name)
        if (p.kind == "window" and v is not None and v.span_ns > 0) or (p.kind == "interval" and v is not None):
            return True
    return False


def _call_key(call: KernelCall, arg_cols: list[str]) -> tuple:
    """Calls that compute the same thing (bbands_upper and bbands_lower of one price) run once."""
    return (call.spec.name, tuple(sorted((k, repr(v)) for k, v in call.params.items())), tuple(arg_cols),
            call.window_key())


def _call_key_of(call: KernelCall) -> tuple:
    """What a call computes, from its SQL: the name of its saved states."""
    return (call.spec.name, tuple(sorted((k, repr(v)) for k, v in call.params.items())),
            call.input_key(), call.window_key())


class WindowOrders:
    """The windows one statement has ordered, by the very Arrow buffers of their key columns.

    A later scope usually reads its keys straight from an earlier scope's spliced rows (research's
    CUSUM step: same exchange, symbol, ts and seq columns, no copy), so its partition ids and
    processing order are the ones already computed (0.3-0.6 s over 10M rows). Columns are kept
    referenced, so their buffers cannot be freed and their addresses reused while entries live."""

    def __init__(self):
        self._entries: dict[tuple, tuple] = {}

    def order(self, table: pa.Table, part_cols: list[str], order_cols: list[tuple]) -> tuple:
        """(gid, groups, rows, in_order, first key as int64 or None when it is not an ascending time,
        each partition's first row when rows are in storage order and each partition's are
        together, else None)."""
        columns = [table.column(c) for c in part_cols] + [table.column(c) for c, _, _ in order_cols]
        identity = (len(part_cols), tuple(map(_buffers_of, columns)), tuple((d, nf) for _, d, nf in order_cols))
        entry = self._entries.get(identity)
        if entry is None:
            gid, groups, starts, keyed = _ids_and_keys(table, part_cols, order_cols)
            runs = starts if len(starts) == groups else None
            rows, in_order = processing_order(gid, tuple(k for k, _ in keyed), groups, runs)
            first_is_time = keyed[0][1] and not order_cols[0][1]
            entry = self._entries[identity] = (columns, (gid, groups, rows, in_order,
                                                         keyed[0][0] if first_is_time else None,
                                                         runs if in_order else None))
        return entry[1]


def _ids_and_keys(table: pa.Table, part_cols: list[str], order_cols: list[tuple]) -> tuple:
    """Partition ids, group count and run starts (`partition_ids`), and the ORDER BY keys as int64;
    over many rows, the ids on a thread of their own while the keys are converted (numba and Arrow
    both release the GIL)."""
    def keys():
        return [_sortable(table.column(c), desc, nf) for c, desc, nf in order_cols]

    if _THREADS < 2 or table.num_rows < THREADED_ROWS:
        return (*partition_ids(table, part_cols), keys())
    with ThreadPoolExecutor(1) as helper:
        ids = helper.submit(partition_ids, table, part_cols)
        keyed = keys()
        return (*ids.result(), keyed)


def _buffers_of(col: pa.ChunkedArray) -> tuple:
    return tuple((len(c), c.offset, tuple(b.address if b is not None else 0 for b in c.buffers())) for c in col.chunks)


def compute(table: pa.Table, plan: ScopePlan, states: ResidentStates | None = None,
            scope_id: str = "", orders: WindowOrders | None = None) -> list[pa.Array]:
    """One output column per call, aligned with `table`'s rows. With `states`, every call resumes
    from the state each partition was left in and leaves its state there (see engine.resume).
    Scopes of one statement share `orders`."""
    keep_large_pages()
    orders = orders or WindowOrders()
    windows = {}
    for key, (part_cols, order_cols) in plan.key_columns.items():
        gid, groups, rows, in_order, ts, runs = orders.order(table, part_cols, order_cols)
        if states is None:
            resume = None
            pieces = split_points(gid, rows, groups, _THREADS, runs)
        else:  # saved states are per partition: the call runs whole, not in pieces
            resume = (states, scope_id, partition_names(table, part_cols, gid, groups))
            pieces = [(0, len(rows))]
        windows[key] = (gid, groups, rows, ts, pieces, resume, in_order)

    keys = [_call_key(call, cols) for call, cols in zip(plan.calls, plan.arg_columns)]
    fused = fuse(plan.calls, keys, plan.arg_columns) if states is None else {}
    return _Schedule(table, plan, keys, fused, windows).run()


class _Schedule:
    """The scope's kernels as a graph of tasks: a call that reads another call's output (through
    its alias) is queued as soon as that output is complete, not after every call of an earlier
    round, and the calls others wait for are queued first. Each call's Arrow column is built as a
    task of its own as soon as its values are there, while kernels still run."""

    def __init__(self, table, plan, keys, fused, windows):
        self.table, self.plan, self.keys, self.fused, self.windows = table, plan, keys, fused, windows
        self.floats: dict[str, np.ndarray] = {}  # input column -> its values as float64
        self.done: dict[tuple, np.ndarray] = {}  # call key -> output values
        self.columns: dict[int, pa.Array] = {}  # call -> its output column
        self.pending = list(range(len(plan.calls)))
        self.depends = [{keys[d] for d in _dependencies(cols)} for cols in plan.arg_columns]
        self.feeds = set().union(*self.depends)
        self.queue: list[tuple] = []  # (function, argument, work key or call)
        self.left: dict[tuple, int] = {}  # work key -> its pieces not finished yet
        self.work: dict[tuple, object] = {}  # work key -> the call or fused group it runs
        self.threaded = _THREADS > 1 and table.num_rows >= THREADED_ROWS

    def run(self) -> list[pa.Array]:
        if self.threaded:
            with ThreadPoolExecutor(_THREADS) as pool:
                self._convert_inputs(pool)
                self._release()
                running = {}
                while self.queue or running:
                    while self.queue and len(running) < _THREADS:
                        fn, arg, key = self.queue.pop(0)
                        running[pool.submit(fn, arg)] = (fn, arg, key)
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        self._finished(*running.pop(future), future.result())
        else:
            self._release()
            while self.queue:
                fn, arg, key = self.queue.pop(0)
                self._finished(fn, arg, key, fn(arg))
        if self.pending:
            names = ", ".join(self.plan.calls[i].name for i in self.pending)
            raise KernelShapeError(f"kernel calls read each other's outputs in a circle: {names}")
        return [self.columns[i] for i in range(len(self.plan.calls))]

    def _convert_inputs(self, pool: ThreadPoolExecutor) -> None:
        """Every input column as float64, on all threads at once: one after another on the calling
        thread, research's six price and quote columns held up the first kernel by 0.16 s."""
        readers: dict[str, str] = {}  # column -> the first kernel reading it (for error messages)
        for call, arg_cols in zip(self.plan.calls, self.plan.arg_columns):
            for c in arg_cols:
                if dependency_of(c) is None:
                    readers.setdefault(c, call.name)
        converted = pool.map(lambda c: _as_float(self.table.column(c), readers[c]), readers)
        self.floats.update(zip(readers, converted))

    def _finished(self, fn, arg, key, result) -> None:
        if fn is _column_of:
            self.columns[key] = result
            return
        self.left[key] -= 1
        if self.left[key]:
            return
        runs, out = self.work.pop(key), arg[6]
        members = runs.members if isinstance(runs, FusedCall) else {key: (0, out.shape[1])}
        for member, (a, b) in members.items():
            self.done[member] = out[:, a:b]
        self.queue += [(_column_of, (call, self.done[self.keys[i]]), i)
                       for i, call in enumerate(self.plan.calls) if self.keys[i] in members]
        self._release()

    def _release(self) -> None:
        """Queue the calls whose inputs are all there."""
        ready = [i for i in self.pending if self.depends[i] <= self.done.keys()]
        self.pending = [i for i in self.pending if i not in ready]
        for i in sorted(ready, key=lambda i: self.keys[i] not in self.feeds):  # what others wait for first
            key, call = self.keys[i], self.plan.calls[i]
            runs = self.fused.get(key, call)
            wkey = key if runs is call else runs.key
            if key in self.done or wkey in self.work:
                continue  # computed, or being computed, for an identical call
            self.work[wkey] = runs
            tasks = [(_run_piece, task, wkey) for task in _tasks(runs, *self._inputs(i))]
            self.left[wkey] = len(tasks)
            if key in self.feeds:
                self.queue[:0] = tasks
            else:
                self.queue += tasks

    def _inputs(self, i: int) -> tuple:
        call, arg_cols = self.plan.calls[i], self.plan.arg_columns[i]
        gid, groups, rows, ts, pieces, resume, in_order = self.windows[call.window_key()]
        if ts is None:
            if _needs_time(call):
                raise KernelShapeError(
                    f"{call.name}: an INTERVAL needs the window ordered by a timestamp, ascending "
                    f"(ORDER BY ts); this window's first ORDER BY key is not one")
            ts = np.zeros(len(gid), np.int64)
        cols = []
        for c in arg_cols:
            producer = dependency_of(c)
            if producer is not None:
                cols.append(_output_values(self.plan.calls[producer], self.done[self.keys[producer]], call.name))
                continue
            if c not in self.floats:
                self.floats[c] = _as_float(self.table.column(c), call.name)
            cols.append(self.floats[c])
        return cols, ts, gid, groups, rows, pieces, resume, in_order


def _column_of(arg) -> pa.Array:
    return outputs_as_arrow(*arg)


def _dependencies(arg_cols: list[str]) -> list[int]:
    return [d for d in map(dependency_of, arg_cols) if d is not None]


def _output_values(producer: KernelCall, out: np.ndarray, reader: str) -> np.ndarray:
    if producer.field is not None:
        return out[:, [o.name for o in producer.spec.outputs].index(producer.field)]
    if producer.spec.is_struct:
        field = producer.spec.outputs[0].name
        raise KernelShapeError(f"{reader}: {producer.name} returns a STRUCT; give {reader} one field, e.g. "
                               f"{producer.name}_{field} or ({producer.name}(...) OVER w).{field}")
    return out[:, 0]


def _run_piece(task) -> None:
    call, cols, ts, gid, groups, rows, out, resume, own_rows = task
    out[own_rows] = np.nan
    if resume is None:
        # Each piece has a state of its own: pieces hold disjoint partitions, and a piece whose
        # INTERVAL window grows replaces its state's arrays, which another thread must not be using.
        call.spec.step(call.spec.new_state(call.params, groups), cols, ts, gid, rows, call.params, out)
        return
    states, scope_id, partitions = resume
    state, slots = states.place(call_id(scope_id, _call_key_of(call)), call.spec, call.params, partitions)
    call.spec.step(state, cols, ts, slots[gid], rows, call.params, out)


def _tasks(call, cols, ts, gid, groups, rows, pieces, resume, in_order) -> list[tuple]:
    """The pieces of one call (or fused group), sharing one output array. Kernel cores release
    the GIL, so pieces of one kernel's rows that hold whole partitions run on all cores at once."""
    # Column-major: each output column (a struct field, a fused member) is contiguous, so it
    # becomes an Arrow column without a copy. Each piece fills its own rows with NULL (NaN) on
    # its thread: filling 10M rows here held up queueing the next tasks by 20-40 ms a column.
    # Large outputs come from a pool of mappings that survives between queries (engine.memory).
    out = output_array(len(gid), len(call.spec.outputs))
    return [(call, cols, ts, gid, groups, rows[a:b], out, resume, slice(a, b) if in_order else rows[a:b])
            for a, b in pieces]
