"""A seeded synthetic crypto market: ticks and trades that look real, made fast and bit for bit
repeatable.

The model, per symbol:
- a latent log mid-price: a random walk whose volatility is itself random (a mean-reverting
  log-volatility), with Poisson jumps, and a hidden Markov regime (calm or turbulent) that raises
  volatility, jump intensity and the message rate;
- irregular arrivals: exponential gaps whose rate is the symbol's activity times the regime's;
- a venue on top: a quote on the tick grid whose spread widens with volatility, lognormal
  book sizes that thin out when volatility rises, trades on a fraction of the updates that hit the
  ask (buy) or the bid (sell) with persistent order flow, and a lognormal receive latency.

Every random stream is a numpy PCG64 seeded from (seed, a CRC32 of the symbol name[, of the
exchange]) and consumes a fixed number of draws per row from its own child stream, so a symbol's
rows depend only on (seed, symbol, its tick count, start), not on the other symbols nor on how the
output is cut into chunks. The sequential parts run in numba kernels compiled on first use.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from .conform import to_timestamp_ns
from .schema import TICKS, TRADES, TS
from .symbols import normalize_symbol

log = logging.getLogger("cryptodb")

YEAR_SECONDS = 365.0 * 86_400.0  # crypto trades around the clock


@dataclass(frozen=True)
class SymbolProfile:
    """What makes one instrument look like itself."""

    price: float  # typical level, quote currency
    tick_decimals: int  # the quote increment is 10**-tick_decimals
    size_decimals: int  # the base increment is 10**-size_decimals
    activity: float  # relative message rate (BTC = 30); also splits `ticks` across symbols
    vol: float  # annualised volatility in the calm regime
    spread_bps: float  # typical spread at calm volatility, basis points of the mid


@dataclass(frozen=True)
class VenueProfile:
    """How one exchange sees the common price (generate_exchanges only)."""

    lag_ms: float  # the venue's quotes follow the common price this late
    activity: float  # relative share of a symbol's messages
    spread_mult: float  # spread relative to the symbol's typical spread
    noise_bps: float  # size of the venue's own transient mispricing


# Levels and increments in the style of Coinbase's USD books; activity ranks like their message rates.
_PRODUCTS: dict[str, SymbolProfile] = {
    "BTC-USD": SymbolProfile(90_000.0, 2, 8, 30.0, 0.40, 0.005),
    "ETH-USD": SymbolProfile(3_000.0, 2, 8, 20.0, 0.55, 0.03),
    "DOGE-USD": SymbolProfile(0.10, 5, 1, 6.0, 0.80, 1.0),
    "XRP-USD": SymbolProfile(0.50, 4, 6, 6.0, 0.70, 1.5),
    "LTC-USD": SymbolProfile(80.0, 2, 8, 3.0, 0.65, 1.5),
    "BCH-USD": SymbolProfile(400.0, 2, 8, 2.0, 0.70, 2.0),
    "ADA-USD": SymbolProfile(0.45, 4, 2, 3.0, 0.75, 2.5),
    "SOL-USD": SymbolProfile(150.0, 2, 8, 8.0, 0.75, 0.8),
    "DOT-USD": SymbolProfile(6.0, 3, 8, 1.5, 0.75, 2.0),
    "LINK-USD": SymbolProfile(15.0, 3, 2, 2.5, 0.75, 1.5),
    "XLM-USD": SymbolProfile(0.12, 6, 0, 1.2, 0.70, 3.0),
    "UNI-USD": SymbolProfile(8.0, 3, 6, 1.2, 0.80, 3.0),
    "ALGO-USD": SymbolProfile(0.18, 4, 0, 0.8, 0.80, 3.0),
    "MATIC-USD": SymbolProfile(0.50, 4, 1, 0.8, 0.80, 3.0),
}
SEED_PRODUCTS: tuple[str, ...] = tuple(_PRODUCTS)

_VENUES: dict[str, VenueProfile] = {
    "coinbase": VenueProfile(lag_ms=15.0, activity=1.0, spread_mult=1.0, noise_bps=0.15),
    "binance": VenueProfile(lag_ms=8.0, activity=1.6, spread_mult=0.6, noise_bps=0.1),
    "kraken": VenueProfile(lag_ms=40.0, activity=0.5, spread_mult=1.8, noise_bps=0.3),
}

# -- the latent market --------------------------------------------------------------------------
RATE_PER_ACTIVITY = 0.4  # calm messages per second per unit of activity: BTC ~12/s
TURBULENT_RATE_MULT = 2.5
TURBULENT_VOL_MULT = 2.5
CALM_MEAN_SECONDS = 3 * 3600.0  # how long a calm spell lasts on average
TURBULENT_MEAN_SECONDS = 40 * 60.0
LOGVOL_HALF_LIFE_SECONDS = 30 * 60.0
LOGVOL_SD = 0.35  # stationary spread of log-volatility around its regime's level
JUMPS_PER_HOUR = (1.0, 6.0)  # calm, turbulent
JUMP_SD = (0.002, 0.006)  # log-price jump size, calm and turbulent
# A jump is a sweep through the book, not one print: it is spread over a few updates, and it
# shakes the market (volatility steps up, then decays with the log-volatility's half-life).
SWEEP_MEAN_EXTRA_UPDATES = 3.0  # on top of the two a sweep always takes
JUMP_VOL_KICK = 0.4
START_LEVEL_SD = 0.05  # each seed starts a symbol a few percent away from its typical level

# -- the venue ----------------------------------------------------------------------------------
TRADE_PROBABILITY = (0.40, 0.55)  # share of updates that carry a new trade, calm and turbulent
SIDE_PERSISTENCE = 0.6  # order flow is autocorrelated: chance a trade keeps the last side
SPREAD_NOISE_SD = 0.5
TRADE_NOTIONAL_USD_PER_SQRT_ACTIVITY = 40.0  # median trade ~ $220 on BTC
TRADE_NOTIONAL_SD = 1.3
TRADE_SIZE_VOL_ELASTICITY = 0.3  # trades get bigger when the market moves
DEPTH_USD_PER_ACTIVITY = 2_000.0  # median top-of-book depth ~ $60k on BTC
DEPTH_SD = 0.8
DEPTH_VOL_ELASTICITY = 0.5  # books thin out when the market moves
DEPTH_PERSISTENCE = 0.9  # per update
LATENCY_MEDIAN_NS = 2e6
LATENCY_SD = 0.8
LATENCY_BOUNDS_NS = (1e5, 5e7)
VENUE_NOISE_SECONDS = 10.0  # a venue's mispricing decays on this time scale
VENUE_BASIS_SD_BPS = 0.5
MARKET_VOL = 0.50  # annual volatility of the common crypto factor every symbol loads on
IDIOSYNCRATIC_SHARE = 0.6  # a symbol's own volatility, as a share of its profile's total
MARKET_GRID_SECONDS = 1.0  # the factor is a random walk on this grid, interpolated between points
MARKET_BLOCK_POINTS = 3600  # grid points drawn per block; block b depends only on (seed, b)
_MARKET_TAG = 0x6D6B74  # separates the factor's random streams from every symbol's
TRADE_ID_BASE = 1_000_000_000  # ids stay ten digits for 8e9 trades or more: they sort as text too

_LATENT_NORMALS, _LATENT_UNIFORMS, _VENUE_NORMALS, _VENUE_UNIFORMS = 3, 3, 5, 3


def stable_hash(name: str) -> int:
    """A hash that is the same in every process (Python's hash() of a str is salted)."""
    return zlib.crc32(name.encode("utf-8"))


def symbol_profile(symbol: str) -> SymbolProfile:
    """The profile of a known product, else a plausible one derived from the name alone."""
    known = _PRODUCTS.get(symbol)
    if known is not None:
        return known
    h = stable_hash(symbol)
    price = float(f"{10 ** (-2 + 4.7 * (h & 0xFFFF) / 0xFFFF):.4g}")  # $0.01 .. $500, log-uniform
    magnitude = math.floor(math.log10(price))
    return SymbolProfile(
        price=price,
        tick_decimals=min(8, max(2, 4 - magnitude)),  # ~1 bp ticks, like the listed alts
        size_decimals=min(8, max(0, magnitude + 4)),
        activity=0.3 + 0.5 * ((h >> 16) & 0xFF) / 0xFF,  # the long tail: quieter than MATIC
        vol=0.8 + 0.4 * ((h >> 24) & 0xFF) / 0xFF,
        spread_bps=4.0,
    )


def venue_profile(exchange: str) -> VenueProfile:
    known = _VENUES.get(exchange)
    if known is not None:
        return known
    h = stable_hash(exchange)
    return VenueProfile(lag_ms=10.0 + 50.0 * (h & 0xFF) / 0xFF, activity=0.3 + ((h >> 8) & 0xFF) / 0xFF,
                        spread_mult=0.5 + 1.5 * ((h >> 16) & 0xFF) / 0xFF,
                        noise_bps=0.1 + 0.3 * ((h >> 24) & 0xFF) / 0xFF)


def resolve_symbols(spec: int | str | Iterable[str]) -> list[str]:
    """14 or "14" -> the first 14 SEED_PRODUCTS (more: SYM15-USD, ...); "btc/usd,ETH-USD" or a
    list -> those names normalised, duplicates dropped. Unknown names are allowed."""
    if isinstance(spec, bool):
        raise TypeError("symbols: expected a count or symbol names, got a bool")
    if isinstance(spec, (int, np.integer)):
        return _first_products(int(spec))
    if isinstance(spec, str):
        if spec.strip().isdigit():
            return _first_products(int(spec.strip()))
        names = spec.split(",")
    else:
        names = list(spec)
    out = list(dict.fromkeys(normalize_symbol(n) for n in names if str(n).strip()))
    if not out:
        raise ValueError(f"symbols: no symbol names in {spec!r}")
    return out


def _first_products(n: int) -> list[str]:
    if n < 1:
        raise ValueError(f"symbols: need at least 1, got {n}")
    return list(SEED_PRODUCTS[:n]) + [f"SYM{k}-USD" for k in range(len(SEED_PRODUCTS) + 1, n + 1)]


def split_exactly(total: int, weights: list[float]) -> list[int]:
    """`total` in proportion to `weights`, summing exactly to `total` (largest remainders), and at
    least 1 each when there is enough to go round."""
    floor_each = 1 if total >= len(weights) else 0
    rest = total - floor_each * len(weights)
    w = np.asarray(weights, dtype=np.float64)
    quotas = rest * w / w.sum()
    counts = np.floor(quotas).astype(np.int64)
    short = rest - int(counts.sum())
    # Ties go to the earlier (busier) name, so the split is the same on every platform.
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:short]] += 1
    return [int(c) + floor_each for c in counts]


