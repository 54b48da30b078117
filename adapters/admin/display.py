"""Pieces shared by the adapters admin and other apps' admins: a changelist that defers columns."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest


class DeferringChangeList(ChangeList):
    """A changelist that never loads the admin's ``changelist_deferred`` columns (large JSON, internal text)."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: list[str | None] | None = None) -> QuerySet[Any]:
        deferred = getattr(self.model_admin, "changelist_deferred", ())
        return super().get_queryset(request, exclude_parameters).defer(*deferred)
