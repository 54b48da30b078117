"""Image decoding of txt2img answers (SPEC 6.3.4 step 4): strict base64, magic bytes, header sizes.

Pillow only makes the test images; the production code reads the headers itself."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from generation.sdnext import images
from generation.sdnext.images import decode_base64, decode_image, identify


def encoded(fmt: str, size: tuple[int, int], mode: str = "RGB", **options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 40, 128)[: len(mode)]).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(
    ("fmt", "mode", "options", "content_type", "extension"),
    [
        ("PNG", "RGB", {}, "image/png", "png"),
        ("JPEG", "RGB", {}, "image/jpeg", "jpg"),
        ("JPEG", "RGB", {"progressive": True}, "image/jpeg", "jpg"),
        ("WEBP", "RGB", {"quality": 80}, "image/webp", "webp"),
        ("WEBP", "RGB", {"lossless": True}, "image/webp", "webp"),
        ("WEBP", "RGBA", {"quality": 80}, "image/webp", "webp"),
    ],
    ids=["png", "jpeg", "jpeg-progressive", "webp-lossy", "webp-lossless", "webp-alpha"],
)
def test_format_and_size_come_from_the_header(fmt, mode, options, content_type, extension):
    data = encoded(fmt, (96, 40), mode, **options)
    image = decode_image(b64(data))
    assert image is not None
    assert (image.content_type, image.extension) == (content_type, extension)
    assert (image.width, image.height) == (96, 40)
    assert image.data == data
    assert image.size_bytes == len(data)


def test_jpeg_with_exif_before_the_frame_header():
    exif = Image.Exif()
    exif[0x010E] = "x" * 3000  # a large APP1 segment precedes SOF0
    data = encoded("JPEG", (33, 17), exif=exif.tobytes())
    image = identify(data)
    assert image is not None
    assert (image.width, image.height) == (33, 17)


def test_data_uri_prefix_is_removed():
    data = encoded("PNG", (8, 8))
    image = decode_image("data:image/png;base64," + b64(data))
    assert image is not None
    assert image.data == data


@pytest.mark.parametrize(
    "text",
    ["@@not*base64@@", "aGVsbG8", "aGVs\nbG8=", "", "data:image/png," + "aGVsbG8=", None, 123],
    ids=["garbage", "bad-padding", "line-break", "empty", "data-uri-without-base64", "null", "number"],
)
def test_invalid_base64_is_rejected(text):
    assert decode_base64(text) is None
    assert decode_image(text) is None


def test_unknown_format_is_not_an_image():
    assert decode_image(b64(b"GIF89a" + b"\x00" * 32)) is None


def test_known_magic_with_a_truncated_header_keeps_the_image_without_a_size():
    image = identify(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert image is not None
    assert (image.content_type, image.width, image.height) == ("image/png", None, None)


def test_images_over_the_decoded_limit_are_rejected(monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 10)
    assert decode_base64(b64(b"0123456789")) == b"0123456789"
    assert decode_base64(b64(b"0123456789a")) is None


def test_oversized_text_is_rejected_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_ENCODED_CHARS", 8)
    assert decode_base64(b64(b"012345")) == b"012345"
    assert decode_base64(b64(b"0123456")) is None