# -- numba kernels: plain Python here, compiled on first use so importing stays light -------------

def _latent_kernel(arrival, z, u, p, state_f, state_i, out_t, out_logp, out_h, out_regime):
    """Advance the latent market by len(arrival) events; state carries over between calls."""
    rate0, rate1, kappa, mu0, mu1, xi = p[0], p[1], p[2], p[3], p[4], p[5]
    switch0, switch1, jumps0, jumps1, jump_sd0, jump_sd1 = p[6], p[7], p[8], p[9], p[10], p[11]
    logp, h, sweep_rest = state_f[0], state_f[1], state_f[2]
    t, regime, sweep_left = state_i[0], state_i[1], state_i[2]
    for i in range(arrival.shape[0]):
        turbulent = regime == 1
        gap = int(arrival[i] / (rate1 if turbulent else rate0) * 1e9 + 0.5)
        if gap < 1:
            gap = 1  # timestamps must strictly increase
        t += gap
        dt = gap * 1e-9
        if u[i, 0] < -math.expm1(-(switch1 if turbulent else switch0) * dt):
            regime = 1 - regime
            turbulent = regime == 1
        mu = mu1 if turbulent else mu0
        # Exact Ornstein-Uhlenbeck step, so irregular gaps keep the stationary law.
        decay = math.exp(-kappa * dt)
        h = mu + (h - mu) * decay + xi * math.sqrt(-math.expm1(-2.0 * kappa * dt) / (2.0 * kappa)) * z[i, 0]
        logp += math.exp(h) * math.sqrt(dt) * z[i, 1]
        if u[i, 1] < -math.expm1(-(jumps1 if turbulent else jumps0) * dt):
            sweep_rest += (jump_sd1 if turbulent else jump_sd0) * z[i, 2]
            sweep_left = max(sweep_left, 2 + int(-math.log(1.0 - u[i, 2]) * SWEEP_MEAN_EXTRA_UPDATES))
            h += JUMP_VOL_KICK
        if sweep_left > 0:
            step = sweep_rest / sweep_left
            logp += step
            sweep_rest -= step
            sweep_left -= 1
        out_t[i] = t
        out_logp[i] = logp
        out_h[i] = h
        out_regime[i] = regime
    state_f[0], state_f[1], state_f[2] = logp, h, sweep_rest
    state_i[0], state_i[1], state_i[2] = t, regime, sweep_left


