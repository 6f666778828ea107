"""Saving and restoring a kernel's state one partition at a time.

A kernel's state is a dict of arrays whose first axis is the partition. Live mode keeps each
(kernel call, partition key) row between micro-batches; the partitions present in a batch get
new dense ids each time, so a saved row must fit into any position of a fresh state. Ring
buffers (growable for INTERVAL windows) are stored unrolled, oldest first, so rows saved with
different capacities can share one state.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from .kernel import KernelSpec, ensure_capacity


def extract(spec: KernelSpec, state: dict[str, np.ndarray], g: int) -> dict[str, np.ndarray]:
    """Partition g's state, self-contained (every ring unrolled so that its head is 0)."""
    row = {name: np.array(values[g]) for name, values in state.items()}
    for ring in spec.ring_layout:
        if ring.arrays[0] not in state:
            continue  # this call's parameters need no ring (vwap over the whole partition)
        cap = state[ring.arrays[0]].shape[1]
        order = (int(state[ring.head][g]) + np.arange(int(state[ring.count][g]))) % cap
        for name in ring.arrays:
            row[name] = np.array(state[name][g][order])
        row[ring.head] = np.array(0, dtype=state[ring.head].dtype)
    return row


def assemble(spec: KernelSpec, params: dict, rows: list[dict[str, np.ndarray] | None]) -> dict[str, np.ndarray]:
    """A state for len(rows) partitions: saved rows where given, empty state where None."""
    state = spec.new_state(params, len(rows))
    given = [g for g, row in enumerate(rows) if row is not None]
    place(spec, state, given, [rows[g] for g in given])
    return state


def place(spec: KernelSpec, state: dict[str, np.ndarray], positions: list[int],
          rows: list[dict[str, np.ndarray]]) -> None:
    """Put saved rows (as `extract` gives them) into `state` at `positions`, growing rings to fit."""
    ring_arrays = set()
    for ring in spec.ring_layout:
        if ring.arrays[0] not in state:
            continue
        ring_arrays |= set(ring.arrays)
        need = max([len(r[ring.arrays[0]]) for r in rows], default=0)
        if need > state[ring.arrays[0]].shape[1]:
            ensure_capacity(state, ring.arrays, need, ring.head, ring.count)
    for g, row in zip(positions, rows):
        for name, values in row.items():
            if name in ring_arrays:
                state[name][g, : len(values)] = values
            else:
                state[name][g] = values


def to_bytes(row: dict[str, np.ndarray]) -> bytes:
    """A saved state as bytes: a JSON header (names, dtypes, shapes), then each array's raw bytes.
    (np.savez wrote a zip archive per state: 20x slower, and it was most of a live batch.)"""
    arrays = {name: np.asarray(values) for name, values in row.items()}  # 0-d stays 0-d
    header = _header(tuple((name, a.dtype.str, a.shape) for name, a in arrays.items()))
    return b"".join([_MAGIC, len(header).to_bytes(4, "little"), header, *(a.tobytes() for a in arrays.values())])


def from_bytes(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of a saved state, as read-only views of `blob` (`place` copies them into a state)."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not a saved kernel state")
    size = int.from_bytes(blob[4:8], "little")
    pos = 8 + size
    row = {}
    for name, dt, shape, count in _layout(blob[8:pos]):
        row[name] = np.frombuffer(blob, dt, count=count, offset=pos).reshape(shape)
        pos += count * dt.itemsize
    return row


# A live batch saves and loads every (call, partition) state: hundreds per batch, whose headers
# repeat (rings of equal fill have equal shapes), so headers are encoded and decoded once each.
@lru_cache(maxsize=4096)
def _header(fields: tuple) -> bytes:
    return json.dumps([[name, dtype, list(shape)] for name, dtype, shape in fields]).encode()


@lru_cache(maxsize=4096)
def _layout(header: bytes) -> tuple:
    fields = []
    for name, dtype, shape in json.loads(header):
        shape = tuple(shape)
        fields.append((name, np.dtype(dtype), shape, int(np.prod(shape, dtype=np.int64))))
    return tuple(fields)


_MAGIC = b"cks1"  # cryptodb kernel state, format 1
