"""Keys seen recently, in bounded memory: drops trades repeated by a subscribe snapshot or a reconnect.

Exchanges replay recent trades when a channel is (re)subscribed; those repeats arrive within
seconds of the originals, so remembering the last `capacity` keys is enough, and a collector that
runs for weeks keeps a fixed amount of memory. The store drops any older repeat by its key.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable


class RecentKeys:
    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self._seen: set = set()
        self._order: deque = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: Hashable) -> bool:
        """Remember `key`; False when it was already among the recent ones (a duplicate)."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True