def _venue_kernel(ts, logmid, h, regime, z, u, p, state_f, state_i,
                  out_bid, out_ask, out_price, out_size, out_bid_size, out_ask_size, out_recv, out_side):
    """Quotes, trades and receive times for one venue's updates at times `ts`."""
    scale, size_scale, spread_rel, h_ref = p[0], p[1], p[2], p[3]
    trade_p0, trade_p1, basis, noise_sd, noise_seconds = p[4], p[5], p[6], p[7], p[8]
    depth_bid, depth_ask, noise = state_f[0], state_f[1], state_f[2]
    rows, side, last_ts, last_price, last_units = state_i[0], state_i[1], state_i[2], state_i[3], state_i[4]
    depth_shock = math.sqrt(1.0 - DEPTH_PERSISTENCE * DEPTH_PERSISTENCE)
    depth_usd_log, notional_usd_log = math.log(p[9]), math.log(p[10])
    lat_log = math.log(LATENCY_MEDIAN_NS)
    for i in range(ts.shape[0]):
        if noise_sd > 0.0:
            if rows == 0:
                noise = noise_sd * z[i, 5]
            else:
                keep = math.exp(-(ts[i] - last_ts) * 1e-9 / noise_seconds)
                noise = keep * noise + noise_sd * math.sqrt(1.0 - keep * keep) * z[i, 5]
        mid = math.exp(logmid[i] + basis + noise)
        excess_vol = h[i] - h_ref
        width = spread_rel * math.exp(excess_vol + SPREAD_NOISE_SD * z[i, 0]) * mid * scale
        spread = 1 + int(math.floor(width))  # at least one tick: bid < ask always
        bid = int(math.floor(mid * scale - 0.5 * spread + 0.5))
        if bid < 1:
            bid = 1
        ask = bid + spread
        depth_bid = DEPTH_PERSISTENCE * depth_bid + depth_shock * z[i, 1]
        depth_ask = DEPTH_PERSISTENCE * depth_ask + depth_shock * z[i, 2]
        depth_log = depth_usd_log - DEPTH_VOL_ELASTICITY * excess_vol
        bid_units = math.floor(math.exp(depth_log + DEPTH_SD * depth_bid) / mid * size_scale + 0.5)
        ask_units = math.floor(math.exp(depth_log + DEPTH_SD * depth_ask) / mid * size_scale + 0.5)
        out_bid_size[i] = max(bid_units, 1.0) / size_scale
        out_ask_size[i] = max(ask_units, 1.0) / size_scale
        if rows == 0 or u[i, 0] < (trade_p1 if regime[i] == 1 else trade_p0):
            if rows == 0 or u[i, 1] >= SIDE_PERSISTENCE:
                side = 1 if u[i, 2] < 0.5 else -1
            price = ask if side == 1 else bid
            notional = math.exp(notional_usd_log + TRADE_SIZE_VOL_ELASTICITY * excess_vol
                                + TRADE_NOTIONAL_SD * z[i, 3])
            units = max(int(math.floor(notional / (price / scale) * size_scale + 0.5)), 1)
            if price == last_price and units == last_units:
                units += 1  # a new trade must show in the ticks as a change of (price, size)
            last_price, last_units = price, units
            out_side[i] = side
        else:
            out_side[i] = 0
        out_bid[i] = bid / scale
        out_ask[i] = ask / scale
        out_price[i] = last_price / scale
        out_size[i] = last_units / size_scale
        latency = math.exp(lat_log + LATENCY_SD * z[i, 4])
        latency = min(max(latency, LATENCY_BOUNDS_NS[0]), LATENCY_BOUNDS_NS[1])
        out_recv[i] = ts[i] + int(latency)
        last_ts = ts[i]
        rows += 1
    state_f[0], state_f[1], state_f[2] = depth_bid, depth_ask, noise
    state_i[0], state_i[1], state_i[2], state_i[3], state_i[4] = rows, side, last_ts, last_price, last_units


