"""Dead letters as JSON lines in a file: where they go when rows go to Kafka and no database is named.

One object per line with the columns of the dead_letters table; times as RFC3339 with nine
fractional digits. The file is only ever appended to, so several runs can share it.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pyarrow as pa

from .schema import DEAD_LETTERS
from .sink import SinkCounts


def _rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class DeadLetterFile:
    """A Sink that keeps only the dead_letters table, as JSON lines appended to `path`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lines: list[str] = []
        self._counts = SinkCounts()
        self._lock = threading.Lock()

    def write(self, table: str, rows: pa.Table) -> None:
        if table != DEAD_LETTERS.name:
            return
        records = rows.to_pydict()
        ts = rows.column("ts").cast(pa.int64()).to_pylist()
        recv = rows.column("recv_ts").cast(pa.int64()).to_pylist()
        lines = []
        for i in range(rows.num_rows):
            record = {name: records[name][i] for name in DEAD_LETTERS.names}
            record["ts"], record["recv_ts"] = _rfc3339(ts[i]), _rfc3339(recv[i])
            lines.append(json.dumps(record, ensure_ascii=False))
        with self._lock:
            self._lines.extend(lines)

    def write_raw(self, table: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Dead letters only."""

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            with self._lock:
                self._lines[:0] = lines
            raise
        self._counts.add(DEAD_LETTERS.name, len(lines))

    def close(self) -> None:
        self.flush()

    @property
    def counts(self) -> SinkCounts:
        return self._counts
