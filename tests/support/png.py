"""Read a PNG's pixels with the standard library (zlib), so screenshot tests can check what a page drew."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Bytes per pixel of the 8-bit colour types Chromium writes: RGB and RGBA.
_CHANNELS = {2: 3, 6: 4}


@dataclass(frozen=True, slots=True)
class Image:
    """An 8-bit RGB(A) image: `rows[y]` holds width * channels bytes."""

    width: int
    height: int
    channels: int
    rows: tuple[bytes, ...]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        start = x * self.channels
        r, g, b = self.rows[y][start : start + 3]
        return r, g, b

    def count(self, color: tuple[int, int, int], box: tuple[int, int, int, int] | None = None, tolerance: int = 12) -> int:
        """How many pixels in `box` (left, top, right, bottom; default all) are within `tolerance` of `color`."""
        left, top, right, bottom = box or (0, 0, self.width, self.height)
        found = 0
        for y in range(max(0, top), min(self.height, bottom)):
            row = self.rows[y]
            for x in range(max(0, left), min(self.width, right)):
                i = x * self.channels
                if all(abs(row[i + c] - color[c]) <= tolerance for c in range(3)):
                    found += 1
        return found

    def colors(self, box: tuple[int, int, int, int] | None = None) -> int:
        """The number of distinct RGB colours in `box`: a blank area has one."""
        left, top, right, bottom = box or (0, 0, self.width, self.height)
        seen: set[bytes] = set()
        for y in range(max(0, top), min(self.height, bottom)):
            row = self.rows[y]
            for x in range(max(0, left), min(self.width, right)):
                seen.add(row[x * self.channels : x * self.channels + 3])
        return len(seen)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data: bytes) -> Image:
    """The pixels of a non-interlaced 8-bit RGB or RGBA PNG; ValueError for anything else."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or color not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}")
    bpp = _CHANNELS[color]
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                upper_left = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, up, upper_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, bpp, tuple(rows))
