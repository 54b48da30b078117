"""Pieces shared by the adapters admin and other apps' admins: JSON display and a changelist that defers columns."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html


def pretty_json(value: Any) -> str:
    """Indented JSON in a ``<pre>``; ``format_html`` escapes it (header metadata is untrusted)."""
    if value in (None, [], {}):
        return "-"
    return format_html('<pre class="lf-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


class DeferringChangeList(ChangeList):
    """A changelist that never loads the admin's ``changelist_deferred`` columns (large JSON, internal text)."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: list[str | None] | None = None) -> QuerySet[Any]:
        deferred = getattr(self.model_admin, "changelist_deferred", ())
        return super().get_queryset(request, exclude_parameters).defer(*deferred)
