"""Kernels that resume: per (kernel call, partition) state carried from one run to the next.

A one-shot query starts every kernel from empty state. Live mode runs the same statements on
each micro-batch of new rows and hands the engine a `KernelStates`: before a call runs, each
partition present in the batch gets its saved state (or empty state, for a partition seen for
the first time); afterwards every partition's state is saved back. Because a kernel's output
depends only on its state and the rows it is fed (the contract in KERNELS.md), batch after batch
gives exactly the rows one pass over all of them would.

A call is named by its statement's text, its scope and what it computes, so the same script
finds the same states; a partition by its PARTITION BY values as JSON.

Between batches the states stay in memory (`ResidentStates`), assembled: decoding every
partition's saved state before a call and encoding it again after cost more than the kernels
themselves on a small batch. They are encoded only for a commit, and only the partitions that
changed since the last one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Iterator, Protocol

import numpy as np
import pyarrow as pa

from cryptodb.udfs.state import extract, from_bytes, place, to_bytes


class KernelStates(Protocol):
    def load(self, call_id: str, partitions: list[str]) -> list[bytes | None]:
        """Saved state of each partition, None where there is none."""

    def save(self, call_id: str, states: dict[str, bytes]) -> None:
        """Keep these states (the caller decides when they become durable)."""


def statement_id(sql: str) -> str:
    return hashlib.sha1(sql.encode()).hexdigest()[:16]


def call_id(scope_id: str, call_key: tuple) -> str:
    return f"{scope_id}/{hashlib.sha1(repr(call_key).encode()).hexdigest()[:16]}"


def partition_names(table: pa.Table, columns: list[str], gid: np.ndarray, groups: int) -> list[str]:
    """The PARTITION BY values of each dense partition id, as JSON text."""
    if not columns:
        return ["[]"] * groups
    first = np.full(groups, -1, np.int64)
    ids, where = np.unique(gid, return_index=True)
    first[ids] = where
    values = [table.column(c).take(pa.array(first)).to_pylist() for c in columns]
    return [json.dumps(list(row), default=str) for row in zip(*values)]


class ResidentStates:
    """Every kernel call's state over all the partitions it has met, kept from one batch to the next.

    Each call keeps one state whose rows are stable slots, one per partition (a batch's dense
    partition ids map onto them), so a batch's kernels step the very arrays the previous batch
    left. A partition is read from `saved` the first time a call meets it (after a restart, the
    committed state; else none). `changed()` encodes the partitions stepped since it was last
    called, for the caller to make durable.

    A statement that appears twice in a script (the same text, so the same call names) must not
    resume from its own output of the same batch: within a batch (`begin_batch`), the n-th run
    of a call name gets a name of its own.
    """

    def __init__(self, saved: KernelStates):
        self.saved = saved
        self._calls: dict[str, _CallStates] = {}
        self._runs: dict[str, int] = {}  # call name -> its runs in this batch
        self._lock = threading.Lock()  # independent calls of a scope run on threads

    def begin_batch(self) -> None:
        self._runs.clear()

    def place(self, name: str, spec, params: dict, partitions: list[str]) -> tuple[dict, np.ndarray]:
        """(the call's state, the slot of each of `partitions`) for the call's next run."""
        with self._lock:
            runs = self._runs[name] = self._runs.get(name, 0) + 1
            if runs > 1:
                name = f"{name}#{runs}"
            call = self._calls.get(name)
            if call is None:
                call = self._calls[name] = _CallStates(spec, params)
            return call.state, call.slots(name, partitions, self.saved)

    def changed(self) -> Iterator[tuple[str, dict[str, bytes]]]:
        """(call name, {partition: encoded state}) of the partitions stepped since the last call."""
        for name, call in self._calls.items():
            stepped = np.flatnonzero(call.stepped)
            if len(stepped):
                yield name, {call.names[s]: to_bytes(extract(call.spec, call.state, s)) for s in stepped}
                call.stepped[:] = False


class _CallStates:
    def __init__(self, spec, params: dict):
        self.spec, self.params = spec, params
        self.slot: dict[str, int] = {}
        self.names: list[str] = []
        self.state = spec.new_state(params, 8)
        self.stepped = np.zeros(8, bool)

    def slots(self, name: str, partitions: list[str], saved: KernelStates) -> np.ndarray:
        out = np.empty(len(partitions), np.int64)
        met = []
        for i, p in enumerate(partitions):
            s = self.slot.get(p)
            if s is None:
                s = self.slot[p] = len(self.names)
                self.names.append(p)
                met.append(p)
            out[i] = s
        if met:
            self._grow(len(self.names))
            blobs = saved.load(name, met)
            found = [(self.slot[p], b) for p, b in zip(met, blobs) if b is not None]
            if found:
                place(self.spec, self.state, [s for s, _ in found], [from_bytes(b) for _, b in found])
        self.stepped[out] = True
        return out

    def _grow(self, need: int) -> None:
        """Room for `need` slots; new slots hold empty state. Rings keep their current width."""
        have = len(self.stepped)
        if need <= have:
            return
        size = max(need, 2 * have)
        fresh = self.spec.new_state(self.params, size)
        for key, old in self.state.items():
            new = fresh[key]
            if new.shape[1:] != old.shape[1:]:  # a ring an INTERVAL window grew: empty rings fit anywhere
                wider = np.zeros((size, *old.shape[1:]), old.dtype)
                wider[:, :new.shape[1]] = new
                new = wider
            new[:have] = old
            self.state[key] = new
        self.stepped = np.concatenate([self.stepped, np.zeros(size - have, bool)])
