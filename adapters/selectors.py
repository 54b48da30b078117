"""Reads of the adapter catalogue that are more than a filter."""

from __future__ import annotations

from collections import Counter

from django.db.models import QuerySet

from adapters.models import Adapter


def adapters_for_list() -> QuerySet[Adapter]:
    """List rows without the large JSON columns only the detail view shows."""
    return Adapter.objects.defer("header_metadata", "search_index", "tag_index")


def tag_counts() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for tags in Adapter.objects.exclude(tag_index="").values_list("tags", flat=True).iterator(chunk_size=2000):
        counts.update(tags or [])
    return dict(sorted(counts.items()))
