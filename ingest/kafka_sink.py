"""`KafkaSink`: collected rows to a Kafka topic, one message per row, keyed by symbol.

Messages are batched by the producer (`linger.ms`), never flushed per frame: a collector calls
`write` for every frame and `flush` on its own schedule. Failed deliveries are retried by the
client (librdkafka) until `message.timeout.ms`; a message that still fails is counted in
`counts.failed`, logged, and makes the next `flush` (and `close`) raise `KafkaDeliveryError`
saying how many were lost. Nothing fails silently.

`format="json"` sends the normalised rows (`cryptodb.ingest.messages`); `format="raw"` sends the
exchange's envelopes unchanged, as the seed platform's consumers expect. Each format ignores the
other's writes, so a collector may always call both.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import pyarrow as pa

from cryptodb.kafka_out import ClientLog

from .messages import encode_rows
from .sink import SinkCounts

log = logging.getLogger("cryptodb.kafka")

FORMATS = ("json", "raw")
# Producer settings that differ from librdkafka's defaults, and why.
PRODUCER_DEFAULTS = {
    "linger.ms": 20,  # gather a frame's rows (and the next frames') into one request
    "queue.buffering.max.messages": 100_000,  # bounds memory; a full queue makes produce() wait for acks
    "enable.idempotence": True,  # retries neither duplicate nor reorder a symbol's messages
}


class KafkaDeliveryError(RuntimeError):
    """Messages the broker never acknowledged, after every retry."""


class KafkaSink:
    """A `Sink` (cryptodb.ingest.sink) that produces to `topic` at `bootstrap` (HOST:PORT[,...]).

    `config` adds or overrides librdkafka producer settings (e.g. {"message.timeout.ms": 30000}).
    """

    def __init__(self, bootstrap: str, topic: str, format: str = "json", *, config: dict | None = None):
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        from confluent_kafka import Producer  # imported here: `import cryptodb` must stay light

        self.bootstrap, self.topic, self.format = bootstrap, topic, format
        self._counts = SinkCounts()
        self._failed_since_flush = 0
        self._first_error: str | None = None
        self._client_errors: set[str] = set()  # reported since the last successful delivery
        self._on_delivery: dict[str, callable] = {}
        self._keys: dict[str, bytes] = {}
        settings = {**PRODUCER_DEFAULTS, **(config or {}), "bootstrap.servers": bootstrap,
                    "logger": ClientLog(log, {}), "error_cb": self._client_error}
        self._producer = Producer(settings)

    # -- the Sink protocol ------------------------------------------------------------------
    def write(self, table: str, rows: pa.Table) -> None:
        """Produce one normalised JSON message per row (json format only)."""
        if self.format != "json" or rows.num_rows == 0:
            return
        symbols = rows.column("symbol").to_pylist()
        self._produce_all(table, zip(map(self._key, symbols), encode_rows(table, rows)))

    def write_raw(self, table: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Produce each (symbol, envelope) unchanged (raw format only)."""
        if self.format != "raw" or not messages:
            return
        self._produce_all(table, ((self._key(symbol), payload) for symbol, payload in messages))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message produced so far is acknowledged or has finally failed; raise
        KafkaDeliveryError if any failed since the last flush, or if `timeout` seconds pass first."""
        producer = self._require_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        # Short waits keep Ctrl-C responsive; message.timeout.ms bounds the total.
        while (pending := producer.flush(1.0)) > 0:
            if deadline is not None and time.monotonic() >= deadline:
                raise KafkaDeliveryError(f"{pending:,} message(s) to topic {self.topic!r} at {self.bootstrap} "
                                         f"still unacknowledged after {timeout:g} s")
        self._raise_failures()

    def close(self) -> None:
        """Flush, then let go of the producer (raising, after letting go, if deliveries failed)."""
        if self._producer is None:
            return
        try:
            self.flush()
        finally:
            self._producer = None

    @property
    def counts(self) -> SinkCounts:
        """Messages acknowledged by the broker, per table; `failed`: given up on after retries."""
        return self._counts

    @property
    def pending(self) -> int:
        """Messages produced but not yet acknowledged or failed."""
        return len(self._producer) if self._producer is not None else 0

    def __enter__(self) -> KafkaSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- producing --------------------------------------------------------------------------
    def _key(self, symbol: str) -> bytes:
        key = self._keys.get(symbol)
        if key is None:
            key = self._keys[symbol] = symbol.encode()
        return key

    def _require_open(self):
        if self._producer is None:
            raise RuntimeError("this KafkaSink is closed")
        return self._producer

    def _produce_all(self, table: str, keyed) -> None:
        producer = self._require_open()
        produce, topic = producer.produce, self.topic
        on_delivery = self._on_delivery.get(table) or self._delivery_callback(table)
        for key, value in keyed:
            while True:
                try:
                    produce(topic, value, key, on_delivery=on_delivery)
                    break
                except BufferError:  # the local queue is full: serve callbacks until there is room
                    producer.poll(0.05)
        producer.poll(0)  # serve delivery callbacks without waiting

    def _delivery_callback(self, table: str):
        counts = self._counts

        def on_delivery(err, msg) -> None:
            if err is None:
                counts.rows[table] = counts.rows.get(table, 0) + 1
                if self._client_errors:  # the connection works again: report the next trouble anew
                    self._client_errors.clear()
                return
            counts.failed += 1
            self._failed_since_flush += 1
            if self._first_error is None:
                self._first_error = err.str() if hasattr(err, "str") else str(err)
                log.error("delivery to topic %s at %s failed: %s (counted; flush will raise)",
                          self.topic, self.bootstrap, self._first_error)

        self._on_delivery[table] = on_delivery
        return on_delivery

    def _client_error(self, err) -> None:
        # Broker-level trouble (all brokers down, transport errors): the client keeps retrying;
        # say so once per distinct error until a delivery succeeds, not on every reconnect attempt.
        text = err.str() if hasattr(err, "str") else str(err)
        if text not in self._client_errors:
            self._client_errors.add(text)
            log.warning("kafka at %s: %s (retrying)", self.bootstrap, text)

    def _raise_failures(self) -> None:
        failed, first = self._failed_since_flush, self._first_error
        self._failed_since_flush, self._first_error = 0, None
        if failed:
            raise KafkaDeliveryError(f"{failed:,} message(s) to topic {self.topic!r} at {self.bootstrap} "
                                     f"could not be delivered after retries (first error: {first})")
