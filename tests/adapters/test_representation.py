"""The hand-rolled adapter representation equals DRF's own field-by-field output."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework import serializers

from adapters.serializers import AdapterDetailSerializer, AdapterSerializer
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


def _drf_output(serializer_class: type[AdapterSerializer], adapter) -> dict:
    return serializers.ModelSerializer.to_representation(serializer_class(), adapter)


@pytest.mark.parametrize("serializer_class", [AdapterSerializer, AdapterDetailSerializer])
def test_fast_representation_matches_drf(serializer_class, settings):
    settings.LORAFORGE_PUBLIC_URL = "https://forge.example"
    adapter = AdapterFactory(
        tags=["anime", "portrait"],
        trained_words=["celestial style"],
        published_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        file_mtime=datetime(2024, 5, 2, 8, 0, 0, 123456, tzinfo=UTC),
        missing_since=datetime(2025, 1, 1, tzinfo=UTC),
        preview_path="/srv/loras/a.preview.png",
        stats={"downloadCount": 3},
        extra={},
        network_alpha=16.0,
        header_metadata={"ss_network_dim": "32"},
        sidecars=[{"kind": "a1111", "path": "/srv/loras/a.json", "mtime": "2024-05-02T08:00:00Z", "size": 10}],
    )
    adapter.refresh_from_db()
    fast = serializer_class(adapter).data
    assert fast == _drf_output(serializer_class, adapter)
    assert fast["preview_url"] == f"https://forge.example/api/v1/adapters/{adapter.pk}/preview"
    assert fast["file_missing"] is True
    assert fast["file_mtime"] == "2024-05-02T08:00:00.123456Z"
    assert ("header_metadata" in fast) is (serializer_class is AdapterDetailSerializer)
