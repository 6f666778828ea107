"""Fake exchanges for the collector tests: real `websockets` servers on 127.0.0.1, port 0.

Each server speaks one exchange's message shapes exactly as ../shared/FEEDS.md describes them,
and plays scripted scenarios: the n-th connection runs the n-th scenario (an async function given
a connection object with helpers: send a ticker, drop the connection, stall, ...). The server
records every message the client sent, so tests can check subscriptions and re-subscriptions.

The server runs in its own thread with its own event loop, so the collector under test can run
in the test's loop or in a child process (the CLI).
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


class ScriptedConnection:
    """One accepted client connection, as a scenario sees it."""

    def __init__(self, server: "ExchangeServer", ws, number: int):
        self.server = server
        self.ws = ws
        self.number = number
        self.received: list[dict | str] = []  # what the client sent, decoded when it was JSON
        self._incoming: asyncio.Queue = asyncio.Queue()

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def send_json(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def next_request(self, timeout: float = 5.0) -> dict | str:
        """The next message the client sent (subscribe, unsubscribe ...)."""
        return await asyncio.wait_for(self._incoming.get(), timeout)

    async def sync(self) -> None:
        """Wait until the client has read everything sent so far: its pong comes after those frames."""
        pong = await self.ws.ping()
        await asyncio.wait_for(pong, 5.0)

    async def drop(self) -> None:
        """Cut the TCP connection without a close handshake, as a failing server or network does."""
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()

    async def stay_silent(self, seconds: float = 30.0) -> None:
        """Keep the connection open and send nothing: a stall. Ends early if the client goes away."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), seconds)
        except asyncio.TimeoutError:
            pass

    def finish(self) -> None:
        """Tell the test the scenario has played out."""
        self.server.done.set()

    async def _read_client(self) -> None:
        try:
            async for text in self.ws:
                try:
                    message = json.loads(text)
                except ValueError:
                    message = text
                self.received.append(message)
                self.server.requests.append((self.number, message))
                await self._incoming.put(message)
        except ConnectionClosed:
            pass


class ExchangeServer:
    """Runs `scenarios[n]` for the n-th connection (per route); after the last, connections idle."""

    connection_class = ScriptedConnection

    def __init__(self, scenarios):
        self.scenarios = scenarios if isinstance(scenarios, dict) else {"main": list(scenarios)}
        self.connections: dict[str, list] = {route: [] for route in self.scenarios}
        self.requests: list[tuple[int, object]] = []
        self.paths: list[str] = []
        self.done = threading.Event()
        self.port: int | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def route(self, ws) -> str:
        return "main"

    def __enter__(self) -> ExchangeServer:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake exchange did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()
            server.close(close_connections=False)
            for conns in self.connections.values():
                for c in conns:
                    c.ws.transport.abort()

    async def _handle(self, ws) -> None:
        self.paths.append(ws.request.path)
        route = self.route(ws)
        conns = self.connections.setdefault(route, [])
        conn = self.connection_class(self, ws, len(conns))
        conns.append(conn)
        reader = asyncio.create_task(conn._read_client())
        scripts = self.scenarios.get(route, [])
        try:
            await self.greet(conn)
            if conn.number < len(scripts):
                await scripts[conn.number](conn)
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def greet(self, conn) -> None:
        """What the exchange sends by itself on connecting."""


