"""``insert_compiled``: what ``save(force_insert=True)`` and an upserting ``bulk_create`` write, compiled first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from adapters.models import Adapter, ScannedFile
from loraforge.inserts import insert_compiled

pytestmark = pytest.mark.django_db

SEEN = datetime(2026, 3, 4, tzinfo=UTC)
VOLATILE = {"id", "name", "file_path", "sdnext_name", "search_index", "created_at", "updated_at", "last_ingested_at"}


def _adapter(number: int) -> Adapter:
    adapter = Adapter(
        name=f"Ink {number}",
        file_path=f"/srv/loras/ink_{number}.safetensors",
        sdnext_name=f"ink_{number}",
        tags=["ink", "sketch"],
        trained_words=["inky"],
        description="Ink drawings",
        base_model="SDXL 1.0",
        header_metadata={"ss_network_dim": "4"},
        weight=0.8,
        sha256="a" * 64,
        last_ingested_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    adapter.refresh_indexes()
    return adapter


def test_an_insert_writes_the_row_save_writes():
    saved = _adapter(1)
    saved.save(force_insert=True)
    compiled = _adapter(2)
    before = timezone.now()
    insert = insert_compiled(compiled)
    assert compiled._state.adding
    insert.execute()
    assert not compiled._state.adding
    assert compiled._state.db == "default"
    rows = {row["id"]: row for row in Adapter.objects.values()}
    mine, theirs = rows[compiled.pk], rows[saved.pk]
    assert {k: v for k, v in mine.items() if k not in VOLATILE} == {
        k: v for k, v in theirs.items() if k not in VOLATILE
    }
    assert (mine["name"], mine["tags"], mine["header_metadata"]) == (
        "Ink 2",
        ["ink", "sketch"],
        {"ss_network_dim": "4"},
    )
    # auto_now(_add) stamped when compiled, as save() stamps them when it compiles
    assert before <= mine["created_at"] <= mine["updated_at"] <= timezone.now()
    # The trigger-kept indexes saw the row as they see any insert.
    assert Adapter.objects.filter(tag_index__contains="|sketch|").count() == 2


def test_an_upsert_updates_only_the_named_columns_of_the_row_already_there():
    first = ScannedFile(
        path="/srv/loras/a.safetensors", size=1, mtime_ns=1, sha256="1" * 64, excluded=True, last_seen_at=SEEN
    )
    insert_compiled(first).execute()
    assert first.pk is None  # a database-made key is not read back (nothing needs it)
    again = ScannedFile(
        path="/srv/loras/a.safetensors", size=2, mtime_ns=2, sha256="2" * 64, excluded=False, last_seen_at=SEEN
    )
    insert_compiled(again, unique_fields=["path"], update_fields=["size", "sha256"]).execute()
    [row] = ScannedFile.objects.values("size", "mtime_ns", "sha256", "excluded")
    assert row == {"size": 2, "mtime_ns": 1, "sha256": "2" * 64, "excluded": True}


def test_no_model_signal_is_connected_to_the_models_inserted_this_way():
    # ``CompiledInsert`` sends none: a receiver added to these models would be skipped silently.
    for model in (Adapter, ScannedFile):
        assert not pre_save.has_listeners(model)
        assert not post_save.has_listeners(model)
