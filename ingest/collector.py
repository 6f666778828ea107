"""The connection loop: WebSocket frames from an exchange, through its parser, into a sink, for weeks.

    collect("coinbase", sink, products=["BTC-USD"], channels=["ticker", "market_trades"])

Per connection: connect, send the feed's subscribe messages (all of them again after every
reconnect), and read frames. A connection that is dropped, or stays silent (no message, not even a
heartbeat) for `stall_seconds`, is replaced after an exponential backoff with jitter; the backoff
starts over once a connection has stayed up for `healthy_seconds`. Sequence gaps and heartbeat
counter jumps are logged and counted; a gap on a connection carrying a book asks the server for a
fresh snapshot. Rows go to the sink every `flush_rows` rows or `flush_seconds` seconds, from a
worker thread, so a slow disk or broker never stalls reading. On stop (SIGINT/SIGTERM, a message
budget, a duration) every connection is closed, every frame already received is still parsed, and
everything buffered is flushed before `collect` returns.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from .collection_gc import collecting_gc
from .feed import DATA, DEAD, HEARTBEAT, SUBSCRIBED, ConnectionPlan, Feed, get_feed
from .gaps import SequenceWatch
from .schema import DEAD_LETTERS
from .sink import Sink

log = logging.getLogger("cryptodb.ingest")


@dataclass
class CollectorSettings:
    flush_rows: int = 50_000  # flush when a table has this many rows buffered ...
    flush_seconds: float = 5.0  # ... or this long after the last flush
    stall_seconds: float = 30.0  # reconnect after this long without a frame (Coinbase heartbeats each second)
    backoff_initial: float = 0.5  # first wait before reconnecting; doubles per failure ...
    backoff_max: float = 30.0  # ... up to this
    healthy_seconds: float = 60.0  # a connection up this long resets the backoff
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    max_messages: int | None = None  # stop after this many frames (tests, demos)
    duration: float | None = None  # stop after this many seconds
    raw: bool = False  # hand the sink the exchange's envelopes (write_raw) instead of rows
    recent_trades: int = 100_000  # trade ids remembered to drop repeats
    status_seconds: float = 1.0
    handle_signals: bool = True  # SIGINT/SIGTERM stop the collector (main thread only)


@dataclass
class CollectorStats:
    exchange: str
    messages: int = 0  # frames received
    rows_written: int = 0  # rows (or raw messages) the sinks made durable
    rows_buffered: int = 0
    gaps: int = 0  # sequence number jumps
    missing: int = 0  # messages those jumps skipped
    heartbeat_gaps: int = 0  # heartbeat counter jumps
    out_of_order: int = 0  # sequence numbers that went backwards
    reconnects: int = 0
    stalls: int = 0  # connections given up for silence
    resnapshots: int = 0  # book re-subscriptions after a gap
    dead_letters: int = 0
    duplicates: int = 0  # trades dropped as repeats of ones already seen
    flush_errors: int = 0
    elapsed: float = 0.0
    messages_per_second: float = 0.0  # over the last status interval
    per_table: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class _Connection:
    """The live state of one planned connection."""

    def __init__(self, plan: ConnectionPlan):
        self.plan = plan
        self.ws = None
        self.sequence = SequenceWatch(f"{plan.name} sequence_num")
        self.heartbeats = SequenceWatch(f"{plan.name} heartbeat_counter")
        self.last_frame = time.monotonic()
        self.resnapshot_pending = False


class Collector:
    def __init__(self, feed: Feed | str, sink: Sink, products: Sequence[str] | None = None,
                 channels: Sequence[str] | None = None, url: str | None = None,
                 dead_letters: Sink | None = None, settings: CollectorSettings | None = None,
                 status: Callable[[CollectorStats], None] | None = None):
        self.feed = get_feed(feed) if isinstance(feed, str) else feed
        self.settings = settings or CollectorSettings()
        self.products = self.feed.resolve_products(products)
        self.channels = self.feed.resolve_channels(channels)
        self.connections = [_Connection(p) for p in self.feed.connections(self.products, self.channels,
                                                                           url.rstrip("/") if url else None)]
        self.parser = self.feed.parser(self.settings.recent_trades)
        self.sink = sink
        self.dead_sink = dead_letters or sink
        self.status = status
        self.stats = CollectorStats(self.feed.name)
        self._raw: dict[str, list[tuple[str, bytes]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._flush_wanted: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._started = time.monotonic()
        self._stop_requested = False

    # -- control -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the collector to flush and return; safe from any thread and from signal handlers,
        and before `run` has started (it then returns at once)."""
        self._stop_requested = True
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    def run_forever(self) -> CollectorStats:
        return asyncio.run(self.run())

    async def run(self) -> CollectorStats:
        with collecting_gc():
            return await self._run()

    async def _run(self) -> CollectorStats:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._started = time.monotonic()
        if self._stop_requested:
            self._stopping.set()
        signals = self._install_signal_handlers()
        readers = [asyncio.create_task(self._keep_connected(c), name=c.plan.name) for c in self.connections]
        flusher = asyncio.create_task(self._flush_periodically())
        reporter = asyncio.create_task(self._report()) if self.status else None
        timer = self._loop.call_later(self.settings.duration, self._stopping.set) if self.settings.duration else None
        try:
            await self._stopping.wait()
        finally:
            self._stopping.set()
            if timer:
                timer.cancel()
            await self._close_connections(readers)
            await asyncio.gather(*readers, return_exceptions=True)
            self._flush_wanted.set()
            await asyncio.gather(flusher, return_exceptions=True)
            if reporter:
                reporter.cancel()
            try:
                await self._flush(final=True)
            finally:
                await asyncio.to_thread(self._close_sinks)
                for sig in signals:
                    self._loop.remove_signal_handler(sig)
                self._refresh_stats()
                if self.status:
                    self.status(self.stats)
        return self.stats

    def _install_signal_handlers(self) -> list[int]:
        if not self.settings.handle_signals or threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self._stopping.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not on this platform / loop
                pass
        return installed

    async def _close_connections(self, readers: list[asyncio.Task]) -> None:
        # Closing (rather than cancelling) a reading connection lets it drain: frames already
        # received are still handed to the parser before its loop ends.
        closing = []
        for conn, task in zip(self.connections, readers):
            if conn.ws is not None:
                closing.append(conn.ws.close())
            else:
                task.cancel()  # connecting or waiting to reconnect: nothing received to save
        await asyncio.gather(*closing, return_exceptions=True)

    # -- connections ---------------------------------------------------------------------------
    async def _keep_connected(self, conn: _Connection) -> None:
        attempt = 0
        first = True
        while not self._stopping.is_set():
            if not first:
                self.stats.reconnects += 1
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("%s: reconnecting in %.2f s (attempt %d)", conn.plan.name, delay, attempt)
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                    return
                except asyncio.TimeoutError:
                    pass
            first = False
            opened = time.monotonic()
            try:
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of a connection means: connect again
                log.warning("%s: connection lost: %s: %s", conn.plan.name, type(e).__name__, e)
            else:
                if not self._stopping.is_set():
                    log.warning("%s: the server closed the connection", conn.plan.name)
            if time.monotonic() - opened >= self.settings.healthy_seconds:
                attempt = 0

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": half the exponential delay is certain, half random, so that many
        # collectors cut off together do not come back in lock step, yet none retries at once.
        ceiling = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** min(attempt, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _session(self, conn: _Connection) -> None:
        from websockets.asyncio.client import connect

        s = self.settings
        async with connect(conn.plan.url, open_timeout=s.open_timeout, close_timeout=s.close_timeout,
                           max_size=64 * 2**20, max_queue=None) as ws:
            conn.ws = ws
            conn.sequence.reset()
            conn.heartbeats.reset()
            conn.resnapshot_pending = False
            conn.last_frame = time.monotonic()
            log.info("%s: connected to %s", conn.plan.name, conn.plan.url)
            watchdog = asyncio.create_task(self._watch_for_stall(conn, ws))
            try:
                for text in conn.plan.subscribe:
                    await ws.send(text)
                async for frame in ws:
                    self._on_frame(conn, frame, time.time_ns())
            finally:
                conn.ws = None
                watchdog.cancel()

    async def _watch_for_stall(self, conn: _Connection, ws) -> None:
        limit = self.settings.stall_seconds
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            silent = time.monotonic() - conn.last_frame
            if silent > limit and not self._stopping.is_set():
                self.stats.stalls += 1
                log.warning("%s: no message for %.1f s: reconnecting", conn.plan.name, silent)
                # Abort, not close: a stalled peer may never answer a close handshake. Frames
                # already received stay queued and are still read.
                ws.transport.abort()
                return

    # -- frames --------------------------------------------------------------------------------
    def _on_frame(self, conn: _Connection, frame: str | bytes, recv_ns: int) -> None:
        conn.last_frame = time.monotonic()
        self.stats.messages += 1
        try:
            kind, seq, counter, table, key, detail = self.parser.parse(frame, recv_ns, conn.plan.name)
        except Exception as e:  # a parser bug must not stop collection: keep the frame, say why
            log.exception("%s: parser failed", conn.plan.name)
            kind, seq, counter, table, key, detail = self.parser.dead_letter(
                frame, recv_ns, conn.plan.name, f"parser error: {type(e).__name__}: {e}")
        if seq is not None and conn.plan.sequenced:
            skipped = conn.sequence.check(seq)
            if skipped:
                self.stats.gaps += 1
                self.stats.missing += skipped
                log.warning("%s: sequence gap: %d message(s) missing before sequence_num %d",
                            conn.plan.name, skipped, seq)
                self._resnapshot(conn)
            self.stats.out_of_order = conn.sequence.backwards
        if kind == DATA:
            if self.settings.raw and key is not None:
                payload = frame.encode() if isinstance(frame, str) else frame
                self._raw.setdefault(table, []).append((key, payload))
            if len(self.parser.buffers[table]) >= self.settings.flush_rows:  # cheaper than a total per frame
                self._flush_wanted.set()
        elif kind == HEARTBEAT:
            if counter is not None and conn.heartbeats.check(counter):
                self.stats.heartbeat_gaps += 1
                log.warning("%s: heartbeat counter jumped to %d", conn.plan.name, counter)
        elif kind == DEAD:
            log.warning("%s: dead letter: %s", conn.plan.name, detail)
            if table == "book":  # a book update was lost: the book needs a fresh snapshot
                self._resnapshot(conn)
        elif kind == SUBSCRIBED:
            log.info("%s: subscribed: %s", conn.plan.name, detail)
        if self.settings.max_messages and self.stats.messages >= self.settings.max_messages:
            self._stopping.set()

    def _resnapshot(self, conn: _Connection) -> None:
        if not conn.plan.resnapshot or conn.resnapshot_pending or conn.ws is None:
            return
        conn.resnapshot_pending = True
        self.stats.resnapshots += 1
        log.warning("%s: re-subscribing the book for a fresh snapshot", conn.plan.name)
        ws = conn.ws

        async def send() -> None:
            try:
                for text in conn.plan.resnapshot:
                    await ws.send(text)
            except Exception as e:  # noqa: BLE001 - the connection died; the reconnect resubscribes anyway
                log.warning("%s: could not re-subscribe: %s", conn.plan.name, e)
            finally:
                conn.resnapshot_pending = False

        asyncio.get_running_loop().create_task(send())

    # -- flushing ------------------------------------------------------------------------------
    async def _flush_periodically(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._flush_wanted.wait(), timeout=self.settings.flush_seconds)
            except asyncio.TimeoutError:
                pass
            if self._stopping.is_set():
                return
            self._flush_wanted.clear()
            await self._flush()

    async def _flush(self, final: bool = False) -> None:
        async with self._flush_lock:
            # Taken here, in the loop's thread, so no frame is parsed half into one batch.
            tables = self.parser.take()
            raw, self._raw = self._raw, {}
            if self.parser.rejected_on_take:
                raw = self._drop_unreadable(raw)
            if tables or raw or final:
                await asyncio.to_thread(self._deliver, tables, raw, final)
            self._refresh_stats()

    def _drop_unreadable(self, raw: dict) -> dict:
        """Messages the parser found unreadable only when taking the rows (a ticker's time) are dead
        letters now: their raw envelopes, queued when they looked fine, are not sent either."""
        unreadable = set()
        for source, frame, why in self.parser.rejected_on_take:
            log.warning("%s: dead letter: %s", source, why)
            unreadable.add(frame.encode() if isinstance(frame, str) else frame)
        return {table: [(key, payload) for key, payload in messages if payload not in unreadable]
                for table, messages in raw.items()}

    def _deliver(self, tables: dict, raw: dict, final: bool) -> None:
        """In a worker thread, one at a time: hand everything to the sinks and make it durable.
        A failed flush is logged and retried with the next one (the sinks keep what they could not
        write); a failed final flush raises, because then something received would be lost."""
        try:
            for name, rows in tables.items():
                self.stats.per_table[name] = self.stats.per_table.get(name, 0) + rows.num_rows
                if name == DEAD_LETTERS.name:
                    self.dead_sink.write(name, rows)
                elif not self.settings.raw:
                    self.sink.write(name, rows)
            for name, messages in raw.items():
                self.sink.write_raw(name, messages)
            self.sink.flush()
            if self.dead_sink is not self.sink:
                self.dead_sink.flush()
        except Exception:
            self.stats.flush_errors += 1
            if final:
                raise
            log.exception("%s: flush failed; retrying with the next flush", self.feed.name)
        finally:
            written = self.sink.counts.total
            if self.dead_sink is not self.sink:
                written += self.dead_sink.counts.total
            self.stats.rows_written = written

    def _close_sinks(self) -> None:
        self.sink.close()
        if self.dead_sink is not self.sink:
            self.dead_sink.close()

    # -- status --------------------------------------------------------------------------------
    def _refresh_stats(self) -> None:
        self.stats.dead_letters = self.parser.dead
        self.stats.duplicates = self.parser.duplicates
        self.stats.rows_buffered = self.parser.buffered()
        self.stats.elapsed = time.monotonic() - self._started

    async def _report(self) -> None:
        last_messages, last_time = 0, time.monotonic()
        while True:
            await asyncio.sleep(self.settings.status_seconds)
            now = time.monotonic()
            self._refresh_stats()
            self.stats.messages_per_second = (self.stats.messages - last_messages) / max(now - last_time, 1e-9)
            last_messages, last_time = self.stats.messages, now
            try:
                self.status(self.stats)
            except Exception:  # noqa: BLE001 - a broken status display must not stop collection
                log.exception("status callback failed")


def collect(exchange: Feed | str, sink: Sink, products: Sequence[str] | None = None,
            channels: Sequence[str] | None = None, url: str | None = None, dead_letters: Sink | None = None,
            status: Callable[[CollectorStats], None] | None = None, **settings) -> CollectorStats:
    """Collect `exchange` into `sink` until stopped (SIGINT/SIGTERM, max_messages, duration).

    `settings` are the fields of CollectorSettings (flush_rows, flush_seconds, stall_seconds, ...).
    Dead letters go to `dead_letters` if given, else to `sink`. Returns the final counts.
    """
    collector = Collector(exchange, sink, products, channels, url, dead_letters, CollectorSettings(**settings),
                          status)
    return collector.run_forever()