# -- Coinbase Advanced Trade -------------------------------------------------------------------------
def rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class CoinbaseConnection(ScriptedConnection):
    """Envelopes with a per-connection sequence_num (+1 per message), as Coinbase sends them."""

    def __init__(self, *a):
        super().__init__(*a)
        self.sequence_num = 0
        self.subscriptions: dict[str, list[str]] = {}

    async def envelope(self, channel: str, events: list, timestamp: str, skip: int = 0) -> int:
        """Send one message; `skip` leaves out that many sequence numbers first (a gap). Returns its number."""
        self.sequence_num += skip
        seq = self.sequence_num
        await self.send_json({"channel": channel, "client_id": "", "timestamp": timestamp, "sequence_num": seq,
                              "events": events})
        self.sequence_num += 1
        return seq

    async def accept_subscriptions(self, count: int, timestamp: str = "2026-01-02T00:00:00.000000001Z") -> list[dict]:
        """Read `count` subscribe/unsubscribe requests, answering each on channel `subscriptions`."""
        got = []
        for _ in range(count):
            req = await self.next_request()
            got.append(req)
            channel = req["channel"]
            products = req.get("product_ids", [])
            if req["type"] == "subscribe":
                self.subscriptions[channel] = sorted(set(self.subscriptions.get(channel, [])) | set(products))
            else:
                self.subscriptions.pop(channel, None)
            await self.envelope("subscriptions", [{"subscriptions": dict(self.subscriptions)}], timestamp)
        return got

    async def ticker(self, timestamp: str, tickers: list[dict], type: str = "update", skip: int = 0) -> int:
        return await self.envelope("ticker", [{"type": type, "tickers": tickers}], timestamp, skip)

    async def trades(self, timestamp: str, trades: list[dict], type: str = "update", skip: int = 0) -> int:
        return await self.envelope("market_trades", [{"type": type, "trades": trades}], timestamp, skip)

    async def level2(self, timestamp: str, product: str, updates: list[dict], type: str = "update",
                     skip: int = 0) -> int:
        return await self.envelope("l2_data", [{"type": type, "product_id": product, "updates": updates}],
                                   timestamp, skip)

    async def heartbeat(self, counter: int, timestamp: str = "2026-01-02T00:00:00.000000001Z") -> int:
        return await self.envelope("heartbeats", [{
            "current_time": "2026-01-02 00:00:00.000000001 +0000 UTC m=+91717.525857105",
            "heartbeat_counter": counter}], timestamp)


class CoinbaseServer(ExchangeServer):
    connection_class = CoinbaseConnection


def coinbase_ticker(product: str, price: str, bid: str, ask: str, bid_qty: str, ask_qty: str,
                    with_52w: bool = True, **extra) -> dict:
    t = {"type": "ticker", "product_id": product, "price": price, "volume_24_h": "16038.28770938",
         "low_24_h": "21835.29", "high_24_h": "23011.18", "price_percent_chg_24_h": "-4.15775596190603",
         "best_bid": bid, "best_bid_quantity": bid_qty, "best_ask": ask, "best_ask_quantity": ask_qty}
    if with_52w:
        t["low_52_w"], t["high_52_w"] = "15460", "48240"
    t.update(extra)
    return t


def coinbase_trade(trade_id: str, product: str, price: str, size: str, side: str, time: str) -> dict:
    return {"trade_id": trade_id, "product_id": product, "price": price, "size": size, "side": side, "time": time}


# -- Binance -----------------------------------------------------------------------------------------
class BinanceConnection(ScriptedConnection):
    @property
    def streams(self) -> list[str]:
        query = parse_qs(urlparse(self.ws.request.path).query)
        return query.get("streams", [""])[0].split("/")

    async def stream(self, name: str, data: dict) -> None:
        await self.send_json({"stream": name, "data": data})


class BinanceServer(ExchangeServer):
    """Combined streams: the spot host serves bookTicker and trade, the futures host markPrice; one
    server plays both, routing by the streams asked for."""

    connection_class = BinanceConnection

    def route(self, ws) -> str:
        return "futures" if "@markPrice" in ws.request.path else "spot"


# -- Kraken v2 ---------------------------------------------------------------------------------------
class KrakenConnection(ScriptedConnection):
    async def accept_subscriptions(self, count: int) -> list[dict]:
        """Read `count` subscribe requests; answer one reply per symbol, as Kraken does."""
        got = []
        for _ in range(count):
            req = await self.next_request()
            got.append(req)
            params = req["params"]
            for symbol in params["symbol"]:
                await self.send_json({"method": "subscribe", "result": {"channel": params["channel"], "symbol": symbol,
                                                                        "snapshot": True},
                                      "success": True, "time_in": "2026-01-02T00:00:00.000001Z",
                                      "time_out": "2026-01-02T00:00:00.000002Z"})
        return got

    async def channel(self, channel: str, type: str, data: list[dict]) -> None:
        await self.send_json({"channel": channel, "type": type, "data": data})

    async def heartbeat(self) -> None:
        await self.send_json({"channel": "heartbeat"})


class KrakenServer(ExchangeServer):
    connection_class = KrakenConnection

    async def greet(self, conn) -> None:
        await conn.send_json({"channel": "status", "type": "update", "data": [{
            "version": "2.0.0", "system": "online", "api_version": "v2", "connection_id": 1234567890}]})
