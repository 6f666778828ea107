"""Decoding exchange frames: declared message shapes, numbers parsed once, in C, with msgspec.

Each exchange module declares its messages as msgspec Structs holding only the fields cryptodb
keeps; msgspec skips the rest without building them, checks types, and with `strict=False` reads
decimal strings ("30123.45") straight into floats, rounding exactly as float() does. A frame that
does not fit its declaration raises, and the parser turns that into a dead letter with msgspec's
message, which names the offending field (`$.events[0].tickers[0].price`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec

# Prices and quantities: finite and not negative (NaN and infinity are refused, not stored).
Amount = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
# Rates (funding) may be negative, never NaN or infinite.
Rate = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]

DecodeError = msgspec.DecodeError  # malformed JSON, and (a subclass) ValidationError
ValidationError = msgspec.ValidationError

MS = 1_000_000  # nanoseconds per millisecond


def decoder(shape, numbers_as_strings: bool) -> msgspec.json.Decoder:
    """A decoder of `shape`; numbers_as_strings=True accepts "1.5" for a float (Coinbase, Binance),
    False accepts only JSON numbers (Kraken)."""
    return msgspec.json.Decoder(shape, strict=not numbers_as_strings)


def reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return f"unexpected message: {error}"
    if isinstance(error, DecodeError):
        return f"malformed JSON: {error}"
    return f"unexpected message: {error}"