def _decimal_strings_kernel(first, count, offsets, data):
    """The decimal text of first, first+1, ... into an Arrow string column's buffers."""
    pos = 0
    offsets[0] = 0
    for k in range(count):
        v = first + k
        digits = 1
        x = v
        while x >= 10:
            x //= 10
            digits += 1
        for j in range(digits):
            data[pos + digits - 1 - j] = 48 + v % 10
            v //= 10
        pos += digits
        offsets[k + 1] = pos
    return pos


_COMPILED: dict[str, object] = {}


def _kernel(name: str):
    fn = _COMPILED.get(name)
    if fn is None:
        import numba  # lazily: importing cryptodb must not pull in numba

        fn = numba.njit(cache=True, nogil=True)(globals()[name])
        _COMPILED[name] = fn
    return fn


# -- streams ------------------------------------------------------------------------------------

def _generators(seed_sequence: np.random.SeedSequence, count: int) -> list[np.random.Generator]:
    return [np.random.Generator(np.random.PCG64(s)) for s in seed_sequence.spawn(count)]


@dataclass
class _Path:
    t: np.ndarray  # ns since start, int64
    logp: np.ndarray
    h: np.ndarray  # log volatility per sqrt(second)
    regime: np.ndarray  # int8: 0 calm, 1 turbulent

    FIELDS = ("t", "logp", "h", "regime")


