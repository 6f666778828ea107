"""A small raster canvas written as PNG with zlib: enough for a report's line charts.

Charts in the HTML report are SVG; a PNG copy is for places that show only images (chat,
tickets, slides). A plotting library would bring megabytes of dependencies for two line charts,
so this draws lines, rectangles and a 5x7 bitmap font into a numpy array and encodes it itself.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

# 5x7 glyphs: 7 rows of 5 pixels per character ('#' = ink), upper case only.
_FONT = {
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.", "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####", "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.", "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.", "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.", "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ".": "..... ..... ..... ..... ..... .##.. .##..", ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....", "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##", ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....", "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...", "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
    " ": "..... ..... ..... ..... ..... ..... .....", "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.", "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..", "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....", "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#", "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..", "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####", "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#", "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....", "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#", "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..", "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#", "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
}
GLYPH_W, GLYPH_H = 5, 7


def _glyph(ch: str) -> np.ndarray:
    rows = _FONT.get(ch.upper(), _FONT[" "]).split()
    return np.array([[c == "#" for c in row] for row in rows], bool)


class Canvas:
    """An RGB image; coordinates are (x, y) pixels from the top left."""

    def __init__(self, width: int, height: int, background=(255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = np.empty((height, width, 3), np.uint8)
        self.pixels[:] = background

    def rect(self, x0: int, y0: int, x1: int, y1: int, color) -> None:
        """Fill the rectangle [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x1 > x0 and y1 > y0:
            self.pixels[y0:y1, x0:x1] = color

    def line(self, x0: float, y0: float, x1: float, y1: float, color, width: int = 1) -> None:
        """A straight segment, `width` pixels thick, by sampling it once per pixel of its length."""
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        xs = np.rint(np.linspace(x0, x1, steps + 1)).astype(int)
        ys = np.rint(np.linspace(y0, y1, steps + 1)).astype(int)
        lo, hi = -((width - 1) // 2), width // 2 + 1
        for dx in range(lo, hi):
            for dy in range(lo, hi):
                x, y = xs + dx, ys + dy
                keep = (x >= 0) & (x < self.width) & (y >= 0) & (y < self.height)
                self.pixels[y[keep], x[keep]] = color

    def polyline(self, xs, ys, color, width: int = 1) -> None:
        for i in range(len(xs) - 1):
            self.line(xs[i], ys[i], xs[i + 1], ys[i + 1], color, width)

    def fill_between(self, xs, ys, y_base: float, color) -> None:
        """Shade each column between the polyline (linearly interpolated) and y_base."""
        if len(xs) < 2:
            return
        cols = np.arange(max(0, int(np.ceil(min(xs)))), min(self.width, int(np.floor(max(xs))) + 1))
        tops = np.interp(cols, xs, ys)
        for x, top in zip(cols, tops):
            a, b = sorted((int(round(top)), int(round(y_base))))
            self.pixels[max(a, 0):min(b + 1, self.height), x] = color

    def text(self, x: int, y: int, text: str, color=(40, 40, 40), scale: int = 1) -> None:
        """Upper-case bitmap text with its top-left corner at (x, y)."""
        for i, ch in enumerate(text):
            glyph = np.kron(_glyph(ch), np.ones((scale, scale), bool))
            gx = x + i * (GLYPH_W + 1) * scale
            h, w = glyph.shape
            if gx >= self.width or gx + w <= 0 or y >= self.height or y + h <= 0:
                continue
            sub = self.pixels[max(y, 0):y + h, max(gx, 0):gx + w]
            mask = glyph[max(0, -y):max(0, -y) + sub.shape[0], max(0, -gx):max(0, -gx) + sub.shape[1]]
            sub[mask] = color

    @staticmethod
    def text_width(text: str, scale: int = 1) -> int:
        return len(text) * (GLYPH_W + 1) * scale - scale

    def to_png(self) -> bytes:
        """PNG bytes: 8-bit RGB, every row with filter type 0, one zlib stream."""
        raw = np.concatenate([np.zeros((self.height, 1), np.uint8),
                              self.pixels.reshape(self.height, -1)], axis=1).tobytes()
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + \
            _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
