"""Response renderers: JSON declared as UTF-8 (SPEC 4.3)."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class UTF8JSONRenderer(JSONRenderer):
    charset = "utf-8"
