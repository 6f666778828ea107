"""Keeps the completion catalog current without making anyone wait, as pgcli's refresher does.

The snapshot is loaded on a daemon thread at start and again whenever `refresh()` is called
(after DDL, `.run`, `.read`); the prompt keeps completing from the previous snapshot meanwhile.
Requests that arrive during a load are folded into one more load.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from .catalog import CatalogSnapshot

log = logging.getLogger("cryptodb")


class CatalogRefresher:
    def __init__(self, load: Callable[[], CatalogSnapshot], initial: CatalogSnapshot | None = None):
        self.snapshot = initial or CatalogSnapshot()
        self.last_error: Exception | None = None
        self.loaded = threading.Event()  # set once the first load has ended (well or not)
        self._load = load
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()  # a refresh() racing the end of a load must not look idle
        self._thread = threading.Thread(target=self._run, name="cryptodb-catalog", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> CatalogRefresher:
        self._thread.start()
        self.refresh()
        return self

    def refresh(self) -> None:
        with self._lock:
            self._idle.clear()
            self._wanted.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no load is pending (for tests and for `.tables`-like callers); True if so."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping:
                return
            self._wanted.clear()
            try:
                self.snapshot = self._load()
                self.last_error = None
            except Exception as e:  # noqa: BLE001 - completion goes on with the last snapshot
                self.last_error = e
                log.debug("catalog refresh failed: %s", e)
            self.loaded.set()
            with self._lock:
                if not self._wanted.is_set():
                    self._idle.set()
