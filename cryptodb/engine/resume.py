"""Kernels that resume: per (kernel call, partition) state carried from one run to the next.

A one-shot query starts every kernel from empty state. Live mode runs the same statements on
each micro-batch of new rows and hands the engine a `KernelStates`: before a call runs, each
partition present in the batch gets its saved state (or empty state, for a partition seen for
the first time); afterwards every partition's state is saved back. Because a kernel's output
depends only on its state and the rows it is fed (the contract in KERNELS.md), batch after batch
gives exactly the rows one pass over all of them would.

A call is named by its statement's text, its scope and what it computes, so the same script
finds the same states; a partition by its PARTITION BY values as JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

import numpy as np
import pyarrow as pa


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
