"""Coinbase Advanced Trade WebSocket: ticker, ticker_batch, market_trades and level2, with heartbeats.

Every message is an envelope `{channel, client_id, timestamp, sequence_num, events: [...]}`; the
envelope timestamp (RFC3339, nanoseconds) is the event time of tickers, which carry none of their
own; sequence_num goes up by one per message on the connection. All values are decimal strings.
Shapes: ../shared/FEEDS.md.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .feed import DATA, DEAD, HEARTBEAT, SUBSCRIBED, ConnectionPlan, Feed, Parsed, Parser
from .generator import SEED_PRODUCTS
from .rfc3339 import TimestampError, rfc3339_ns
from .symbols import SymbolError
from .wire import Amount, DecodeError, ValidationError, decoder, reason


# -- the messages, as far as cryptodb reads them (other fields are skipped, 52-week ones included) ---
class Ticker(msgspec.Struct, gc=False):
    product_id: str
    price: Amount
    best_bid: Amount | None = None  # absent from ticker_batch
    best_bid_quantity: Amount | None = None
    best_ask: Amount | None = None
    best_ask_quantity: Amount | None = None
    last_size: Amount | None = None


class Trade(msgspec.Struct, gc=False):
    trade_id: str
    product_id: str
    price: Amount
    size: Amount
    side: Literal["BUY", "SELL"]
    time: str


class Level(msgspec.Struct, gc=False):
    side: Literal["bid", "offer"]
    event_time: str
    price_level: Amount
    new_quantity: Amount  # the new absolute size; 0 removes the level


class Event(msgspec.Struct, gc=False):
    type: str = ""  # snapshot | update
    tickers: list[Ticker] | None = None
    trades: list[Trade] | None = None
    product_id: str | None = None  # l2_data
    updates: list[Level] | None = None  # l2_data
    heartbeat_counter: int | None = None  # heartbeats (sent as a number or a numeric string)
    subscriptions: dict[str, list[str]] | None = None


class Message(msgspec.Struct, gc=False):
    channel: str = ""
    timestamp: str = ""
    sequence_num: int | None = None
    events: list[Event] = []
    type: str = ""  # only an error reply has one: {"type": "error", "message": ...}
    message: str = ""


class Envelope(msgspec.Struct, gc=False):
    """What can still be read of a message whose events do not fit `Message`."""

    channel: str = ""
    sequence_num: int | None = None


_decode = decoder(Message, numbers_as_strings=True).decode
_decode_envelope = decoder(Envelope, numbers_as_strings=True).decode

_SIDE = {"BUY": 1, "SELL": -1, "bid": 1, "offer": -1}
_CHANNEL_TABLE = {"ticker": "ticks", "ticker_batch": "ticks", "market_trades": "trades", "l2_data": "book"}


class _Unexpected(ValueError):
    pass


def _tickers_of(events: list[Event]) -> list[Ticker] | None:
    """The tickers of several events in order (a message usually has one); None if one has none."""
    out = []
    for ev in events:
        if ev.tickers is None:
            return None
        out += ev.tickers
    return out


class CoinbaseParser(Parser):
    exchange = "coinbase"
    tables = ("ticks", "trades", "book")
    # Ticker times are read when the rows are taken. Trades and book updates are read at once:
    # a trade id is remembered only for a trade that is kept, and a lost book update must ask
    # for a fresh snapshot as soon as it is seen.
    text_times = ("ticks",)

    def __init__(self, recent_trades: int = 100_000):
        super().__init__(recent_trades)
        self._ticks = self.buffers["ticks"]
        self._handlers = {  # tickers are read in parse() itself
            "market_trades": self._trades,
            "l2_data": self._book,
        }

    def parse(self, frame: str | bytes, recv_ns: int, source: str) -> Parsed:
        try:
            msg = _decode(frame)
        except DecodeError as e:
            return self._dead(frame, recv_ns, source, reason(e), e)
        channel = msg.channel
        try:
            if channel == "ticker" or channel == "ticker_batch":
                # The hot path (every match on every product), written out here rather than called:
                # locals only, one tuple per ticker, the envelope's time kept as text (the buffer
                # reads them all at once).
                buf = self._ticks
                rows, origins = buf.rows, buf.origins
                mark = len(rows)
                symbols = self._symbols
                text, seq = msg.timestamp, msg.sequence_num
                key = None
                events = msg.events
                tickers = events[0].tickers if len(events) == 1 else _tickers_of(events)
                if tickers is None:
                    raise _Unexpected(f"{channel} event without tickers")
                try:
                    for t in tickers:
                        key = symbols.get(t.product_id) or self.symbol(t.product_id)
                        rows.append((key, None, recv_ns, seq, t.price, t.last_size, t.best_bid, t.best_ask,
                                     t.best_bid_quantity, t.best_ask_quantity, text))
                        origins.append(frame)
                except Exception:
                    buf.rollback(mark)
                    raise
                if source != buf.source:
                    buf.source_from(mark, source)
                return (DATA, seq, None, "ticks", key, None)
            handler = self._handlers.get(channel)
            if handler is not None:
                return handler(msg, recv_ns)
        except (_Unexpected, TimestampError, SymbolError) as e:
            self.dead_letter(frame, recv_ns, source, why := f"unexpected message: {e}")
            return (DEAD, msg.sequence_num, None, _CHANNEL_TABLE[channel], None, why)
        if msg.channel == "heartbeats":
            counter = msg.events[0].heartbeat_counter if msg.events else None
            return (HEARTBEAT, msg.sequence_num, counter, None, None, None)
        if msg.channel == "subscriptions":
            subs = msg.events[0].subscriptions if msg.events else None
            return (SUBSCRIBED, msg.sequence_num, None, None, None, subs)
        if msg.type == "error":
            return self.dead_letter(frame, recv_ns, source, f"exchange error: {msg.message}")
        if not msg.channel:
            return self.dead_letter(frame, recv_ns, source, "unexpected message: no channel")
        self.dead_letter(frame, recv_ns, source, why := f"unexpected channel {msg.channel!r}")
        return (DEAD, msg.sequence_num, None, None, None, why)

    def _dead(self, frame, recv_ns: int, source: str, why: str, error: Exception) -> Parsed:
        """A dead letter that still reports the sequence number and table when they can be read,
        so that a bad message is not also counted as a gap, and a bad book message refreshes the book."""
        parsed = self.dead_letter(frame, recv_ns, source, why)
        if isinstance(error, ValidationError):
            try:
                env = _decode_envelope(frame)
            except DecodeError:
                return parsed
            return (DEAD, env.sequence_num, None, _CHANNEL_TABLE.get(env.channel), None, why)
        return parsed

    def _trades(self, msg: Message, recv_ns: int) -> Parsed:
        # Parse every trade before remembering any id: a message that fails half way must leave
        # no id behind, or its trades would be dropped as repeats when the exchange sends them again.
        parsed = []
        for ev in msg.events:
            if ev.trades is None:
                raise _Unexpected("market_trades event without trades")
            for t in ev.trades:
                parsed.append((self.symbol(t.product_id), rfc3339_ns(t.time), t))
        rows = self.buffers["trades"].rows
        key = None
        for symbol, ts, t in parsed:
            key = symbol
            if self.new_trade(symbol, t.trade_id):
                rows.append((symbol, ts, recv_ns, t.trade_id, t.price, t.size, _SIDE[t.side]))
        return (DATA, msg.sequence_num, None, "trades", key, None)

    def _book(self, msg: Message, recv_ns: int) -> Parsed:
        rows = self.buffers["book"].rows
        mark = len(rows)
        seq = msg.sequence_num
        key = None
        try:
            envelope_ts = rfc3339_ns(msg.timestamp)
            for ev in msg.events:
                if ev.product_id is None or ev.updates is None:
                    raise _Unexpected("l2_data event without product_id or updates")
                key = symbol = self.symbol(ev.product_id)
                snapshot = ev.type == "snapshot"
                for u in ev.updates:
                    # Snapshot levels carry event_time 1970-01-01 (the level's age is unknown): the
                    # snapshot describes the book as of its message, so it takes the envelope's time.
                    ts = envelope_ts if snapshot else rfc3339_ns(u.event_time)
                    rows.append((symbol, ts, recv_ns, seq, _SIDE[u.side], u.price_level, u.new_quantity, snapshot))
        except Exception:
            del rows[mark:]
            raise
        return (DATA, seq, None, "book", key, None)


# The channels the collector subscribes to by their subscribe name; level2 arrives as l2_data.
class CoinbaseFeed(Feed):
    name = "coinbase"
    default_url = "wss://advanced-trade-ws.coinbase.com"
    channels = ("ticker", "ticker_batch", "market_trades", "level2")
    aliases = {"trades": "market_trades", "book": "level2", "l2_data": "level2"}

    @property
    def default_products(self) -> tuple[str, ...]:
        return SEED_PRODUCTS

    def connections(self, products, channels, url=None) -> list[ConnectionPlan]:
        def message(kind: str, channel: str, with_products: bool = True) -> str:
            body = {"type": kind, "product_ids": list(products), "channel": channel} if with_products else \
                {"type": kind, "channel": channel}
            return msgspec.json.encode(body).decode()

        # Heartbeats keep quiet channels open (the server closes them after 60-90 s without
        # traffic) and number themselves, which shows lost messages even when nothing trades.
        subscribe = [message("subscribe", c) for c in channels] + [message("subscribe", "heartbeats", False)]
        resnapshot = (message("unsubscribe", "level2"), message("subscribe", "level2")) if "level2" in channels else ()
        return [ConnectionPlan("coinbase", url or self.default_url, tuple(subscribe), resnapshot, sequenced=True)]

    def parser(self, recent_trades: int = 100_000) -> CoinbaseParser:
        return CoinbaseParser(recent_trades)


FEED = CoinbaseFeed()
