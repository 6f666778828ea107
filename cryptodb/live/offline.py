"""Messages as confluent_kafka's consumer hands them to `LiveRunner.process`, made from bytes:
to drive live mode's batches without a broker (tests, `bench/bench_live_batch.py`, a notebook
replaying captured payloads through the live script)."""

from __future__ import annotations

import time


class OfflineMessage:
    """One consumed message: its payload, its offset in (topic, partition), produced now."""

    def __init__(self, value: bytes, offset: int, topic: str = "offline", partition: int = 0, key: bytes = b""):
        self._value, self._offset, self._topic, self._partition, self._key = value, offset, topic, partition, key
        self._produced_ms = time.time_ns() // 1_000_000

    def value(self) -> bytes: return self._value
    def key(self) -> bytes: return self._key
    def topic(self) -> str: return self._topic
    def partition(self) -> int: return self._partition
    def offset(self) -> int: return self._offset
    def timestamp(self) -> tuple[int, int]: return (1, self._produced_ms)  # 1: the producer's create time
    def error(self) -> None: return None
