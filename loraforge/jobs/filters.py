"""``BackgroundJobFilterSet``: the filters of ``GET /jobs`` (SPEC 5.11)."""

from __future__ import annotations

import django_filters

from loraforge.filters import FilterSet, choice_error
from loraforge.models import BackgroundJob
from loraforge.models.jobs import BackgroundJobKind, JobStatus


class BackgroundJobFilterSet(FilterSet):
    kind = django_filters.ChoiceFilter(
        choices=BackgroundJobKind.choices, error_messages=choice_error("kind", BackgroundJobKind.values)
    )
    status = django_filters.ChoiceFilter(
        choices=JobStatus.choices, error_messages=choice_error("status", JobStatus.values)
    )

    class Meta:
        model = BackgroundJob
        fields = ["kind", "status"]