class _MarketFactor:
    """The common factor of crypto returns, M(t): a Gaussian random walk on a one-second grid,
    linear between grid points. It depends only on the seed (and t), so every symbol of a run
    sees the same factor whichever symbols are generated, and each symbol's rows still depend
    only on (seed, symbol, its tick count, start)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.step_sd = MARKET_VOL * math.sqrt(MARKET_GRID_SECONDS / YEAR_SECONDS)
        self._levels = np.zeros(1)  # M at grid points 0..len-1; M(0) = 0

    def _extend(self, points: int) -> None:
        while len(self._levels) < points:
            block = (len(self._levels) - 1) // MARKET_BLOCK_POINTS
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, _MARKET_TAG, block]))
            steps = rng.standard_normal(MARKET_BLOCK_POINTS) * self.step_sd
            self._levels = np.concatenate([self._levels, self._levels[-1] + np.cumsum(steps)])

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        grid = t_ns / (MARKET_GRID_SECONDS * 1e9)
        self._extend(int(grid.max(initial=0)) + 2)
        return np.interp(grid, np.arange(len(self._levels)), self._levels)


def _beta(symbol: str) -> float:
    """Loading on the market factor: BTC 1, the others 0.9-1.4 (alts move more than bitcoin)."""
    return 1.0 if symbol == "BTC-USD" else 0.9 + 0.5 * (stable_hash(symbol + ":beta") & 0xFFFF) / 0xFFFF


class _LatentMarket:
    """One symbol's common price process, advanced chunk by chunk."""

    def __init__(self, symbol: str, profile: SymbolProfile, seed: int):
        arrival, normals, uniforms, initial = _generators(np.random.SeedSequence([seed, stable_hash(symbol)]), 4)
        self._arrival, self._normals, self._uniforms = arrival, normals, uniforms
        kappa = math.log(2.0) / LOGVOL_HALF_LIFE_SECONDS
        mu_calm = math.log(profile.vol * IDIOSYNCRATIC_SHARE / math.sqrt(YEAR_SECONDS))
        self.factor = _MarketFactor(seed)
        self.beta = _beta(symbol)
        rate = RATE_PER_ACTIVITY * profile.activity
        self.params = np.array([
            rate, rate * TURBULENT_RATE_MULT, kappa, mu_calm, mu_calm + math.log(TURBULENT_VOL_MULT),
            LOGVOL_SD * math.sqrt(2.0 * kappa), 1.0 / CALM_MEAN_SECONDS, 1.0 / TURBULENT_MEAN_SECONDS,
            JUMPS_PER_HOUR[0] / 3600.0, JUMPS_PER_HOUR[1] / 3600.0, JUMP_SD[0], JUMP_SD[1],
        ])
        z0 = initial.standard_normal(2)
        self.h_calm = mu_calm
        self.start = _Path(np.zeros(1, np.int64), np.array([math.log(profile.price) + START_LEVEL_SD * z0[0]]),
                           np.array([mu_calm + LOGVOL_SD * z0[1]]), np.zeros(1, np.int8))
        self._state_f = np.array([self.start.logp[0], self.start.h[0], 0.0])
        self._state_i = np.zeros(3, np.int64)

    def advance(self, rows: int) -> _Path:
        arrival = self._arrival.standard_exponential(rows)
        z = self._normals.standard_normal((rows, _LATENT_NORMALS))
        u = self._uniforms.random((rows, _LATENT_UNIFORMS))
        path = _Path(np.empty(rows, np.int64), np.empty(rows), np.empty(rows), np.empty(rows, np.int8))
        _kernel("_latent_kernel")(arrival, z, u, self.params, self._state_f, self._state_i,
                                  path.t, path.logp, path.h, path.regime)
        path.logp += self.beta * self.factor.at(path.t)  # the state keeps the symbol's own part
        return path


