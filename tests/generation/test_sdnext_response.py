"""Processing of txt2img answers (SPEC 6.3.4) and the outcome table (6.3.6), on bodies as SDNext sends them."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from generation.sdnext import response
from generation.sdnext.outcomes import clean, http_failure
from generation.sdnext.response import parse_txt2img


def jpeg(colour: tuple[int, int, int] = (10, 20, 30), size: tuple[int, int] = (16, 8)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def info(**overrides) -> dict:
    base = {
        "prompt": "p",
        "all_prompts": ["p", "p"],
        "negative_prompt": "",
        "all_negative_prompts": ["", ""],
        "seed": 100,
        "all_seeds": [100, 101],
        "width": 16,
        "height": 8,
        "extra_generation_params": {"LoRA networks": "detail_tweaker, pixel_art"},
        "index_of_first_image": 0,
        "infotexts": ["text 0", "text 1"],
    }
    return base | overrides


def body(images: list, info_value, **extra) -> bytes:
    return json.dumps({"images": images, "parameters": {"steps": 20}, "info": info_value, **extra}).encode()


def test_info_is_a_json_string_parsed_again():
    parsed = parse_txt2img(body([jpeg(), jpeg()], json.dumps(info())))
    assert parsed.failure is None
    assert parsed.warnings == []
    assert [(image.index, image.seed, image.infotext) for image in parsed.images] == [
        (0, 100, "text 0"),
        (1, 101, "text 1"),
    ]
    assert [(image.image.width, image.image.height) for image in parsed.images] == [(16, 8), (16, 8)]


def test_generation_info_drops_the_per_image_lists():
    parsed = parse_txt2img(body([jpeg()], json.dumps(info())))
    assert parsed.generation_info is not None
    assert "all_prompts" not in parsed.generation_info
    assert "all_negative_prompts" not in parsed.generation_info
    assert "infotexts" not in parsed.generation_info
    assert parsed.generation_info["all_seeds"] == [100, 101]
    assert parsed.generation_info["seed"] == 100


def test_an_already_decoded_info_object_is_accepted():
    parsed = parse_txt2img(body([jpeg()], info()))
    assert parsed.warnings == []
    assert parsed.images[0].seed == 100


@pytest.mark.parametrize("value", ["", "not json", "[1, 2]", None])
def test_empty_or_unparsable_info_is_a_warning(value):
    parsed = parse_txt2img(body([jpeg()], value), requested_seed=7)
    assert parsed.failure is None
    assert parsed.warnings == ["SDNext returned no generation info"]
    assert parsed.generation_info == {}
    assert parsed.images[0].seed == 7
    assert parsed.images[0].infotext == ""


def test_grid_images_before_index_of_first_image_are_skipped():
    grid, first, second = jpeg((1, 1, 1), (32, 8)), jpeg(), jpeg()
    parsed = parse_txt2img(
        body([grid, first, second], json.dumps(info(index_of_first_image=1, infotexts=["grid", "t0", "t1"])))
    )
    assert [(image.index, image.seed, image.infotext) for image in parsed.images] == [(0, 100, "t0"), (1, 101, "t1")]
    assert all(image.image.width == 16 for image in parsed.images)


@pytest.mark.parametrize(
    ("overrides", "requested", "expected"),
    [
        ({}, None, [100, 101]),
        ({"all_seeds": None}, None, [100, 101]),
        ({"all_seeds": None, "seed": None}, 42, [42, 42]),
        ({"all_seeds": None, "seed": None}, -1, [None, None]),
        ({"all_seeds": ["x", 9]}, None, [100, 9]),
    ],
    ids=["all-seeds", "seed-plus-index", "requested", "random", "bad-entry"],
)
def test_seeds(overrides, requested, expected):
    parsed = parse_txt2img(body([jpeg(), jpeg()], json.dumps(info(**overrides))), requested_seed=requested)
    assert [image.seed for image in parsed.images] == expected


def test_undecodable_images_are_dropped_with_a_warning():
    parsed = parse_txt2img(body(["@@not*base64@@", jpeg()], json.dumps(info())))
    assert parsed.failure is None
    assert parsed.warnings == ["Image 0 could not be decoded"]
    assert [(image.index, image.seed, image.infotext) for image in parsed.images] == [(1, 101, "text 1")]


def test_every_image_undecodable_is_a_failure():
    parsed = parse_txt2img(body(["@@not*base64@@", "AAAA"], json.dumps(info())))
    assert parsed.failure is not None
    assert (parsed.failure.code, parsed.failure.error) == ("invalid_images", "SDNext returned no decodable images")
    assert parsed.warnings == ["Image 0 could not be decoded", "Image 1 could not be decoded"]


def test_no_images_is_a_failure():
    parsed = parse_txt2img(body([], ""))
    assert parsed.failure is not None
    assert parsed.failure.code == "no_images"
    assert parsed.failure.error == (
        "SDNext returned no images (the model may not be loaded, or the generation was aborted)"
    )


@pytest.mark.parametrize(
    "raw",
    [b'{"images": ["/9j/4AAQSkZJRg', b"[]", b'{"images": "abc"}', b'{"info": ""}', b"\xff\xfe", b"null"],
    ids=["truncated", "list", "images-not-a-list", "no-images", "not-utf8", "null"],
)
def test_invalid_bodies(raw):
    parsed = parse_txt2img(raw)
    assert parsed.failure is not None
    assert (parsed.failure.code, parsed.failure.error) == (
        "backend_invalid_response",
        "SDNext returned an invalid response",
    )


def test_lora_missing_from_lora_networks_is_a_warning():
    loras = [("detail_tweaker", 0.6), ("unknown_style", 0.8), ("muted", 0.0), ("unknown_style", 1.0)]
    parsed = parse_txt2img(body([jpeg()], json.dumps(info())), loras=loras)
    assert parsed.failure is None
    assert parsed.warnings == ["LoRA 'unknown_style' was not loaded by SDNext"]


def test_no_lora_warnings_without_info():
    parsed = parse_txt2img(body([jpeg()], ""), loras=[("unknown_style", 1.0)])
    assert parsed.warnings == ["SDNext returned no generation info"]


def test_generation_info_is_truncated_to_256_kib(monkeypatch):
    monkeypatch.setattr(response, "INFO_LIMIT", 2000)
    parsed = parse_txt2img(body([jpeg()], json.dumps(info(huge="x" * 5000, seed=5))))
    assert parsed.generation_info is not None
    assert "huge" not in parsed.generation_info
    assert parsed.generation_info["seed"] == 5
    assert len(json.dumps(parsed.generation_info)) <= 2000


def test_nan_in_info_is_stored_as_null():
    parsed = parse_txt2img(body([jpeg()], '{"seed": 3, "cfg_end": NaN}'))
    assert parsed.generation_info == {"seed": 3, "cfg_end": None}


# --- outcome table (6.3.6) ----------------------------------------------------------------------


def envelope(code: int, detail: str, errors: str | None = None) -> bytes:
    return json.dumps(
        {"error": "HTTPException", "code": code, "detail": detail, "body": "", "errors": errors or f"{code}: {detail}"}
    ).encode()


@pytest.mark.parametrize(
    ("status", "raw", "code", "error"),
    [
        (401, envelope(401, "Unauthorized"), "backend_auth", "SDNext backend 'b1' rejected the credentials (HTTP 401)"),
        (403, b"", "backend_auth", "SDNext backend 'b1' rejected the credentials (HTTP 403)"),
        (404, envelope(404, "Sampler not found"), "backend_error", "SDNext error 404: Sampler not found"),
        (
            404,
            b'{"detail":"Not Found"}',
            "backend_error",
            "SDNext error 404: Not Found (is the URL an SDNext server?)",
        ),
        (404, b"<html>nope</html>", "backend_error", "SDNext error 404: Not Found (is the URL an SDNext server?)"),
        (
            422,
            b'{"detail":[{"type":"int_parsing","loc":["body","steps"],"msg":"Input should be a valid integer"}]}',
            "backend_rejected",
            "SDNext rejected the request (HTTP 422): body.steps: Input should be a valid integer",
        ),
        (
            422,
            envelope(422, "Unknown script: foo"),
            "backend_rejected",
            "SDNext rejected the request (HTTP 422): Unknown script: foo",
        ),
        (
            429,
            envelope(429, "1.2.3.4:/x: rate limit exceeded"),
            "backend_rate_limited",
            "SDNext rate limit exceeded (HTTP 429)",
        ),
        (
            500,
            b'{"error":"RuntimeError","code":500,"detail":"","body":"","errors":"CUDA out of memory"}',
            "backend_error",
            "SDNext error 500: CUDA out of memory",
        ),
        (500, envelope(500, "Invalid encoded image"), "backend_error", "SDNext error 500: Invalid encoded image"),
        (500, b"Internal Server Error", "backend_error", "SDNext error 500"),
        (502, b"Bad gateway", "backend_error", "SDNext error 502"),
        (308, b"", "backend_error", "SDNext error 308"),
    ],
)
def test_http_outcomes(status, raw, code, error):
    failure = http_failure("b1", status, raw)
    assert failure is not None
    assert (failure.code, failure.error) == (code, error)


def test_2xx_is_not_a_failure():
    assert http_failure("b1", 200, b"{}") is None


def test_auth_failures_mark_the_backend_unhealthy():
    failure = http_failure("b1", 401, b"")
    assert failure is not None
    assert failure.unhealthy == "HTTP 401"
    rate_limited = http_failure("b1", 429, b"")
    assert rate_limited is not None
    assert rate_limited.unhealthy is None


def test_sdnext_texts_are_cleaned_and_truncated():
    raw = json.dumps(
        {"error": "RuntimeError", "code": 500, "detail": "", "errors": "bad\x00\x1b[31m\nthing" + "y" * 400}
    )
    failure = http_failure("b1", 500, raw.encode())
    assert failure is not None
    text = failure.error.removeprefix("SDNext error 500: ")
    assert text.startswith("bad[31m thing")
    assert len(text) == 300
    assert clean("a\tb\r\nc\x7f") == "a b c"
