"""Kraken spot WebSocket v2: ticker and trade.

Messages are `{"channel", "type": "snapshot" | "update", "data": [...]}`; unlike Coinbase and
Binance, prices and quantities are JSON numbers, and a string where a number belongs is refused
(dead letter) rather than guessed at. Times are RFC3339. Subscribing answers one reply per symbol;
the server sends `{"channel": "heartbeat"}` about once a second. Shapes: ../shared/FEEDS.md.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .feed import DATA, HEARTBEAT, INFO, SUBSCRIBED, ConnectionPlan, Feed, Parsed, Parser
from .generator import SEED_PRODUCTS
from .rfc3339 import TimestampError, rfc3339_ns
from .symbols import SymbolError
from .wire import Amount, DecodeError, decoder, reason


class Message(msgspec.Struct, gc=False):
    channel: str | None = None
    type: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # decoded once the channel says what it holds (empty: absent)
    method: str | None = None  # replies to requests: subscribe, unsubscribe, pong
    success: bool | None = None
    error: str | None = None
    result: dict | None = None


class Ticker(msgspec.Struct, gc=False):
    symbol: str
    last: Amount
    bid: Amount | None = None
    bid_qty: Amount | None = None
    ask: Amount | None = None
    ask_qty: Amount | None = None
    timestamp: str | None = None  # older v2 servers send none: the receive time stands in


class Trade(msgspec.Struct, gc=False):
    symbol: str
    side: Literal["buy", "sell"]
    price: Amount
    qty: Amount
    trade_id: int
    timestamp: str


class TickerMessage(msgspec.Struct, gc=False, tag_field="channel", tag="ticker"):
    data: list[Ticker]
    type: str | None = None


class TradeMessage(msgspec.Struct, gc=False, tag_field="channel", tag="trade"):
    data: list[Trade]
    type: str | None = None


# Data messages are decoded in one pass, by their channel; anything else (control messages, and
# data that does not fit) is decoded again as a Message, which says what it is or why it is refused.
_decode_data = decoder(TickerMessage | TradeMessage, numbers_as_strings=False).decode
_decode_message = decoder(Message, numbers_as_strings=False).decode
_decode_tickers = decoder(list[Ticker], numbers_as_strings=False).decode
_decode_trades = decoder(list[Trade], numbers_as_strings=False).decode
_SIDE = {"buy": 1, "sell": -1}


class KrakenParser(Parser):
    exchange = "kraken"
    tables = ("ticks", "trades")
    # Ticker times are read when the rows are taken; trade times at once, because a trade id is
    # remembered only for a trade that is kept.
    text_times = ("ticks",)

    def __init__(self, recent_trades: int = 100_000):
        super().__init__(recent_trades)
        self._ticks = self.buffers["ticks"]

    def parse(self, frame: str | bytes, recv_ns: int, source: str) -> Parsed:
        try:
            data = _decode_data(frame)
        except DecodeError:
            return self._not_data(frame, recv_ns, source)
        try:
            if type(data) is TickerMessage:
                return self._tickers(data.data, recv_ns, frame, source)
            return self._trades(data.data, recv_ns)
        except (TimestampError, SymbolError) as e:
            return self.dead_letter(frame, recv_ns, source, reason(e))

    def _not_data(self, frame: str | bytes, recv_ns: int, source: str) -> Parsed:
        try:
            msg = _decode_message(frame)
        except DecodeError as e:
            return self.dead_letter(frame, recv_ns, source, reason(e))
        channel = msg.channel
        try:
            if channel == "ticker" and msg.data:
                return self._tickers(_decode_tickers(msg.data), recv_ns, frame, source)
            if channel == "trade" and msg.data:
                return self._trades(_decode_trades(msg.data), recv_ns)
        except (DecodeError, TimestampError, SymbolError) as e:
            return self.dead_letter(frame, recv_ns, source, reason(e))
        if channel == "heartbeat":
            return (HEARTBEAT, None, None, None, None, None)
        if msg.method is not None:
            if msg.success is False:
                return self.dead_letter(frame, recv_ns, source, f"exchange error: {msg.error}")
            if msg.method == "subscribe":
                return (SUBSCRIBED, None, None, None, None, msg.result)
            return (INFO, None, None, None, None, msg.result)
        if channel == "status":
            return (INFO, None, None, None, None, None)
        return self.dead_letter(frame, recv_ns, source, f"unexpected message on channel {channel!r}")

    def _tickers(self, tickers: list[Ticker], recv_ns: int, frame: str | bytes, source: str) -> Parsed:
        rows = []
        for t in tickers:
            # The time stays text until the rows are taken (see buffers); without one, the receive
            # time stands in. Kraken numbers no ticker updates: seq 0 makes the repeat of a ticker in
            # a resubscribe snapshot (same symbol, same time) a duplicate the store drops.
            text = t.timestamp
            rows.append((self.symbol(t.symbol), recv_ns if text is None else None, recv_ns, 0, t.last, None,
                         t.bid, t.ask, t.bid_qty, t.ask_qty, text))
        buf = self._ticks
        if source != buf.source:
            buf.source_from(len(buf.rows), source)
        buf.rows += rows
        buf.origins += [frame] * len(rows)
        return (DATA, None, None, "ticks", rows[0][0] if rows else None, None)

    def _trades(self, trades: list[Trade], recv_ns: int) -> Parsed:
        parsed = [(self.symbol(t.symbol), rfc3339_ns(t.timestamp), t) for t in trades]
        out = self.buffers["trades"].rows
        for symbol, ts, t in parsed:
            trade_id = str(t.trade_id)
            if self.new_trade(symbol, trade_id):
                out.append((symbol, ts, recv_ns, trade_id, t.price, t.qty, _SIDE[t.side]))
        return (DATA, None, None, "trades", parsed[0][0] if parsed else None, None)


def kraken_symbol(product: str) -> str:
    """BTC-USD -> BTC/USD, the name Kraken v2 uses."""
    return product.replace("-", "/")


class KrakenFeed(Feed):
    name = "kraken"
    default_url = "wss://ws.kraken.com/v2"
    channels = ("ticker", "trade")
    aliases = {"trades": "trade"}

    @property
    def default_products(self) -> tuple[str, ...]:
        return SEED_PRODUCTS

    def connections(self, products, channels, url=None) -> list[ConnectionPlan]:
        symbols = [kraken_symbol(p) for p in products]
        subscribe = tuple(
            msgspec.json.encode({"method": "subscribe", "params": {"channel": c, "symbol": symbols}}).decode()
            for c in channels
        )
        return [ConnectionPlan("kraken", url or self.default_url, subscribe)]

    def parser(self, recent_trades: int = 100_000) -> KrakenParser:
        return KrakenParser(recent_trades)


FEED = KrakenFeed()
