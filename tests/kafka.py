"""A real Kafka-protocol broker for tests (tansu, on a free loopback port) and a consumer that
reads a topic back. Registered for the whole suite in conftest.py."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass

import pytest

from cryptodb.broker import CONSUMER_SESSION_TIMEOUT_MS, start_broker


def free_port() -> int:
    """A port nobody listens on now; high and on loopback, like the broker itself."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> str:
    """Bootstrap string of a tansu broker that lives for the test session (each xdist worker has its own)."""
    log_file = tmp_path_factory.mktemp("kafka") / "tansu.log"
    with start_broker(free_port(), log_file=log_file) as broker:
        yield broker.bootstrap


@dataclass(frozen=True)
class Received:
    key: bytes | None
    value: bytes
    partition: int
    offset: int


def consume_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0, settle: float = 1.0,
                  group: str | None = None) -> list[Received]:
    """Every message of `topic` from the beginning, as a fresh consumer group sees it.

    Reads until `expected` messages arrived (or `timeout`), then keeps reading for `settle` seconds
    so that duplicates beyond `expected` show up in the result rather than going unnoticed. (tansu's
    high watermarks lag the real end of a partition, so "read to the watermark" would stop early.)
    """
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group or f"test-{uuid.uuid4().hex[:8]}",
        "session.timeout.ms": CONSUMER_SESSION_TIMEOUT_MS,  # group join waits half of it on tansu
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    received: list[Received] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        settle_until = None
        while True:
            now = time.monotonic()
            if settle_until is None and len(received) >= expected:
                settle_until = now + settle
            if now >= (settle_until if settle_until is not None else deadline):
                break
            for msg in consumer.consume(10_000, 0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consuming {topic}: {msg.error()}")
                received.append(Received(msg.key(), msg.value(), msg.partition(), msg.offset()))
    finally:
        consumer.close()
    return received
