"""The catalogue triggers exist after every migrate, even when a migration rebuilt the table (SQLite)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from adapters.db_triggers import PG_TRIGGERS, SQLITE_CHANGES
from adapters.selectors import catalogue_state
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _trigger_names() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'adapters_adapter'")
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'adapters_adapter'::regclass AND NOT tgisinternal"
            )
        return {row[0] for row in cursor.fetchall()}


def _expected() -> set[str]:
    if connection.vendor == "sqlite":
        return {f"adapters_catalogue_{event}" for event in SQLITE_CHANGES}
    return {name for name, *_rest in PG_TRIGGERS}


def _drop_all() -> None:
    with connection.cursor() as cursor:
        for name in _expected():
            on_table = "" if connection.vendor == "sqlite" else " ON adapters_adapter"
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}{on_table}")


def test_migrate_puts_back_triggers_a_table_rebuild_dropped():
    assert _expected() <= _trigger_names()
    _drop_all()  # what SQLite does when a migration rebuilds adapters_adapter
    assert not (_expected() & _trigger_names())
    call_command("migrate", verbosity=0)
    assert _expected() <= _trigger_names()
    version, count = catalogue_state() or (0, 0)
    AdapterFactory()
    assert catalogue_state() == (catalogue_state()[0], count + 1)
    assert catalogue_state()[0] > version


def test_flush_keeps_a_state_row():
    AdapterFactory()
    call_command("flush", "--no-input", verbosity=0)
    assert catalogue_state() is not None
    assert catalogue_state()[1] == 0


def _tag_rows() -> set[tuple[str, str]]:
    from adapters.models import AdapterTag

    return {(str(adapter_id), tag) for adapter_id, tag in AdapterTag.objects.values_list("adapter_id", "tag")}


def test_the_tag_table_follows_every_write():
    from adapters.models import Adapter

    first = AdapterFactory(tags=["anime", "portrait"])
    second = AdapterFactory(tags=["ink"])
    assert _tag_rows() == {(str(first.pk), "anime"), (str(first.pk), "portrait"), (str(second.pk), "ink")}
    first.tags = ["portrait", "night sky"]
    first.save()
    Adapter.objects.filter(pk=second.pk).update(tags=["ink", "anime"])
    assert _tag_rows() == {
        (str(first.pk), "portrait"),
        (str(first.pk), "night sky"),
        (str(second.pk), "ink"),
        (str(second.pk), "anime"),
    }
    bulk = Adapter(name="Bulk", sdnext_name="bulk", file_path="/bulk", tags=["bulk"])
    Adapter.objects.bulk_create([bulk])
    Adapter.objects.filter(pk=first.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM adapters_adapter WHERE file_path = '/bulk'")
    assert _tag_rows() == {(str(second.pk), "ink"), (str(second.pk), "anime")}
