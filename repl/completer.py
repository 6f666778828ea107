"""The prompt_toolkit side of completion: the pure engine's suggestions as Completions."""

from __future__ import annotations

from typing import Callable

from prompt_toolkit.completion import Completer, Completion

from .catalog import CatalogSnapshot
from .completion import suggest

META_WIDTH = 110  # a kernel's signature and first doc sentence; more would crowd the menu
FIRST_LOAD_WAIT = 3.0  # seconds a completion typed right at startup waits for the catalog


class ReplCompleter(Completer):
    """Runs on prompt_toolkit's completion thread (complete_in_thread), so the first completion can
    wait for the refresher's first load without freezing the screen; later ones use whatever
    snapshot is current."""

    def __init__(self, snapshot: Callable[[], CatalogSnapshot], wait_for_first_load: Callable[[float], bool]):
        self.snapshot = snapshot
        self.wait_for_first_load = wait_for_first_load

    def get_completions(self, document, complete_event):
        self.wait_for_first_load(FIRST_LOAD_WAIT)
        for s in suggest(document.text_before_cursor, self.snapshot(), document.text_after_cursor):
            meta = s.meta if len(s.meta) <= META_WIDTH else s.meta[:META_WIDTH - 1] + "…"
            yield Completion(s.text, start_position=s.start, display=s.shown, display_meta=meta)
