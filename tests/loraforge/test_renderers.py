"""``UTF8JSONRenderer`` writes what DRF's JSON renderer writes, through orjson."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from loraforge.renderers import UTF8JSONRenderer

PAYLOADS = [
    {"items": [{"name": "Ink", "weight": 0.85, "tags": ["ink", "sketch"], "active": True, "ordinal": None}]},
    {"unicode": "Café 水彩 🎨", "escapes": 'quote " backslash \\ tab \t newline \n', "control": "\x01"},
    {"separators": "line\u2028paragraph\u2029end"},
    {"aware": datetime(2026, 12, 6, 18, 30, 1, 123456, tzinfo=UTC), "whole": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
    {
        "naive": datetime(2026, 1, 2, 3, 4, 5),
        "offset": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5))),
    },
    {"date": date(2026, 12, 6), "time": time(18, 30, 1, 250000), "delta": timedelta(seconds=90)},
    {"decimal": Decimal("1.50"), "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"), "lazy": gettext_lazy("Hi")},
    {"floats": [0.1, 1e21, -0.0, 3.0, 0.0001, 1.2345678901234568e20], "ints": [0, -1, 2**63 - 1]},
    [1, "two", [3, {"four": 4}]],
    "a plain string",
    {"big": 2**70, "nested": {"x": [2**64]}},  # beyond 64 bits: DRF's path
    {1: "int key", "b": 2},  # a non-string key: DRF's path
]


@pytest.mark.parametrize("data", PAYLOADS)
def test_the_bytes_are_drfs(data):
    assert UTF8JSONRenderer().render(data) == JSONRenderer().render(data)


def test_small_exponents_are_written_differently_and_read_the_same():
    # orjson writes 1e-7 and 0.000025 where Python writes 1e-07 and 2.5e-05: the same numbers to any JSON reader.
    data = {"tiny": [1e-7, 2.5e-5, 1e-5, -3.25e-12]}
    ours, drfs = UTF8JSONRenderer().render(data), JSONRenderer().render(data)
    assert json.loads(ours) == json.loads(drfs) == data


def test_the_indent_parameter_is_honoured_like_drf():
    data = {"a": [1, 2], "b": {"c": "d"}}
    media = "application/json; indent=2"
    assert UTF8JSONRenderer().render(data, media) == JSONRenderer().render(data, media)
    assert b"\n  " in UTF8JSONRenderer().render(data, media)


def test_nothing_renders_as_an_empty_body():
    assert UTF8JSONRenderer().render(None) == b""


def test_not_a_number_is_null_where_strict_json_would_fail():
    assert UTF8JSONRenderer().render({"score": float("nan"), "top": float("inf")}) == b'{"score":null,"top":null}'