class _Venue:
    """One (exchange, symbol) book: turns observed prices into ticks and trades tables."""

    def __init__(self, exchange: str, symbol: str, profile: SymbolProfile, h_calm: float,
                 generators: list[np.random.Generator], start_ns: int, spread_mult: float = 1.0,
                 noise_bps: float = 0.0, basis_bps: float = 0.0):
        self.exchange, self.symbol, self.start_ns = exchange, symbol, start_ns
        self._normals, self._uniforms = generators
        self._normal_count = _VENUE_NORMALS + (1 if noise_bps > 0 else 0)
        self.params = np.array([
            10.0 ** profile.tick_decimals, 10.0 ** profile.size_decimals,
            profile.spread_bps * 1e-4 * spread_mult, h_calm, TRADE_PROBABILITY[0], TRADE_PROBABILITY[1],
            basis_bps * 1e-4, noise_bps * 1e-4, VENUE_NOISE_SECONDS,
            DEPTH_USD_PER_ACTIVITY * profile.activity,
            TRADE_NOTIONAL_USD_PER_SQRT_ACTIVITY * math.sqrt(profile.activity),
        ])
        self._state_f = np.zeros(3)
        self._state_i = np.zeros(5, np.int64)
        self._trades = 0
        trade_id_offset = stable_hash(f"{exchange}:{symbol}") % TRADE_ID_BASE
        self._first_trade_id = TRADE_ID_BASE + trade_id_offset
        self._exchange_text = exchange.encode("utf-8")
        self._symbol_text = symbol.encode("utf-8")

    def tables(self, t: np.ndarray, logmid: np.ndarray, h: np.ndarray, regime: np.ndarray
               ) -> Iterator[tuple[str, pa.Table]]:
        n = len(t)
        ts = t + self.start_ns
        z = self._normals.standard_normal((n, self._normal_count))
        u = self._uniforms.random((n, _VENUE_UNIFORMS))
        bid, ask, price, size, bid_size, ask_size = (np.empty(n) for _ in range(6))
        recv = np.empty(n, np.int64)
        side = np.empty(n, np.int8)
        seq = np.arange(self._state_i[0] + 1, self._state_i[0] + 1 + n, dtype=np.int64)
        _kernel("_venue_kernel")(ts, logmid, h, regime, z, u, self.params, self._state_f, self._state_i,
                                 bid, ask, price, size, bid_size, ask_size, recv, side)
        exchange = _constant_strings(self._exchange_text, n)
        symbol = _constant_strings(self._symbol_text, n)
        ts_arr, recv_arr = _timestamps(ts), _timestamps(recv)
        yield "ticks", pa.Table.from_arrays(
            [exchange, symbol, ts_arr, recv_arr, pa.array(seq), pa.array(price), pa.array(size),
             pa.array(bid), pa.array(ask), pa.array(bid_size), pa.array(ask_size)],
            schema=TICKS.arrow_schema)
        traded = np.flatnonzero(side)
        k = len(traded)
        if k == 0:
            return
        trade_ids = _decimal_strings(self._first_trade_id + self._trades, k)
        self._trades += k
        yield "trades", pa.Table.from_arrays(
            [exchange.slice(0, k), symbol.slice(0, k), _timestamps(ts[traded]), _timestamps(recv[traded]),
             trade_ids, pa.array(price[traded]), pa.array(size[traded]), pa.array(side[traded])],
            schema=TRADES.arrow_schema)


def _timestamps(ns: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(TS, len(ns), [None, pa.py_buffer(np.ascontiguousarray(ns, np.int64))])


def _constant_strings(text: bytes, n: int) -> pa.Array:
    offsets = np.arange(n + 1, dtype=np.int64) * len(text)
    if offsets[-1] >= 2**31:
        raise ValueError("chunk_rows too large for one Arrow string column; use fewer rows per chunk")
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                  pa.py_buffer(text * n)])


def _decimal_strings(first: int, count: int) -> pa.Array:
    width = len(str(first + count - 1))
    offsets = np.empty(count + 1, np.int32)
    data = np.empty(count * width, np.uint8)
    used = _kernel("_decimal_strings_kernel")(first, count, offsets, data)
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data[:used])])


