"""The JSON parser of the API: strict JSON, objects only, bounded size (SPEC 4.3, 4.6)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from loraforge.errors import MalformedRequest, PayloadTooLarge, request_too_large_detail


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


class StrictJSONParser(JSONParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.LORAFORGE_MAX_BODY_MB * 1024 * 1024
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(request_too_large_detail())
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            raise MalformedRequest("Request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise MalformedRequest("Request body must be a JSON object.")
        return data
