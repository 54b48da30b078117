"""Reads of the adapter catalogue that are more than a filter."""

from __future__ import annotations

from collections import Counter

from django.db import connection
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
    with connection.cursor() as cursor:  # plain SQL: this runs on every cached read
        cursor.execute(f"SELECT version FROM {CatalogueState._meta.db_table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else int(row[0])