# -- public entry points ------------------------------------------------------------------------

def _start_ns(start) -> int:
    if isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        return int(start)  # already epoch nanoseconds
    return int(to_timestamp_ns(pa.array([start])).cast(pa.int64())[0].as_py())


def _check_sizes(ticks: int, chunk_rows: int) -> None:
    if int(ticks) != ticks or ticks < 0:
        raise ValueError(f"ticks must be a whole number >= 0, got {ticks!r}")
    if int(chunk_rows) != chunk_rows or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a whole number >= 1, got {chunk_rows!r}")


def generate(symbols: int | str | list[str] = 14, ticks: int = 1_000_000, seed: int = 0,
             start="2026-01-01T00:00:00Z", exchange: str = "coinbase", chunk_rows: int = 1_000_000
             ) -> Iterator[tuple[str, pa.Table]]:
    """Yield ("ticks", table) and ("trades", table) chunks in the exact TICKS / TRADES schemas.

    `ticks` is the total number of tick rows over all symbols, split by activity (BTC and ETH
    busiest). Each symbol's chunks come in time order, at most `chunk_rows` rows each; its rows
    depend only on (seed, symbol, its tick count, start), bit for bit.
    """
    names = resolve_symbols(symbols)
    _check_sizes(ticks, chunk_rows)
    start_ns = _start_ns(start)
    exchange = exchange.strip().lower()
    if not exchange:
        raise ValueError("exchange: need a non-empty name")
    counts = split_exactly(int(ticks), [symbol_profile(s).activity for s in names])
    return _generate(names, counts, int(seed), start_ns, exchange, int(chunk_rows))


def _generate(names, counts, seed, start_ns, exchange, chunk_rows):
    for symbol, n in zip(names, counts):
        if n == 0:
            continue
        profile = symbol_profile(symbol)
        market = _LatentMarket(symbol, profile, seed)
        venue_streams = _generators(np.random.SeedSequence([seed, stable_hash(symbol), 1]), 2)
        venue = _Venue(exchange, symbol, profile, market.h_calm, venue_streams, start_ns)
        done = 0
        while done < n:
            rows = min(chunk_rows, n - done)
            path = market.advance(rows)
            yield from venue.tables(path.t, path.logp, path.h, path.regime)
            done += rows
        log.debug("generated %d ticks for %s", n, symbol)


def generate_exchanges(symbols: int | str | list[str] = 14, ticks: int = 1_000_000, seed: int = 0,
                       start="2026-01-01T00:00:00Z", exchanges=("coinbase", "binance", "kraken"),
                       chunk_rows: int = 1_000_000) -> Iterator[tuple[str, pa.Table]]:
    """One latent price path per symbol seen on several exchanges, for lead-lag and arbitrage work.

    The path is the one `generate` draws for the symbol's whole tick count; `ticks` is split over
    symbols, then over exchanges by activity. Each exchange samples it at its own random times
    (denser where the market is busy), `lag_ms` late, with its own spread, basis and transient
    mispricing. Chunks are as in `generate`, with the exchange column set.
    """
    names = resolve_symbols(symbols)
    _check_sizes(ticks, chunk_rows)
    start_ns = _start_ns(start)
    venues = list(dict.fromkeys(e.strip().lower() for e in exchanges))
    if not venues or not all(venues):
        raise ValueError(f"exchanges: need at least one non-empty name, got {exchanges!r}")
    counts = split_exactly(int(ticks), [symbol_profile(s).activity for s in names])
    return _generate_exchanges(names, counts, venues, int(seed), start_ns, int(chunk_rows))


