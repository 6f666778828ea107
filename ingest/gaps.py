"""Counters that must go up by one: Coinbase's sequence_num and heartbeat_counter.

A jump means messages were lost on the way (counted, and for a book a reason to fetch a fresh
snapshot); a step back means a repeat or a reorder (counted apart, nothing to fetch). Both
counters restart with each connection, so the watch is reset on connect.
"""

from __future__ import annotations


class SequenceWatch:
    def __init__(self, name: str):
        self.name = name
        self.last: int | None = None
        self.gaps = 0  # jumps seen
        self.missing = 0  # values skipped by those jumps
        self.backwards = 0

    def reset(self) -> None:
        self.last = None

    def check(self, value: int) -> int:
        """Record `value`; return how many values were skipped before it (0: in order)."""
        last = self.last
        if last is None or value == last + 1:
            self.last = value
            return 0
        if value <= last:
            self.backwards += 1
            return 0
        skipped = value - last - 1
        self.last = value
        self.gaps += 1
        self.missing += skipped
        return skipped
