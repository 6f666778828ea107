"""Instrument names normalised to BASE-QUOTE (BTC-USD), whatever the venue calls them."""

from __future__ import annotations

import re

# Tried in this order: stablecoins before USD so that BTCUSDT is BTC-USDT; no TUSD, which would
# split DOTUSD as DO-TUSD and XBTUSD as XB-TUSD.
QUOTE_ASSETS = ["USDT", "USDC", "BUSD", "FDUSD", "USD", "DAI", "EUR", "GBP", "JPY", "AUD", "CAD",
                "CHF", "TRY", "BRL", "BTC", "ETH", "BNB"]
# Venue-specific asset codes with a common name.
ASSET_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
_VALID = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")


class SymbolError(ValueError):
    pass


def _asset(code: str) -> str:
    return ASSET_ALIASES.get(code, code)


def normalize_symbol(raw: str) -> str:
    """'BTC/USD', 'btc-usd', 'BTCUSDT', 'XBT/USD', 'btc_usd' -> 'BTC-USD' / 'BTC-USDT'."""
    s = raw.strip().upper()
    for sep in ("/", "_", ":"):
        s = s.replace(sep, "-")
    if "-" in s:
        base, _, quote = s.partition("-")
        s = f"{_asset(base)}-{quote}" if quote else base
    else:
        for quote in QUOTE_ASSETS:
            if s.endswith(quote) and len(s) > len(quote):
                s = f"{_asset(s[: -len(quote)])}-{quote}"
                break
    if not _VALID.match(s):
        raise SymbolError(f"symbol {raw!r} cannot be normalised to BASE-QUOTE (letters and digits only)")
    return s
