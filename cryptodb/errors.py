"""Errors a user can act on: each message says what went wrong and what to do instead."""

from __future__ import annotations

import re
from pathlib import Path


class CryptodbError(Exception):
    """Base class; the CLI prints its message on one line and exits non-zero."""


class DatabaseLockedError(CryptodbError):
    pass


def _process_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def lock_error(path, exc: Exception, read_only: bool) -> DatabaseLockedError:
    """Turn DuckDB's 'Could not set lock' into a message naming the holder and the way out."""
    text = str(exc)
    m = re.search(r"PID (\d+)", text)
    holder = "another process"
    if m:
        pid = int(m.group(1))
        name = _process_name(pid)
        holder = f"process {pid}" + (f" ({name})" if name else "")
    hint = (
        "readers cannot open it while a writer holds it; retry when that process is done"
        if read_only
        else "open it read-only (--read-only, or cryptodb.connect(path, read_only=True)) "
        "when the holder is only reading, or stop that process"
    )
    return DatabaseLockedError(f"database {path} is locked by {holder}: {hint}")


def is_lock_error(exc: Exception) -> bool:
    return "Could not set lock" in str(exc) or "Conflicting lock" in str(exc)
