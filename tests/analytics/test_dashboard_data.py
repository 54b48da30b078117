"""Dashboard data endpoints (SPEC 5.8): counts, system health from cached readings, featured adapters, activity."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from analytics.selectors.dashboard import dashboard_stats, gb_pair
from deliveries.models import DeliveryJob
from generation.backends.services import backend_health_record
from generation.models import GenerationBackend
from recommendations.models import AdapterEmbedding
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db

STATS = "/api/v1/dashboard/stats"
FEATURED = "/api/v1/dashboard/featured-loras"
FEED = "/api/v1/dashboard/activity-feed"


@pytest.fixture(autouse=True)
def _empty_health_cache() -> None:
    cache.clear()


def _embed(adapter, *, model: str) -> None:
    AdapterEmbedding.objects.create(
        adapter=adapter, model_name=model, dim=1, vector=b"\0\0\x80?", text_sha256="0" * 64, computed_at=timezone.now()
    )


@pytest.mark.parametrize("path", [STATS, STATS + "/", FEATURED, FEATURED + "/", FEED, "/v1/dashboard/activity-feed/"])
def test_every_dashboard_endpoint_answers_with_or_without_a_slash_and_needs_auth(api, anon, path):
    assert api.get(path).status_code == 200
    assert anon.get(path).status_code == 401


def test_stats_of_an_empty_library(api):
    body = api.get(STATS).json()
    assert body["stats"] == {
        "total_loras": 0,
        "active_loras": 0,
        "embeddings_coverage": 0,
        "active_share": 0,
        "recent_imports": 0,
        "active_jobs": 0,
        "missing_files": 0,
        "duplicates": 0,
    }
    health = body["system_health"]
    assert set(health) == {
        "status", "gpu_status", "gpu_memory", "queue_status", "storage_usage", "backends_healthy", "backends_total"
    }  # fmt: skip
    assert (health["gpu_status"], health["gpu_memory"], health["queue_status"]) == ("unavailable", "n/a", "idle")
    assert (health["backends_healthy"], health["backends_total"]) == (0, 0)
    assert health["status"] == "healthy"


def test_stats_count_the_library_with_percents_rounded_down(api, settings):
    settings.LORAFORGE_EMBEDDING_MODEL = "test-model"
    adapters = [AdapterFactory(active=index < 2) for index in range(3)]  # 2 of 3 active: 66 %
    _embed(adapters[0], model="test-model")
    _embed(adapters[1], model="another-model")  # not current: another model
    adapters[2].missing_since = timezone.now()
    adapters[2].duplicate_paths = ["/srv/loras/copy.safetensors"]
    adapters[2].save()
    stats = api.get(STATS).json()["stats"]
    assert stats["total_loras"] == 3
    assert stats["active_loras"] == 2
    assert stats["active_share"] == 66
    assert stats["embeddings_coverage"] == 33
    assert (stats["missing_files"], stats["duplicates"]) == (1, 1)


def test_recent_imports_are_adapters_created_or_reingested_in_the_last_day(api):
    long_ago = timezone.now() - timedelta(days=3)
    AdapterFactory()  # created now
    old = AdapterFactory.create_batch(3)
    AdapterFactory._meta.model.objects.filter(pk__in=[adapter.pk for adapter in old]).update(created_at=long_ago)
    AdapterFactory._meta.model.objects.filter(pk=old[0].pk).update(last_ingested_at=timezone.now())
    AdapterFactory._meta.model.objects.filter(pk=old[1].pk).update(last_ingested_at=long_ago)
    assert api.get(STATS).json()["stats"]["recent_imports"] == 2


def test_active_jobs_are_pending_and_running_deliveries(api):
    for status in ("pending", "running", "running", "succeeded", "failed", "cancelled"):
        DeliveryJob.objects.create(kind="delivery", mode="cli", prompt="p", status=status)
    body = api.get(STATS).json()
    assert body["stats"]["active_jobs"] == 3
    assert body["system_health"]["queue_status"] == "active"


def test_storage_usage_is_the_data_folders_filesystem_in_gb(api):
    usage = api.get(STATS).json()["system_health"]["storage_usage"]
    used, _, total = usage.partition(" / ")
    assert used.endswith(" GB")
    assert total.endswith(" GB")
    assert 0 < float(used.removesuffix(" GB")) < float(total.removesuffix(" GB"))
    assert gb_pair(int(1.25 * 1024**3), 80 * 1024**3) == "1.2 GB / 80.0 GB"


def test_backends_use_cached_health_only_and_answer_fast_when_unreachable(api):
    healthy = GenerationBackend.objects.create(name="up", url="http://127.0.0.1:9/up")
    backend_health_record(backend=healthy, healthy=True)
    GenerationBackend.objects.create(name="never", url="http://10.255.255.1:7860")  # never checked, unroutable
    down = GenerationBackend.objects.create(name="down", url="http://127.0.0.1:9/down")
    backend_health_record(backend=down, healthy=False, error="connection refused")
    GenerationBackend.objects.create(name="off", url="http://127.0.0.1:9/off", enabled=False, healthy=True)
    started = time.monotonic()
    health = api.get(STATS).json()["system_health"]
    assert time.monotonic() - started < 1.0
    assert (health["backends_healthy"], health["backends_total"]) == (1, 4)
    assert health["status"] == "warning"
    assert GenerationBackend.objects.get(name="never").last_checked_at is None  # nothing probed


def test_dashboard_stats_do_not_build_the_recommendation_index():
    from recommendations import index

    index.index_reset()
    AdapterFactory.create_batch(3)
    dashboard_stats()
    assert index.index_peek() is None


def test_gpu_memory_of_the_first_gpu(api, fake_nvml):
    health = api.get(STATS).json()["system_health"]
    assert health["gpu_status"] == "NVIDIA H100 80GB HBM3"
    assert health["gpu_memory"] == "19.9 GB / 79.6 GB"


# --- featured -------------------------------------------------------------------------------------


def test_featured_are_five_active_adapters_by_update_then_name(api):
    now = timezone.now()
    rows = []
    for name in ["f", "e", "d", "c", "b", "a"]:
        rows.append(AdapterFactory(name=name, active=True))
    AdapterFactory(name="inactive", active=False)
    model = AdapterFactory._meta.model
    for index, adapter in enumerate(rows):
        model.objects.filter(pk=adapter.pk).update(updated_at=now - timedelta(minutes=index // 2))
    names = [item["name"] for item in api.get(FEATURED).json()]
    assert names == ["e", "f", "c", "d", "a"]


def test_featured_item_and_civitai_url_rules(api):
    both = AdapterFactory(
        name="both", active=True, civitai_model_id=12, civitai_version_id=34, tags=["anime"], version="v2",
        description="<p>x</p>", base_model="SDXL 1.0", preview_path="/srv/loras/both.png",
    )  # fmt: skip
    AdapterFactory(name="model", active=True, civitai_model_id=56)
    AdapterFactory(name="version", active=True, civitai_version_id=78)
    items = {item["name"]: item for item in api.get(FEATURED).json()}
    assert items["both"] == {
        "id": str(both.pk),
        "name": "both",
        "version": "v2",
        "tags": ["anime"],
        "active": True,
        "civitai_url": "https://civitai.com/models/12?modelVersionId=34",
        "description": "<p>x</p>",
        "preview_url": f"/api/v1/adapters/{both.pk}/preview",
        "base_model": "SDXL 1.0",
    }
    assert items["model"]["civitai_url"] == "https://civitai.com/models/56"
    assert items["version"]["civitai_url"] is None
    assert items["model"]["preview_url"] is None


# --- activity feed ----------------------------------------------------------------------------------


def test_activity_feed_is_the_last_ten_deliveries_with_messages_and_icons(api):
    now = timezone.now()
    statuses = ["pending", "running", "succeeded", "failed", "cancelled"]
    for index in range(12):
        DeliveryJob.objects.create(
            kind="generation" if index % 2 else "delivery",
            mode="sdnext" if index % 2 else "http",
            prompt=f"prompt {index}",
            status=statuses[index % 5],
            created_at=now - timedelta(minutes=index),
        )
    feed = api.get(FEED).json()
    assert len(feed) == 10
    assert [item["prompt"] for item in feed] == [f"prompt {index}" for index in range(10)]
    first, second = feed[0], feed[1]
    assert first["message"] == "Delivery job 'prompt 0' pending"
    assert second["message"] == "Generation job 'prompt 1' running"
    assert {item["status"]: item["icon"] for item in feed} == {
        "pending": "⏳", "running": "🚀", "succeeded": "✅", "failed": "⚠️", "cancelled": "🚫"
    }  # fmt: skip
    assert all(item["type"] == item["status"] for item in feed)
    assert (first["mode"], second["mode"]) == ("http", "sdnext")
    assert first["timestamp"].endswith("Z")
    assert set(first) == {"id", "type", "status", "message", "mode", "prompt", "timestamp", "icon"}


def test_activity_message_cuts_the_prompt_at_sixty_characters(api):
    exact, long = "x" * 60, "y" * 61
    DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt=exact, status="succeeded")
    DeliveryJob.objects.create(
        kind="generation", mode="sdnext", prompt=long, status="failed", created_at=timezone.now() + timedelta(seconds=1)
    )
    feed = api.get(FEED).json()
    assert feed[0]["message"] == f"Generation job '{'y' * 60}…' failed"
    assert feed[0]["prompt"] == long
    assert feed[1]["message"] == f"Generation job '{exact}' succeeded"


def test_dashboard_endpoints_use_a_bounded_number_of_queries(api, django_assert_max_num_queries):
    for index in range(30):
        adapter = AdapterFactory(active=True, civitai_model_id=index, preview_path=f"/srv/loras/{index}.png")
        DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt=adapter.name, status="succeeded")
    for name in ("a", "b", "c"):
        GenerationBackend.objects.create(name=name, url=f"http://127.0.0.1:9/{name}")
    api.get(STATS)  # the API key's first use writes last_used_at
    with django_assert_max_num_queries(2):  # the API key, the rows
        assert len(api.get(FEATURED).json()) == 5
    with django_assert_max_num_queries(2):
        assert len(api.get(FEED).json()) == 10
    with django_assert_max_num_queries(6):
        assert api.get(STATS).status_code == 200
