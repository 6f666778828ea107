"""A one-line progress bar on stderr for long imports and generation (only on a terminal)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Callable as `progress(done, total)`; redraws at most ten times a second."""

    def __init__(self, label: str, unit: str = "", stream=None, enabled: bool | None = None):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last_draw < 0.1 and done < total):
            return
        self._last_draw = now
        frac = min(1.0, done / total) if total else 1.0
        bar = "█" * int(frac * 30) + "░" * (30 - int(frac * 30))
        rate = done / max(now - self.started, 1e-9)
        self.stream.write(f"\r{self.label} {bar} {frac:6.1%} {_human(done)}/{_human(total)}{self.unit}"
                          f" ({_human(rate)}{self.unit}/s) ")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"