class _VenueClock:
    """When one venue updates: n times drawn uniformly over the latent events' positions, so a
    venue is busy when the market is.

    Sorted uniforms are normalised running sums of exponential gaps. Their total needs one pass
    ahead over the same stream; then they can be drawn a block at a time, and the result does
    not depend on the block size.
    """

    def __init__(self, seed_sequence: np.random.SeedSequence, n: int, latent_events: int, block: int):
        self._seed_sequence, self._block = seed_sequence, block
        total = 0.0
        for sums in self._running_sums(n + 1):
            total = sums[-1]
        self._scale = (latent_events - 1) / total  # positions run over [0, latent_events - 1]
        self._latent_events = latent_events
        self._blocks = self._running_sums(n)
        self._pending = np.empty(0)
        self._last_ns = 0  # times are ns after start, strictly increasing

    def _running_sums(self, count: int) -> Iterator[np.ndarray]:
        rng = np.random.Generator(np.random.PCG64(self._seed_sequence))
        carry, drawn = 0.0, 0
        while drawn < count:
            gaps = rng.standard_exponential(min(self._block, count - drawn))
            gaps[0] += carry  # one left-to-right sum across blocks
            sums = np.cumsum(gaps)
            carry, drawn = sums[-1], drawn + len(gaps)
            yield sums

    def take_below(self, limit: float, final: bool) -> np.ndarray:
        """Positions (in latent events) below `limit`, or all that remain when `final`."""
        while final or not len(self._pending) or self._pending[-1] < limit:
            sums = next(self._blocks, None)
            if sums is None:
                break
            self._pending = np.concatenate([self._pending, sums * self._scale])
        cut = len(self._pending) if final else int(np.searchsorted(self._pending, limit, "left"))
        taken, self._pending = self._pending[:cut], self._pending[cut:]
        return taken

    def times(self, positions: np.ndarray, window: _Path, window_first: int) -> np.ndarray:
        """Positions -> ns after start, between the latent events around them (which `window`,
        starting at latent index `window_first`, must hold)."""
        index = np.minimum(np.floor(positions).astype(np.int64), self._latent_events - 1)
        after = np.minimum(index + 1, self._latent_events - 1)
        t0 = window.t[index - window_first].astype(np.float64)
        t1 = window.t[after - window_first].astype(np.float64)
        t = np.rint(t0 + (positions - index) * (t1 - t0)).astype(np.int64)
        # Strictly increasing <=> t - i never decreasing: one running maximum enforces it.
        steps = np.arange(len(t), dtype=np.int64)
        shifted = t - steps
        shifted[0] = max(shifted[0], self._last_ns + 1)
        t = np.maximum.accumulate(shifted) + steps
        self._last_ns = int(t[-1])
        return t


def _generate_exchanges(names, counts, venues, seed, start_ns, chunk_rows):
    for symbol, n in zip(names, counts):
        if n == 0:
            continue
        profile = symbol_profile(symbol)
        market = _LatentMarket(symbol, profile, seed)
        feeds = []
        for exchange, n_venue in zip(venues, split_exactly(n, [venue_profile(e).activity for e in venues])):
            if n_venue == 0:
                continue
            vp = venue_profile(exchange)
            venue_seed = np.random.SeedSequence([seed, stable_hash(symbol), stable_hash(exchange)])
            arrivals_ss, basis_ss, quote_ss = venue_seed.spawn(3)
            basis_bps = VENUE_BASIS_SD_BPS * float(np.random.Generator(np.random.PCG64(basis_ss)).standard_normal())
            venue = _Venue(exchange, symbol, profile, market.h_calm, _generators(quote_ss, 2), start_ns,
                           vp.spread_mult, vp.noise_bps, basis_bps)
            feeds.append((venue, _VenueClock(arrivals_ss, n_venue, n, chunk_rows), int(vp.lag_ms * 1e6)))
        longest_lag = max(lag for _, _, lag in feeds)
        # The latent events the venues may still need: the last one at least `longest_lag` before
        # the newest, and everything after. The state at `start` stands at latent index -1.
        carry, carry_first = market.start, -1
        done = 0
        while done < n:
            rows = min(chunk_rows, n - done)
            path = market.advance(rows)
            window = _Path(*(np.concatenate([getattr(carry, f), getattr(path, f)]) for f in _Path.FIELDS))
            window_first = carry_first
            done += rows
            for venue, clock, lag_ns in feeds:
                # Positions below done - 1 fall between two events this window holds.
                positions = clock.take_below(done - 1, final=done == n)
                for lo in range(0, len(positions), chunk_rows):
                    t = clock.times(positions[lo:lo + chunk_rows], window, window_first)
                    seen = np.maximum(np.searchsorted(window.t, t - lag_ns, "right") - 1, 0)
                    yield from venue.tables(t, window.logp[seen], window.h[seen], window.regime[seen])
            keep = max(int(np.searchsorted(window.t, window.t[-1] - longest_lag, "right")) - 1, 0)
            carry = _Path(*(getattr(window, f)[keep:] for f in _Path.FIELDS))
            carry_first = window_first + keep
        log.debug("generated %d ticks for %s on %s", n, symbol, ", ".join(venues))
