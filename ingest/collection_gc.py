"""Python's cyclic garbage collector, set for a process that buffers parsed rows.

A parser keeps one tuple per row (numbers and strings) until the flush: tens of thousands of
container objects that can never form a cycle. With the default gen-0 threshold (700 allocations
more than deallocations) the collector runs every ~700 buffered rows and walks the young ones;
bench/bench_parse.py measures that at about 5 % of a Coinbase ticker message's cost. Raising the
threshold for as long as collection runs lets it look at those tuples far less often (it untracks
a tuple of atomic values the first time it sees it). Real cycles are still collected, later.
The setting is process-wide, so it is restored when collection ends.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

# Gen-0 threshold while collecting: a few tens of thousands of young objects are walked in about a
# millisecond, and memory held by cycles waiting for the next pass stays small.
COLLECTING_THRESHOLD = 50_000


@contextmanager
def collecting_gc(threshold: int = COLLECTING_THRESHOLD) -> Iterator[None]:
    """Within the block, the gen-0 threshold is `threshold` (unless it was already higher)."""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
