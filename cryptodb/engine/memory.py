"""Memory for large arrays that queries allocate again and again.

Two measures, both applied only when the engine first computes kernels (never on
`import cryptodb`); CRYPTODB_MALLOC_TUNING=0 turns both off.

glibc's mmap threshold. A kernel query over 10M rows allocates a few hundred MB of short-lived
numpy arrays (partition ids, keys, inputs as float64). glibc serves every block above its mmap
threshold (128 KB to 32 MB) from a fresh mapping and unmaps it on free, so each query faulted in
and zeroed all of that memory again; on virtual machines that hand freed memory back to the host,
measured here, that was a third of an RSI query's time (median 1.00 s -> 0.62 s over 10M rows with
the threshold raised). Above 1 GiB the threshold leaves these arrays on the heap, whose pages the
process reuses.

A pool for kernel outputs (`output_array`). Outputs are the bulk of a query's memory (research's
feature set: 54 columns of 10M rows, 4.3 GB) and outlive it, as the result's columns. On the heap
their pages did not survive until the next query: DuckDB calls `malloc_trim(0)` whenever one of
its worker threads goes idle, which hands every free heap page back to the kernel, and the next
query's outputs were first touched (zeroed by the kernel, 2 MB at a time) by the pass that fills
them with NULL: most of a feature query's 1.5-2.2 s of system time. Outputs therefore live in
anonymous mappings of their own (huge pages advised) that go back to a pool when the last array
over them is gone, are handed out again for the same size, and are unmapped once unused for
`DECAY_S` seconds (the same idea as jemalloc's decay of dirty pages). On the bench store the
feature query went from 6.0-6.3 s to 5.3-5.4 s run after run (system time 0.6-0.9 s), and a
process that stops querying returns the memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
import threading
import time
import weakref

import numpy as np

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 30
POOL_MIN_BYTES = 8 << 20  # smaller outputs (a live micro-batch's) come from numpy as usual
DECAY_S = 10.0  # a released mapping unused this long is unmapped
FREE_LIMIT_BYTES = 8 << 30  # released mappings kept at most; the oldest go first
_HUGE_PAGE = 2 << 20

_applied: bool | None = None  # one attempt per process


def tuning_enabled() -> bool:
    return sys.platform.startswith("linux") and os.environ.get("CRYPTODB_MALLOC_TUNING", "1") != "0"


def keep_large_pages() -> bool:
    """Raise glibc's mmap threshold; True when it was applied."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if not tuning_enabled():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


class MappingPool:
    """Anonymous mappings handed out as numpy arrays and taken back when the array is gone.

    A mapping is returned to the pool by a finalizer on the object the array's data hangs from
    (numpy views, Arrow buffers and DuckDB's registered tables all keep it alive), so it is never
    handed out while anything can still read it. Thread-safe: the last reference may be dropped on
    any thread."""

    def __init__(self, decay_s: float = DECAY_S, free_limit: int = FREE_LIMIT_BYTES):
        self.decay_s = decay_s
        self.free_limit = free_limit
        self._free: list[tuple[int, mmap.mmap, float]] = []  # (size, mapping, released at), oldest first
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def empty(self, shape: tuple[int, ...], order: str = "C") -> np.ndarray:
        """An uninitialised float64 array of `shape`."""
        nbytes = int(np.prod(shape)) * 8
        size = max(_HUGE_PAGE, -(-nbytes // _HUGE_PAGE) * _HUGE_PAGE)
        mapping = self._take(size)
        if mapping is None:
            mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            if hasattr(mmap, "MADV_HUGEPAGE"):
                mapping.madvise(mmap.MADV_HUGEPAGE)
        flat = np.frombuffer(memoryview(mapping)[:nbytes], np.float64)
        # The object numpy keeps as the array's base (numpy 2 makes a memoryview of its own) lives
        # exactly as long as some array over the mapping does: it carries the finalizer. At exit
        # the finalizer must not run for arrays still alive: their mapping would be handed out.
        owner = flat
        while isinstance(owner, np.ndarray):
            owner = owner.base
        weakref.finalize(owner, self._release, size, mapping).atexit = False
        return flat.reshape(shape, order=order)

    def free_bytes(self) -> int:
        with self._lock:
            return sum(size for size, _, _ in self._free)

    def _take(self, size: int) -> mmap.mmap | None:
        with self._lock:
            for i in range(len(self._free) - 1, -1, -1):  # the most recently released first
                if self._free[i][0] == size:
                    return self._free.pop(i)[1]
        return None

    def _release(self, size: int, mapping: mmap.mmap) -> None:
        with self._lock:
            self._free.append((size, mapping, time.monotonic()))
            while sum(s for s, _, _ in self._free) > self.free_limit:
                _unmap(self._free.pop(0)[1])
            self._schedule()

    def purge(self, older_than: float | None = None) -> None:
        """Unmap released mappings unused for `older_than` seconds (default: the decay)."""
        limit = self.decay_s if older_than is None else older_than
        with self._lock:
            self._timer = None
            now = time.monotonic()
            for entry in [e for e in self._free if now - e[2] >= limit]:
                self._free.remove(entry)
                _unmap(entry[1])
            self._schedule()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._timer = None
        self._schedule()

    def _schedule(self) -> None:
        if self._free and self._timer is None:
            self._timer = threading.Timer(self.decay_s, self.purge)
            self._timer.daemon = True
            self._timer.start()


def _unmap(mapping: mmap.mmap) -> None:
    try:
        mapping.close()
    except BufferError:  # still exported (cannot happen by construction): unmapped when the view goes
        pass


_POOL = MappingPool()
if hasattr(os, "register_at_fork"):  # a child has no timer thread, and the lock may be held
    os.register_at_fork(after_in_child=lambda: _POOL.after_fork())


def output_array(rows: int, columns: int) -> np.ndarray:
    """A kernel output: float64, column-major (rows, columns), uninitialised."""
    if rows * columns * 8 < POOL_MIN_BYTES or not tuning_enabled():
        return np.empty((rows, columns), order="F")
    return _POOL.empty((rows, columns), order="F")
