"""Images of a txt2img answer (SPEC 6.3.4 step 4): strict base64 with an optional ``data:`` prefix, at most
64 MiB decoded, format from magic bytes, width/height from the PNG IHDR, JPEG SOF or WEBP VP8/VP8L/VP8X
header. No imaging library: only the headers are read."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

MAX_DECODED_BYTES = 64 * 1024 * 1024
MAX_ENCODED_CHARS = 4 * -(-MAX_DECODED_BYTES // 3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
JPEG_START_OF_SCAN = 0xDA

Size = tuple[int, int] | None


@dataclass(frozen=True)
class ImageData:
    data: bytes
    content_type: str
    extension: str
    width: int | None
    height: int | None

    @property
    def size_bytes(self) -> int:
        return len(self.data)


def decode_base64(text: object) -> bytes | None:
    """Strict base64 (an optional ``data:…;base64,`` prefix removed); None when invalid or over 64 MiB."""
    if not isinstance(text, str):
        return None
    if text.startswith("data:"):
        head, separator, text = text.partition(",")
        if not separator or not head.lower().endswith(";base64"):
            return None
    if not text or len(text) > MAX_ENCODED_CHARS:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if len(data) <= MAX_DECODED_BYTES else None


def _png_size(data: bytes) -> Size:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> Size:
    position, end = 2, len(data)
    while position + 1 < end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        position += 2
        if marker in JPEG_STANDALONE:
            continue
        if marker == JPEG_START_OF_SCAN or position + 2 > end:
            return None
        if marker in JPEG_SOF:
            if position + 7 > end:
                return None
            height = int.from_bytes(data[position + 3 : position + 5], "big")
            width = int.from_bytes(data[position + 5 : position + 7], "big")
            return width, height
        position += int.from_bytes(data[position : position + 2], "big")
    return None


def _webp_size(data: bytes) -> Size:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _is_webp(data: bytes) -> bool:
    return len(data) >= 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def identify(data: bytes) -> ImageData | None:
    """The format (magic bytes) and size (header) of encoded image bytes; None for an unknown format."""
    if data.startswith(PNG_SIGNATURE):
        content_type, extension, size = "image/png", "png", _png_size(data)
    elif data.startswith(JPEG_SIGNATURE):
        content_type, extension, size = "image/jpeg", "jpg", _jpeg_size(data)
    elif _is_webp(data):
        content_type, extension, size = "image/webp", "webp", _webp_size(data)
    else:
        return None
    width, height = size if size is not None else (None, None)
    return ImageData(data=data, content_type=content_type, extension=extension, width=width, height=height)


def decode_image(text: object) -> ImageData | None:
    """One entry of ``images``: decoded and identified, or None (the caller warns and drops it)."""
    data = decode_base64(text)
    return identify(data) if data is not None else None
