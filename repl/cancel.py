"""Running a query so that Ctrl-C cancels it and the connection stays usable.

The query runs on a worker thread while the main thread (the one Python delivers SIGINT to)
waits. Ctrl-C calls `interrupt` (DuckDB's `con.interrupt()`), which makes the running DuckDB
query fail with an InterruptException. A statement with kernels runs several DuckDB queries with
numba work between them, where an interrupt has nothing to stop, so `interrupt` is repeated
until the worker ends: it lands on the next DuckDB query. An interrupt sent while the connection
is idle is forgotten by DuckDB, so repeating it cannot hurt the next statement.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")


class QueryCancelled(Exception):
    """The user pressed Ctrl-C while a query ran; the query was stopped."""


def run_cancellable(work: Callable[[], T], interrupt: Callable[[], None], poll_seconds: float = 0.1) -> T:
    outcome: dict = {}
    # An Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread marked
    # as stopped while it still runs (CPython gh-90882), and the next query would then share the
    # connection with it.
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread as it is
            outcome["error"] = e
        finally:
            done.set()

    threading.Thread(target=target, name="cryptodb-query", daemon=True).start()
    cancelled = False
    while not done.is_set():
        try:
            if cancelled:
                interrupt()
            done.wait(poll_seconds)
        except KeyboardInterrupt:  # may arrive anywhere in this loop: the next turn interrupts
            cancelled = True
    if cancelled:
        raise QueryCancelled()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
