"""Reads of the adapter catalogue that are more than a filter."""

from __future__ import annotations

from collections import Counter

from django.db.models import QuerySet

from adapters.models import Adapter, CatalogueState


def adapters_for_list() -> QuerySet[Adapter]:
    """List rows without the large JSON columns only the detail view shows."""
    return Adapter.objects.defer("header_metadata", "search_index", "tag_index")


def tag_counts() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for tags in Adapter.objects.exclude(tag_index="").values_list("tags", flat=True).iterator(chunk_size=2000):
        counts.update(tags or [])
    return dict(sorted(counts.items()))


def catalogue_version() -> int | None:
    """The trigger-maintained version of the adapters table (None when its row is missing)."""
    return CatalogueState.objects.filter(pk=1).values_list("version", flat=True).first()
