"""The web form's test kit: a real image to attach, and the form's anti-forgery token read from the page."""

from __future__ import annotations

import re
import struct
import zlib
from html import unescape


def png_bytes() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG = png_bytes()


def token_of(html: str) -> str:
    return unescape(re.search(r'name="_token" value="([^"]+)"', html).group(1))
