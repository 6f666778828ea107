"""Binance spot (bookTicker, trade) and USD-M futures (markPrice, for funding) combined streams.

Streams are chosen in the URL (`/stream?streams=btcusdt@bookTicker/btcusdt@trade`), so nothing is
sent after connecting and a reconnect re-subscribes by itself. Each message arrives wrapped as
`{"stream": name, "data": payload}`; numbers are decimal strings, times epoch milliseconds.
Spot bookTicker has no event time: its rows take the receive time as ts. Shapes: ../shared/FEEDS.md.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .feed import DATA, INFO, ConnectionPlan, Feed, Parsed, Parser
from .generator import SEED_PRODUCTS
from .symbols import SymbolError
from .wire import MS, Amount, DecodeError, Rate, decoder, reason


class Wrapped(msgspec.Struct, gc=False):
    stream: str
    data: msgspec.Raw  # decoded once the stream name says what it is


class Reply(msgspec.Struct, gc=False):
    """Anything that is not a stream message: a request's result or an error."""

    id: int | str | None = None
    result: object = None
    code: int | None = None
    msg: str | None = None


class BookTicker(msgspec.Struct, gc=False):
    update_id: int = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid: Amount = msgspec.field(name="b")
    bid_qty: Amount = msgspec.field(name="B")
    ask: Amount = msgspec.field(name="a")
    ask_qty: Amount = msgspec.field(name="A")
    event_ms: int | None = msgspec.field(name="E", default=None)  # futures send one, spot does not


class Trade(msgspec.Struct, gc=False):
    event: Literal["trade"] = msgspec.field(name="e")
    symbol: str = msgspec.field(name="s")
    trade_id: int = msgspec.field(name="t")
    price: Amount = msgspec.field(name="p")
    qty: Amount = msgspec.field(name="q")
    trade_ms: int = msgspec.field(name="T")
    buyer_is_maker: bool = msgspec.field(name="m")  # the maker bought, so the aggressor sold


class MarkPrice(msgspec.Struct, gc=False):
    event: Literal["markPriceUpdate"] = msgspec.field(name="e")
    event_ms: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    mark: Amount = msgspec.field(name="p")
    index: Amount | None = msgspec.field(name="i", default=None)
    # Delivery contracts send "" for the rate and 0 for the time: no funding, not an error.
    funding_rate: Rate | Literal[""] | None = msgspec.field(name="r", default=None)
    next_funding_ms: int | None = msgspec.field(name="T", default=None)


_decode_wrapped = decoder(Wrapped, numbers_as_strings=True).decode
_decode_reply = decoder(Reply, numbers_as_strings=True).decode
_PAYLOADS = {
    "bookTicker": (decoder(BookTicker, numbers_as_strings=True).decode, "ticks"),
    "trade": (decoder(Trade, numbers_as_strings=True).decode, "trades"),
    "markPrice": (decoder(MarkPrice, numbers_as_strings=True).decode, "funding"),
}


class BinanceParser(Parser):
    exchange = "binance"
    tables = ("ticks", "trades", "funding")

    def parse(self, frame: str | bytes, recv_ns: int, source: str) -> Parsed:
        try:
            wrapped = _decode_wrapped(frame)
        except DecodeError as e:
            return self._not_a_stream_message(frame, recv_ns, source, e)
        name, _, kind = wrapped.stream.partition("@")
        kind = kind.partition("@")[0]  # btcusdt@markPrice@1s -> markPrice
        payload = _PAYLOADS.get(kind)
        if payload is None:
            return self.dead_letter(frame, recv_ns, source, f"unexpected stream {wrapped.stream!r}",
                                    self.safe_symbol(name))
        decode, table = payload
        try:
            data = decode(wrapped.data)
            symbol = self.symbol(data.symbol)
        except (DecodeError, SymbolError) as e:
            return self.dead_letter(frame, recv_ns, source, reason(e), self.safe_symbol(name))
        if table == "ticks":
            ts = data.event_ms * MS if data.event_ms is not None else recv_ns
            self.buffers["ticks"].rows.append((symbol, ts, recv_ns, data.update_id, None, None,
                                               data.bid, data.ask, data.bid_qty, data.ask_qty))
        elif table == "trades":
            trade_id = str(data.trade_id)
            if self.new_trade(symbol, trade_id):
                self.buffers["trades"].rows.append((symbol, data.trade_ms * MS, recv_ns, trade_id, data.price,
                                                    data.qty, -1 if data.buyer_is_maker else 1))
        else:
            rate = data.funding_rate if data.funding_rate != "" else None
            next_ts = data.next_funding_ms * MS if data.next_funding_ms else None
            self.buffers["funding"].rows.append((symbol, data.event_ms * MS, recv_ns, data.mark, data.index,
                                                 rate, None, next_ts, None))
        return (DATA, None, None, table, symbol, None)

    def _not_a_stream_message(self, frame, recv_ns: int, source: str, error: Exception) -> Parsed:
        if not isinstance(error, msgspec.ValidationError):
            return self.dead_letter(frame, recv_ns, source, reason(error))
        try:
            reply = _decode_reply(frame)
        except DecodeError:
            return self.dead_letter(frame, recv_ns, source, reason(error))
        if reply.code is not None:
            return self.dead_letter(frame, recv_ns, source, f"exchange error {reply.code}: {reply.msg}")
        if reply.id is not None:
            return (INFO, None, None, None, None, reply.result)
        return self.dead_letter(frame, recv_ns, source, reason(error))


def stream_symbol(product: str) -> str:
    """BTC-USDT -> btcusdt, the name Binance's stream paths use."""
    return product.replace("-", "").lower()


class BinanceFeed(Feed):
    name = "binance"
    default_url = "wss://stream.binance.com:9443"
    futures_url = "wss://fstream.binance.com"
    channels = ("bookTicker", "trade", "markPrice")
    aliases = {"ticker": "bookTicker", "trades": "trade", "funding": "markPrice"}
    _SPOT = ("bookTicker", "trade")

    @property
    def default_products(self) -> tuple[str, ...]:
        return tuple(p.split("-")[0] + "-USDT" for p in SEED_PRODUCTS)

    def connections(self, products, channels, url=None) -> list[ConnectionPlan]:
        """Spot streams on one connection, futures streams (markPrice) on another; `url` replaces both hosts."""
        plans = []
        spot = [f"{stream_symbol(p)}@{c}" for c in channels if c in self._SPOT for p in products]
        if spot:
            plans.append(ConnectionPlan("binance-spot", f"{url or self.default_url}/stream?streams={'/'.join(spot)}"))
        if "markPrice" in channels:
            futures = [f"{stream_symbol(p)}@markPrice@1s" for p in products]
            plans.append(ConnectionPlan("binance-futures",
                                        f"{url or self.futures_url}/stream?streams={'/'.join(futures)}"))
        return plans

    def parser(self, recent_trades: int = 100_000) -> BinanceParser:
        return BinanceParser(recent_trades)


FEED = BinanceFeed()
