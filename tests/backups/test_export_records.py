"""The fast record encoder (``backups.archive.rows``) gives exactly ``row_record`` of every archived model, on
SQLite and PostgreSQL alike (run this file on both)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection, models

from adapters.models import Adapter
from analytics.models import ResourceSample
from backups.archive.records import ADAPTER_DERIVED, BACKEND_PRIVATE, row_record
from backups.archive.rows import RowEncoder
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference
from tests.backups import library as fixtures
from tests.backups.library import Library

library, media = fixtures.library, fixtures.media

MODELS: list[tuple[type[models.Model], frozenset[str]]] = [
    (Adapter, ADAPTER_DERIVED), (AdapterEmbedding, frozenset()), (DeliveryJob, frozenset()),
    (DeliveryJobAdapter, frozenset({"id", "job"})), (GenerationResult, frozenset()),
    (RecommendationSession, frozenset()), (RecommendationFeedback, frozenset()), (UserPreference, frozenset()),
    (ResourceSample, frozenset({"id"})), (GenerationBackend, BACKEND_PRIVATE),
]  # fmt: skip


@pytest.mark.parametrize(("model", "exclude"), MODELS, ids=[model.__name__ for model, _exclude in MODELS])
def test_fast_record_equals_row_record(library: Library, model, exclude):
    encoder = RowEncoder(model, exclude=exclude)
    rows = [row for page in encoder.pages(model.objects.all(), 2) for row in page]  # pages of 2: the keyset moves on
    instances = list(model.objects.order_by("pk"))
    assert len(rows) == len(instances) > 0
    for row, instance in zip(rows, instances, strict=True):
        assert json.loads(encoder.encode(row)) == row_record(instance, exclude=exclude)


def test_awkward_values_round_trip(library: Library):
    adapter = library.adapters[0]
    Adapter.objects.filter(pk=adapter.pk).update(
        description='quotes " and \\ backslashes, unicode ✨ and a\nnewline',
        extra={"nested": {"list": [1, 2.5, None, True], "text": "ü"}},
        weight=0.1,
        network_alpha=1e-7,
        published_at=datetime(2024, 5, 2, 8, 0, 0, 123456, tzinfo=UTC),
        stats=None,
    )
    adapter.refresh_from_db()
    encoder = RowEncoder(Adapter, exclude=ADAPTER_DERIVED)
    row = next(row for page in encoder.pages(Adapter.objects.filter(pk=adapter.pk), 10) for row in page)
    assert json.loads(encoder.encode(row)) == row_record(adapter, exclude=ADAPTER_DERIVED)


def test_a_column_without_an_encoder_is_refused():
    class Odd(models.Model):
        amount = models.DecimalField(max_digits=5, decimal_places=2)

        class Meta:
            app_label = "backups"
            managed = False

    with pytest.raises(TypeError, match=r"No archive encoder for Odd\.amount"):
        RowEncoder(Odd)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 2, 8, 0, 0, 123400, tzinfo=UTC),  # PostgreSQL prints ".1234": the record has six digits
        datetime(2024, 5, 2, 8, 0, 0, 100000, tzinfo=UTC),
        datetime(2024, 5, 2, 8, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 5, 2, 8, 0, 0, tzinfo=UTC),  # no fraction at all, as isoformat() writes it
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
    ids=["trailing-zeros", "one-digit", "one-microsecond", "whole-second", "last-microsecond"],
)
def test_timestamps_read_as_text_give_isoformat(library: Library, moment: datetime):
    adapter = library.adapters[0]
    Adapter.objects.filter(pk=adapter.pk).update(published_at=moment, created_at=moment)
    adapter.refresh_from_db()
    encoder = RowEncoder(Adapter, exclude=ADAPTER_DERIVED)
    row = next(row for page in encoder.pages(Adapter.objects.filter(pk=adapter.pk), 10) for row in page)
    if connection.vendor == "postgresql":  # read as the server's text, not through Django's Python loader
        assert isinstance(row[encoder.attnames.index("published_at")], str)
        assert isinstance(row[encoder.attnames.index("id")], str)
    record = json.loads(encoder.encode(row))
    assert record["published_at"] == record["created_at"] == moment.isoformat()
    assert record == row_record(adapter, exclude=ADAPTER_DERIVED)
