"""Query results to Kafka: one JSON message per row, keyed by symbol.

Used by `COPY (query) TO 'kafka://HOST:PORT/TOPIC'` (sql/export.sql) and by live mode's
`--signals-topic` / `--export-topic`. DuckDB writes each row as a JSON object (`to_json`), so
every column type it has reaches Kafka in one form; delivery is at least once (the producer is
idempotent within a run; a run repeated after a crash may send a batch again).
"""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import duckdb
import pyarrow as pa

from cryptodb.errors import CryptodbError

KAFKA_SCHEME = "kafka://"
log = logging.getLogger("cryptodb.kafka")


class ClientLog(logging.LoggerAdapter):
    """librdkafka's own log lines, at DEBUG: they repeat on every reconnect attempt (several a
    second while a broker is down); the clients' errors are reported where they are handled."""

    def log(self, level, msg, *args, **kwargs):
        self.logger.log(logging.DEBUG, msg, *args, **kwargs)


def parse_target(url: str) -> tuple[str, str]:
    """'kafka://127.0.0.1:19092/crypto-features' -> (bootstrap, topic)."""
    parts = urlparse(url)
    topic = parts.path.strip("/")
    if parts.scheme != "kafka" or not parts.netloc or not topic or "/" in topic:
        raise CryptodbError(f"a Kafka target is kafka://HOST:PORT/TOPIC, not {url!r}")
    return parts.netloc, topic


def producer(bootstrap: str):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True,
                     "message.timeout.ms": 30_000, "logger": ClientLog(log, {})})


def produce_rows(prod, topic: str, con: duckdb.DuckDBPyConnection, rows: pa.Table) -> int:
    """Queue one message per row (key: its symbol column, if any); returns how many."""
    con.register("cryptodb_rows_out", rows)
    try:
        key = "symbol" if "symbol" in rows.column_names else "NULL"
        out = con.execute(f"SELECT {key}, to_json(r) FROM cryptodb_rows_out r").fetchall()
    finally:
        con.unregister("cryptodb_rows_out")
    for symbol, text in out:
        while True:
            try:
                prod.produce(topic, key=None if symbol is None else str(symbol).encode(), value=text.encode())
                break
            except BufferError:  # the local queue is full: let deliveries drain
                prod.poll(0.1)
    prod.poll(0)
    return len(out)


def copy_to_kafka(con: duckdb.DuckDBPyConnection, rows: pa.Table, url: str) -> int:
    """Send `rows` to the topic of `url` and wait until every message is acknowledged."""
    bootstrap, topic = parse_target(url)
    prod = producer(bootstrap)
    failed = []
    n = produce_rows(prod, topic, con, rows)
    prod.flush(60)
    if len(prod):
        failed.append(len(prod))
    if failed:
        raise CryptodbError(f"{failed[0]} of {n} message(s) to {url} were not acknowledged within 60 s")
    log.info("sent %d row(s) to %s", n, url)
    return n
