"""Reads of the adapter catalogue that are more than a filter."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet

from adapters.models import Adapter, AdapterTag, CatalogueState
from loraforge.prepared import PreparedQuery

_BY_ID: PreparedQuery[Adapter] = PreparedQuery(
    lambda pk: Adapter.objects.order_by().filter(pk=pk),
    "00000000-0000-4000-8000-000000000000",
    fields=[Adapter._meta.pk],
)


def adapters_for_list() -> QuerySet[Any]:
    """List rows: named tuples of the columns the list representation reads (``AdapterSerializer`` reads them by
    attribute, as from an instance). No model instances: building 50 of them (75 columns each) was a fifth of an
    uncached page's time. The large JSON columns only the detail view shows are not read."""
    return Adapter.objects.values_list(*_list_columns(), named=True)


@functools.cache
def _list_columns() -> tuple[str, ...]:
    from adapters.serializers import AdapterSerializer

    readable = {field.attname for field in Adapter._meta.concrete_fields}
    wanted = [name for name in AdapterSerializer.Meta.fields if name in readable and name != "id"]
    return ("pk", *wanted, "missing_since", "preview_path")


def adapter_by_id(pk: str) -> Adapter | None:
    """The adapter with this id (a UUID string), every column loaded, or ``None``. Compiled once: compiling the
    76-column select was half of an uncached read by id."""
    found = _BY_ID.instances(pk)
    return found[0] if found else None


def tag_counts() -> dict[str, int]:
    """Distinct tags with the number of adapters carrying each, from the (tag, adapter) index."""
    rows = AdapterTag.objects.values_list("tag").annotate(count=Count("adapter_id")).order_by("tag")
    return dict(rows)


def catalogue_state() -> tuple[int, int] | None:
    """``(version, row_count)`` of the adapters table, kept by triggers (None when the row is missing)."""
    with connection.cursor() as cursor:  # plain SQL: this runs on every cached read
        cursor.execute(f"SELECT version, row_count FROM {CatalogueState._meta.db_table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def catalogue_version() -> int | None:
    state = catalogue_state()
    return None if state is None else state[0]


def adapter_total() -> int | None:
    """How many adapters exist, without ``COUNT(*)`` (None when the state row is missing)."""
    state = catalogue_state()
    return None if state is None else state[1]
