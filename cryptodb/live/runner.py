"""`cryptodb live`: consume ticks from Kafka in micro-batches and run a mode script on each.

Every micro-batch (bounded by rows and by time):
1. decode the messages (normalised JSON rows or raw Coinbase envelopes, `ingest.messages`);
   malformed ones become dead letters, with the reason;
2. apply the ordering policy per stream, (exchange, symbol), against its watermark
   (cryptodb.live.order): duplicates are dropped, late ticks become dead letters;
3. run the live script (sql/live.sql by default; cryptodb.live.script) over the new ticks, every
   kernel resuming from the state its partition was left in (kept in memory between batches,
   engine.resume.ResidentStates), so the results equal those of a run over all ticks, row for
   row. A script that reads books across exchanges (`-- @live lookback`, as sql/arbitrage.sql)
   also gets the stored quotes those books need (cryptodb.live.books);
4. commit (see `commit`): append the ticks, trades, funding, book rows and dead letters to the
   store (de-duplicated by key); record the files of the script's tables about to be written
   (`begin`) and write them; then make kernel states, carried tables, next offsets and watermarks
   durable in one transaction (`commit`);
5. print and produce the alerts.

With `commit_ms`, step 5 comes before step 4 and a commit takes every batch since the last one:
signals go out as soon as they are computed, at the price of going out again after a crash.
Until their commit, a batch's ticks count as stored for the ordering policy and the books.

After a crash, the next start removes the files of a commit that did not finish, and consumes
again from the committed offsets (not from the consumer group's offsets) with the committed
states: the result equals one uninterrupted run. SIGTERM or SIGINT end the current batch,
commit and exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cryptodb.broker import CONSUMER_SESSION_TIMEOUT_MS
from cryptodb.engine.resume import ResidentStates
from cryptodb.errors import CryptodbError
from cryptodb.kafka_out import ClientLog, produce_rows, producer
from cryptodb.live.backends import Checkpoint, StateBackend, open_backend
from cryptodb.live.books import ScriptInputs, lookback_inputs, plain_inputs
from cryptodb.live.order import apply_order_policy, new_watermarks
from cryptodb.live.script import LiveOutputs, load_live_script

log = logging.getLogger("cryptodb.live")

PARTITION_CHECK_S = 10.0  # how often an idle consumer looks for new partitions
CARRY_PARTITION = "[]"  # a carried table is one state blob, saved beside the kernels' states


@dataclass
class LiveOptions:
    bootstrap: str = "127.0.0.1:19092"
    topic: str = "coinbase-ticker"
    group: str = "cryptodb-live"
    script: str = "live"
    params: dict = field(default_factory=dict)
    state_backend: str = "duckdb"
    batch_rows: int = 10_000
    batch_ms: int = 1_000
    # 0: each batch commits before its alerts and features are emitted (exactly once, also across a
    # crash). Else alerts go out as soon as computed and batches commit together, once this long
    # has passed since the first of them began: far less work a batch, and a crash emits the
    # alerts since the last commit again.
    commit_ms: int = 0
    signals_topic: str | None = None
    export_topic: str | None = None
    max_batches: int | None = None  # stop after this many batches with messages
    idle_exit: float | None = None  # stop after this many seconds without a message
    print_signals: bool = True


@dataclass
class BatchReport:
    number: int
    messages: int = 0
    ticks: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    features: int = 0
    signals: int = 0  # alerts of every alert table (signals, arbitrage_alerts, ...)
    lag_s: float = 0.0  # now minus the newest tick's event time
    seconds: float = 0.0
    # Per message, from its Kafka timestamp (when it was produced), ms: to the moment the batch's
    # alerts and exported features were emitted; and, for a batch that committed, to that commit
    # (the messages of every batch it made durable).
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    committed_ms: np.ndarray | None = None

    def line(self) -> str:
        latency = f", produced->emitted max {self.latencies_ms.max():.0f} ms" if len(self.latencies_ms) else ""
        if self.committed_ms is not None and len(self.committed_ms):
            latency += f", committed (max {self.committed_ms.max():.0f} ms after produced)"
        return (f"batch {self.number}: {self.messages} msgs, {self.ticks} ticks, {self.duplicates} dup, "
                f"{self.dead_letters} dead, {self.features} features, {self.signals} signals, "
                f"lag {self.lag_s:.2f} s, {self.seconds * 1e3:.0f} ms{latency}")


@dataclass
class LiveTotals:
    batches: int = 0
    messages: int = 0
    ticks: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    features: int = 0
    signals: int = 0

    def add(self, r: BatchReport) -> None:
        self.batches += 1
        for name in ("messages", "ticks", "duplicates", "dead_letters", "features", "signals"):
            setattr(self, name, getattr(self, name) + getattr(r, name))


@dataclass
class _Pending:
    """What the batches since the last commit left: written and made durable together."""

    feeds: dict[str, list[pa.Table]] = field(default_factory=dict)  # ticks, trades, ..., dead_letters
    stored: dict[str, list[pa.Table]] = field(default_factory=dict)  # the script's tables for the store
    carried: dict[str, pa.Table] = field(default_factory=dict)  # each carried table as the last batch left it
    offsets: dict = field(default_factory=dict)
    watermarks: dict = field(default_factory=dict)
    produced_ms: list[np.ndarray] = field(default_factory=list)
    since: float = 0.0  # time.monotonic() when its first batch began

    def add_feed(self, table: str, rows: pa.Table) -> None:
        self.feeds.setdefault(table, []).append(rows)

    def add_stored(self, name: str, rows: pa.Table) -> None:
        self.stored.setdefault(name, []).append(rows)

    def feed_tables(self) -> list[tuple[str, pa.Table]]:
        return _concatenated(self.feeds)

    def stored_tables(self) -> list[tuple[str, pa.Table]]:
        return _concatenated(self.stored)

    def ticks_table(self) -> pa.Table | None:
        """Ticks of batches not committed yet: they count as stored."""
        parts = self.feeds.get("ticks")
        return pa.concat_tables(parts) if parts else None

    def empty(self) -> bool:
        return not self.produced_ms

    def due(self, options: LiveOptions) -> bool:
        return not self.empty() and time.monotonic() - self.since >= options.commit_ms / 1000


def _concatenated(parts: dict[str, list[pa.Table]]) -> list[tuple[str, pa.Table]]:
    return [(name, pa.concat_tables(tables)) for name, tables in parts.items()]


class LiveRunner:
    def __init__(self, db, options: LiveOptions, out=None, status=None):
        self.db = db  # a cryptodb Database; only its store is written, never its catalog
        self.options = options
        self.out = out or sys.stdout
        self.status = status or (lambda line: print(line, file=sys.stderr))
        self.store = db.store
        self.stopping = False
        self.backend: StateBackend | None = None
        self._fail_at = _fault_injection()
        self._views_ready = False
        self._columns_checked: set[str] = set()
        self._assigned: set[int] = set()

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> LiveTotals:
        checkpoint = self.open()
        try:
            consumer = self._consumer(checkpoint)
            producer = self._producer()
            previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                return self._loop(consumer, producer)
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)
                consumer.close()
                if producer is not None:
                    producer.flush(30)
        finally:
            self.close()

    def open(self) -> Checkpoint:
        """Ready to `process` batches: state backend open, a crashed commit undone, the script loaded."""
        self.backend = open_backend(self.options.state_backend, self.db.path)
        try:
            checkpoint = self.backend.checkpoint()
            self._undo_uncommitted(checkpoint)
            # Open the catalog once read-write (and let go): a run killed while adding views leaves
            # a write-ahead log that this replays, so readers find the views.
            self.db.add_derived_views()
            self.watermarks = dict(checkpoint.watermarks)
            self.pending = _Pending()
            self.con = self._live_connection()
            self.script = load_live_script(self.options.script,
                                           {"bootstrap": self.options.bootstrap, **self.options.params},  # for kafka://
                                           self.con)
            self._restore_carried()
        except BaseException:
            self.backend.close()
            raise
        return checkpoint

    def close(self) -> None:
        self.backend.close()

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True  # the current batch finishes and commits; then the loop ends

    def _undo_uncommitted(self, checkpoint: Checkpoint) -> None:
        for path in checkpoint.pending:
            Path(path).unlink(missing_ok=True)
        if checkpoint.pending:
            log.warning("removed %d file(s) of a batch that did not commit; consuming it again",
                        len(checkpoint.pending))

    def _live_connection(self) -> duckdb.DuckDBPyConnection:
        from cryptodb.engine.gate import Engine
        from cryptodb.udfs import rowwise

        con = duckdb.connect()
        for statement in rowwise.install_sql():
            con.execute(statement)
        self.states = ResidentStates(self.backend)
        self.engine = Engine(con, self.store, kernel_states=self.states, reuse_plans=True)
        return con

    def _restore_carried(self) -> None:
        for name in self.script.carried:
            blob = self.backend.load(_carry_id(name), [CARRY_PARTITION])[0]
            if blob is not None:
                self.script.restore(self.con, name, pa.ipc.open_stream(blob).read_all())

    # -- Kafka ----------------------------------------------------------------------------
    def _consumer(self, checkpoint: Checkpoint):
        """A consumer assigned every partition of the topic at the offsets committed with the
        states. Assigned by hand, not through group rebalancing: live mode never reads the
        group's offsets, and a rejoin can stall for a session timeout (or, on tansu, for good)."""
        from confluent_kafka import Consumer

        consumer = Consumer({
            "bootstrap.servers": self.options.bootstrap,
            "group.id": self.options.group,
            "session.timeout.ms": CONSUMER_SESSION_TIMEOUT_MS,
            # How long the broker may hold a fetch that finds nothing new: at its default, 500 ms,
            # a tick produced meanwhile waited that long, whatever batch_ms asked for.
            "fetch.wait.max.ms": max(10, min(500, self.options.batch_ms)),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "logger": ClientLog(log, {}),
        })
        self._checkpoint_offsets = dict(checkpoint.offsets)
        self._assigned: set[int] = set()
        self._assign_new_partitions(consumer)
        return consumer

    def _assign_new_partitions(self, consumer) -> None:
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        topic = self.options.topic
        try:
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
        except KafkaException as e:
            log.warning("broker: %s; will retry", e)
            return
        if meta is None or meta.error is not None:
            return  # the topic does not exist yet
        new = sorted(set(meta.partitions) - self._assigned)
        if not new:
            return
        self._assigned |= set(new)
        consumer.incremental_assign([
            TopicPartition(topic, p, self._checkpoint_offsets.get((topic, p), OFFSET_BEGINNING)) for p in new])

    def _producer(self):
        if not (self.options.signals_topic or self.options.export_topic):
            return None
        return producer(self.options.bootstrap)

    def _loop(self, consumer, producer) -> LiveTotals:
        totals = LiveTotals()
        idle_since = checked = time.monotonic()
        backoff = 0.5
        while not self.stopping:
            messages, broker_error = self._collect(consumer)
            if broker_error:
                log.warning("broker: %s; retrying in %.1f s (state and offsets are safe)", broker_error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            if not messages:
                if self.pending.due(self.options):
                    self.commit(totals.batches)  # the batches waiting for others to join them: none came
                if time.monotonic() - checked > PARTITION_CHECK_S or not self._assigned:
                    self._assign_new_partitions(consumer)  # the topic may appear or grow
                    checked = time.monotonic()
                if self.options.idle_exit is not None and time.monotonic() - idle_since > self.options.idle_exit:
                    break
                continue
            backoff = 0.5
            idle_since = time.monotonic()
            report = self.process(messages, totals.batches + 1, producer)
            totals.add(report)
            self.status(report.line())
            if self.options.max_batches is not None and totals.batches >= self.options.max_batches:
                break
        if not self.pending.empty():
            self.commit(totals.batches)
        return totals

    def _collect(self, consumer) -> tuple[list, str | None]:
        """Messages until batch_rows or batch_ms after the first one (or a stop request)."""
        from confluent_kafka import KafkaError

        batch, error = [], None
        deadline = None
        while len(batch) < self.options.batch_rows:
            if deadline is None:
                # The first message starts the batch's clock: ask for one, which returns as soon as
                # one is there (asking for batch_rows waited out the whole timeout: 200 ms a batch).
                got = consumer.consume(1, timeout=0.2)
            else:
                got = consumer.consume(self.options.batch_rows - len(batch),
                                       timeout=max(0.0, deadline - time.monotonic()))
            for m in got:
                if m.error() is None:
                    batch.append(m)
                elif m.error().code() != KafkaError._PARTITION_EOF:
                    error = str(m.error())
            if batch and deadline is None:
                deadline = time.monotonic() + self.options.batch_ms / 1000
            if self.stopping or error or (deadline is None and not got) or \
                    (deadline is not None and time.monotonic() >= deadline):
                break
        return batch, error

    # -- one micro-batch ------------------------------------------------------------------
    def process(self, messages: list, number: int, producer=None) -> BatchReport:
        """Run one micro-batch and emit its alerts and exported features; commit when one is due."""
        from cryptodb.ingest.messages import decode_batch
        from cryptodb.ingest.schema import FUNDING

        started = time.perf_counter()
        report = BatchReport(number, messages=len(messages))
        self.states.begin_batch()
        pending = self.pending
        if pending.empty():
            pending.since = time.monotonic()
        now = time.time_ns()
        payloads = [m.value() or b"" for m in messages]
        decoded = decode_batch(payloads, [now] * len(payloads))
        dead = [_dead_letter(messages[r.index], r.payload, r.reason) for r in decoded.rejected]

        ticks = decoded.tables.get("ticks")
        if ticks is not None and ticks.num_rows:
            ticks, late, report.duplicates = apply_order_policy(ticks, self.watermarks, self._stored_keys)
            dead += late
        for table, rows in decoded.tables.items():  # trades, funding, book: stored as they come
            if table != "ticks" and rows.num_rows:
                pending.add_feed(table, rows)
        if dead:
            pending.add_feed("dead_letters", pa.Table.from_pylist(dead, schema=_dead_letter_schema()))
        report.dead_letters = len(dead)

        outputs = LiveOutputs()
        funding = decoded.tables.get("funding", FUNDING.arrow_schema.empty_table())
        if ticks is not None and ticks.num_rows:
            report.ticks = ticks.num_rows
            report.lag_s = (now - int(pc.max(ticks.column("ts")).cast(pa.int64()).as_py())) / 1e9
            pending.add_feed("ticks", ticks)  # a lookback script reads the batch's ticks as stored
        if report.ticks or funding.num_rows:
            outputs = self._run_script(self._script_inputs(ticks, funding))
        report.features = outputs.stored["features"].num_rows if "features" in outputs.stored else 0
        report.signals = sum(rows.num_rows for rows in outputs.alerts.values())
        for name, rows in outputs.stored.items():
            self._check_columns(name, rows)
            pending.add_stored(name, rows)
        pending.carried.update(outputs.carried)
        pending.offsets.update(_next_offsets(messages, self.options.topic, len(self._assigned)))
        marks = new_watermarks(ticks)
        pending.watermarks.update(marks)
        self.watermarks.update(marks)
        produced_ms = np.array([m.timestamp()[1] for m in messages], np.float64)
        pending.produced_ms.append(produced_ms)

        if not self.options.commit_ms:
            # Each batch commits before its alerts go out: printed and produced once, also across a crash.
            report.committed_ms = self.commit(number)
        for rows in outputs.alerts.values():
            self._publish_alerts(rows, producer)
        if producer is not None and self.options.export_topic and "features" in outputs.stored:
            produce_rows(producer, self.options.export_topic, self.con, outputs.stored["features"])
        report.latencies_ms = time.time_ns() / 1e6 - produced_ms
        if self.pending.due(self.options):
            # Batches committed together: their alerts went out as they were computed, so a crash
            # before this commit emits them again (the stored tables still get them once).
            report.committed_ms = self.commit(number)
        report.seconds = time.perf_counter() - started
        return report

    def commit(self, number: int) -> np.ndarray:
        """Write what the batches since the last commit left for the store, and make it durable
        with their kernel states, carried tables, next offsets and watermarks in one transaction.
        Returns each of their messages' latency from produced to committed, ms."""
        pending, self.pending = self.pending, _Pending()
        for table, rows in pending.feed_tables():
            # Feed tables are de-duplicated by key as they are appended: a batch consumed again
            # after a crash adds nothing twice.
            self.store.append(table, rows)
        planned = []
        tag = uuid.uuid4().hex[:12]
        for name, rows in pending.stored_tables():
            planned += self.store.plan_append_derived(name, rows, f"live-{tag}")
        self.backend.begin([str(path) for path, _ in planned])
        self.store.write_files(planned)
        if self._fail_at is not None and number >= self._fail_at:
            import os

            os._exit(75)  # fault injection for the crash tests: files written, nothing committed
        for name, rows in pending.carried.items():
            self.backend.save(_carry_id(name), {CARRY_PARTITION: _ipc_bytes(rows)})
        for call, states in self.states.changed():
            self.backend.save(call, states)
        self.backend.commit(pending.offsets, pending.watermarks)
        if not self._views_ready and planned:
            # Readers find the script's tables in the catalog; if they hold it open right now,
            # the views appear at a later commit (or the next read-write open).
            self._views_ready = self.db.add_derived_views()
        committed_ms = time.time_ns() / 1e6
        # Arrow's allocator keeps what the batches freed for reuse: ~75 MB of a run with 1,000
        # symbols. Handed back after each commit; 50,000-tick batches ran no slower for it.
        pa.default_memory_pool().release_unused()
        return committed_ms - np.concatenate(pending.produced_ms)

    def _check_columns(self, name: str, rows: pa.Table) -> None:
        """A stored table's files must share their columns, or no reader can read it: refuse a
        script that now writes other columns into it (nothing of the batch is committed)."""
        if name in self._columns_checked:
            return
        import pyarrow.parquet as pq

        existing = next(self.store.table_path(name).rglob("*.parquet"), None)
        if existing is not None and pq.read_schema(existing).names != rows.column_names:
            raise CryptodbError(
                f"store table {name} has columns ({', '.join(pq.read_schema(existing).names)}) but "
                f"{self.script.where} writes ({', '.join(rows.column_names)}): move {self.store.table_path(name)} "
                f"and its versions (_versions/{name}) away, or write to another table")
        self._columns_checked.add(name)

    def _stored_keys(self, rows: pa.Table) -> set[tuple[str, str, int, int]]:
        """(exchange, symbol, ts, seq) of `rows` that the store already holds, or that batches not
        committed yet will add to it."""
        lo = int(pc.min(rows.column("ts")).cast(pa.int64()).as_py())
        hi = int(pc.max(rows.column("ts")).cast(pa.int64()).as_py())
        symbols = sorted(set(rows.column("symbol").to_pylist()))
        sources, params = [], []
        if self.store.files("ticks"):
            sources.append("SELECT exchange, symbol, ts, seq FROM read_parquet(?, hive_partitioning = true, "
                           "hive_types = {'symbol': VARCHAR, 'date': DATE})")
            params.append(self.store.glob("ticks"))
        waiting = self.pending.ticks_table()
        if waiting is not None:
            self.con.register("live_waiting_ticks", waiting)
            sources.append("SELECT exchange, symbol, ts, seq FROM live_waiting_ticks")
        if not sources:
            return set()
        try:
            found = self.con.execute(
                f"SELECT exchange, symbol, epoch_ns(ts), coalesce(seq, -1) FROM ({' UNION ALL '.join(sources)}) "
                "WHERE symbol IN (SELECT unnest(?::VARCHAR[])) AND epoch_ns(ts) BETWEEN ? AND ?",
                [*params, symbols, lo, hi]).fetchall()
        finally:
            if waiting is not None:
                self.con.unregister("live_waiting_ticks")
        return {(e, s, int(t), int(q)) for e, s, t, q in found}

    def _script_inputs(self, ticks: pa.Table | None, funding: pa.Table) -> ScriptInputs:
        from cryptodb.ingest.schema import TICKS

        ticks = ticks if ticks is not None else TICKS.arrow_schema.empty_table()
        if self.script.lookback is None:
            return plain_inputs(ticks, funding)
        return lookback_inputs(self.store, self.con, ticks, funding, self.watermarks, self.script.tolerance_ns,
                               self.pending.ticks_table())

    def _run_script(self, inputs: ScriptInputs) -> LiveOutputs:
        con = self.con
        if self.script.lookback is not None:
            # Where this batch's instants start: overall, and per symbol (a MAP of TIMESTAMP_NS).
            since = inputs.since_ns
            con.execute("SET VARIABLE since = make_timestamp_ns(?)", [since if since is not None else 0])
            con.register("live_since", pa.table({"symbol": list(inputs.since_by_symbol),
                                                 "since": pa.array(list(inputs.since_by_symbol.values()),
                                                                   pa.timestamp("ns"))}))
            con.execute("SET VARIABLE since_by_symbol = (SELECT map(list(symbol), list(since)) FROM live_since)")
            con.unregister("live_since")
        con.register("ticks", inputs.ticks)
        con.register("funding", inputs.funding)
        try:
            return self.script.run(self.engine, con)
        finally:
            con.unregister("ticks")
            con.unregister("funding")

    def _publish_alerts(self, alerts: pa.Table, producer) -> None:
        if self.options.print_signals:
            for row in alerts.to_pylist():
                details = " ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k not in ("symbol", "ts", "signal"))
                print(f"{row.get('ts')} {row.get('symbol')} {row.get('signal')} {details}", file=self.out, flush=True)
        if producer is not None and self.options.signals_topic:
            produce_rows(producer, self.options.signals_topic, self.con, alerts)


def _fmt(v) -> str:
    return f"{v:.8g}" if isinstance(v, float) else str(v)  # prices keep their cents


def _next_offsets(messages: list, topic: str, partitions: int) -> dict[tuple[str, int], int]:
    """Offsets grow within a partition as consumed, so each partition's last message counts: read
    from the end, until every one of the topic's `partitions` assigned partitions has been seen
    (asking each of 50,000 messages for its topic and partition took 60 ms)."""
    offsets: dict[tuple[str, int], int] = {}
    for m in reversed(messages):
        key = (topic, m.partition())
        if key not in offsets:
            offsets[key] = m.offset() + 1
            if len(offsets) == partitions:
                break
    return offsets


def _dead_letter_schema() -> pa.Schema:
    from cryptodb.ingest.schema import DEAD_LETTERS

    return DEAD_LETTERS.arrow_schema


def _dead_letter(message, payload: bytes, reason: str) -> dict:
    """A dead letter keyed by where the message sits in Kafka, so a batch consumed again after a
    crash stores the same letter, not a second one."""
    from cryptodb.ingest.schema import UNKNOWN_SYMBOL

    kind, ms = message.timestamp()
    at = ms * 1_000_000 if kind and ms > 0 else time.time_ns()
    key = message.key()
    return {"exchange": "kafka", "symbol": key.decode(errors="replace") if key else UNKNOWN_SYMBOL,
            "ts": at, "recv_ts": time.time_ns(),
            "source": f"kafka:{message.topic()}/{message.partition()}@{message.offset()}",
            "reason": reason, "payload": payload.decode(errors="replace")}


def _carry_id(table: str) -> str:
    return f"carry/{table}"


def _ipc_bytes(rows: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return sink.getvalue().to_pybytes()


def _fault_injection() -> int | None:
    """CRYPTODB_LIVE_EXIT_BEFORE_COMMIT=N: exit after writing batch N's files, before its commit.
    For the crash tests: the one moment where a crash could break exactly-once."""
    import os

    value = os.environ.get("CRYPTODB_LIVE_EXIT_BEFORE_COMMIT")
    return int(value) if value else None


def live(db, options: LiveOptions, **kwargs) -> LiveTotals:
    """Run live mode on `db` until stopped (SIGTERM/SIGINT, max_batches or idle_exit)."""
    if db.read_only:
        raise CryptodbError("live mode writes ticks and features: open the database read-write")
    return LiveRunner(db, options, **kwargs).run()
