"""What a collector needs to know about an exchange, declared once per exchange, and their registry.

An exchange is one `Feed` (which connections to open, what to send on them, channel names and
defaults) and one `Parser` (frames in, rows out). Parsers are pure: no sockets, no clocks; the
connection loop (`collector`) hands them each frame with its receive time and reads back a
`Parsed` saying what the frame was. The built-in exchanges register exactly as a user's own would:

    register_feed(MyExchangeFeed())
    collect("myexchange", sink)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pyarrow as pa

from .buffers import TableBuffer
from .dedupe import RecentKeys
from .schema import DEAD_LETTERS, TABLES, UNKNOWN_SYMBOL
from .symbols import SymbolError, normalize_symbol

# What a frame was (the first item of a Parsed).
DATA = "data"  # rows were buffered
HEARTBEAT = "heartbeat"  # keep-alive; Parsed.counter holds its counter when the exchange numbers them
SUBSCRIBED = "subscribed"  # the server confirmed a subscription (Parsed.detail says what)
INFO = "info"  # other control traffic worth nothing to the tables (status, acknowledgements)
DEAD = "dead"  # malformed or unexpected: written to dead_letters (Parsed.detail is the reason)


# What a frame was, as a plain tuple (building a NamedTuple costs several times more, per frame):
#   (kind, seq, counter, table, key, detail)
# seq      the connection's sequence number, where the exchange sends one
# counter  the heartbeat counter, where the exchange numbers heartbeats
# table    DATA: the table the rows went to (raw envelopes are filed under it); DEAD: the table the
#          message was meant for, when that could be read
# key      DATA: the symbol a raw envelope is keyed by
# detail   SUBSCRIBED: what the server confirmed; DEAD: the reason
Parsed = tuple


@dataclass(frozen=True)
class ConnectionPlan:
    """One WebSocket connection: where to, and what to send once connected (again after a reconnect)."""

    name: str
    url: str
    subscribe: tuple[str, ...] = ()  # one message per channel
    resnapshot: tuple[str, ...] = ()  # messages that make the server send a fresh book snapshot
    sequenced: bool = False  # every message carries a sequence number that goes up by one


class Parser:
    """Frames of one exchange -> rows in per-table buffers, plus dead letters. Subclasses implement `parse`."""

    exchange = ""
    tables: tuple[str, ...] = ()
    # Tables whose rows may carry their event time as RFC3339 text, read at take() (see buffers).
    text_times: tuple[str, ...] = ()

    def __init__(self, recent_trades: int = 100_000):
        self.buffers = {name: TableBuffer(TABLES[name], self.exchange, name in self.text_times)
                        for name in self.tables}
        self.dead_letters = self.buffers[DEAD_LETTERS.name] = TableBuffer(DEAD_LETTERS, self.exchange)
        # (source, frame, reason) of the messages the last take() found unreadable and dead-lettered.
        self.rejected_on_take: list[tuple[str, str | bytes, str]] = []
        self.trade_ids = RecentKeys(recent_trades)
        self.duplicates = 0  # trades dropped as repeats
        self.dead = 0  # dead letters written
        self._symbols: dict[str, str] = {}

    def parse(self, frame: str | bytes, recv_ns: int, source: str) -> Parsed:
        raise NotImplementedError

    # -- helpers for subclasses ------------------------------------------------------------
    def symbol(self, name: str) -> str:
        """The exchange's instrument name normalised to BASE-QUOTE, remembered (names repeat)."""
        try:
            return self._symbols[name]
        except KeyError:
            symbol = self._symbols[name] = normalize_symbol(name)
            return symbol

    def new_trade(self, symbol: str, trade_id: str) -> bool:
        if self.trade_ids.add((symbol, trade_id)):
            return True
        self.duplicates += 1
        return False

    def dead_letter(self, frame: str | bytes, recv_ns: int, source: str, reason: str,
                    symbol: str = UNKNOWN_SYMBOL) -> Parsed:
        payload = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
        self.dead_letters.rows.append((symbol, recv_ns, recv_ns, source, reason, payload))
        self.dead += 1
        return (DEAD, None, None, None, None, reason)

    def safe_symbol(self, name) -> str:
        try:
            return self.symbol(name) if isinstance(name, str) else UNKNOWN_SYMBOL
        except SymbolError:
            return UNKNOWN_SYMBOL

    # -- for the connection loop -----------------------------------------------------------
    def buffered(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def take(self) -> dict[str, pa.Table]:
        """Every buffered row, per table; the buffers empty. A message found unreadable only now (its
        time, see buffers) is left out of its table and written to dead_letters, like one refused by
        parse(), and listed in `rejected_on_take` until the next take."""
        out = {}
        self.rejected_on_take = []
        for name, buf in self.buffers.items():
            if buf is self.dead_letters:
                continue
            table = buf.take()
            for frame, source, recv_ns, why in buf.rejected:
                reason = f"unexpected message: {why}"
                self.dead_letter(frame, recv_ns, source, reason)
                self.rejected_on_take.append((source, frame, reason))
            if table is not None and table.num_rows:
                out[name] = table
        dead = self.dead_letters.take()
        if dead is not None:
            out[DEAD_LETTERS.name] = dead
        return out


class Feed:
    """An exchange as the collector sees it. Subclasses fill in the class attributes and `connections`."""

    name = ""
    default_url = ""
    default_channels: tuple[str, ...] = ("ticker",)
    # Every channel the collector supports, by the exchange's own name, and friendlier names for
    # them, so that `--channels ticker,trades` means the same on every exchange.
    channels: tuple[str, ...] = ()
    aliases: dict[str, str] = {}

    @property
    def default_products(self) -> tuple[str, ...]:
        raise NotImplementedError

    def resolve_channels(self, names) -> list[str]:
        out = []
        for name in names or self.default_channels:
            channel = self.aliases.get(name, name)
            if channel not in self.channels:
                known = ", ".join([*self.channels, *self.aliases])
                raise ValueError(f"{self.name} has no channel {name!r}: one of {known}")
            if channel not in out:
                out.append(channel)
        return out

    def resolve_products(self, products) -> list[str]:
        """Products as BASE-QUOTE, in the given order, duplicates dropped."""
        out = []
        for p in products or self.default_products:
            symbol = normalize_symbol(p)
            if symbol not in out:
                out.append(symbol)
        return out

    def connections(self, products: list[str], channels: list[str], url: str | None = None) -> list[ConnectionPlan]:
        raise NotImplementedError

    def parser(self) -> Parser:
        raise NotImplementedError


# name -> Feed, or the module that defines the built-in Feed of that name (imported on first use).
_FEEDS: dict[str, Feed | str] = {
    "coinbase": ".coinbase",
    "binance": ".binance",
    "kraken": ".kraken",
}


def register_feed(feed: Feed) -> None:
    _FEEDS[feed.name] = feed


def feed_names() -> list[str]:
    return list(_FEEDS)


def get_feed(name: str) -> Feed:
    try:
        feed = _FEEDS[name]
    except KeyError:
        raise ValueError(f"no collector for exchange {name!r}: one of {', '.join(_FEEDS)}") from None
    if isinstance(feed, str):
        feed = _FEEDS[name] = importlib.import_module(feed, __package__).FEED
    return feed
