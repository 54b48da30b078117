"""The vectors' fingerprint is a version the embeddings table's triggers bump (``recommendations/db_triggers.py``):
every kind of write changes it, whatever the ORM call (or raw SQL) made it; a rewrite that keeps the row count and the
latest ``computed_at`` (a restore's older vectors) still reloads the index's vectors; ``install`` puts back a missing
state row or trigger. On both databases (the PostgreSQL pass runs this file too)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from recommendations.db_triggers import install
from recommendations.index import embeddings_fingerprint, index_current
from recommendations.models import AdapterEmbedding, EmbeddingState
from recommendations.vectors import vector_to_bytes
from tests.recommendations.test_index_follow import make_catalogue, store_vectors


def unit(seed: int) -> bytes:
    vector = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return vector_to_bytes(vector / np.linalg.norm(vector))


@pytest.mark.django_db
def test_every_write_to_the_vectors_changes_the_fingerprint():
    adapters = make_catalogue(4)
    seen = [embeddings_fingerprint()]

    def changed() -> None:
        now = embeddings_fingerprint()
        assert now not in seen
        seen.append(now)

    store_vectors(adapters[:2])  # inserts
    changed()
    AdapterEmbedding.objects.filter(pk=adapters[0].pk).update(vector=unit(7))  # a queryset update
    changed()
    embedding = AdapterEmbedding.objects.get(pk=adapters[1].pk)
    embedding.text_sha256 = "0" * 64
    embedding.save()  # a model save
    changed()
    with connection.cursor() as cursor:  # raw SQL
        cursor.execute(f"UPDATE {AdapterEmbedding._meta.db_table} SET dim = dim")  # noqa: S608
    changed()
    AdapterEmbedding.objects.filter(pk=adapters[0].pk).delete()
    changed()
    adapters[1].delete()  # the cascade from the adapter
    changed()
    assert embeddings_fingerprint() == seen[-1]  # reading it changes nothing


@pytest.mark.django_db
def test_a_rewrite_keeping_count_and_latest_time_reloads_the_vectors():
    adapters = make_catalogue(3)
    store_vectors(adapters)
    index = index_current(semantic=True)
    row = index.catalogue.position[str(adapters[0].pk)]
    before = index.semantic.matrix[row].copy()
    older = timezone.now() - timedelta(days=1)
    # What a restore does: the row deleted and written again, older than the latest, so count and max stay.
    AdapterEmbedding.objects.filter(pk=adapters[0].pk).update(vector=unit(9), computed_at=older)
    index = index_current(semantic=True)
    after = index.semantic.matrix[row]
    assert not np.allclose(after, before)
    assert np.allclose(after, np.frombuffer(unit(9), dtype="<f4"))


@pytest.mark.django_db
def test_install_puts_back_the_state_row_and_the_triggers():
    adapters = make_catalogue(2)
    EmbeddingState.objects.all().delete()  # as ``flush`` leaves it
    assert embeddings_fingerprint()[1] is None
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER recommendations_embedding_insert")
    install(connection)
    first = embeddings_fingerprint()
    assert first[1] is not None
    store_vectors(adapters[:1])
    assert embeddings_fingerprint() != first
