"""The debounced embeddings sweep after adapter writes (SPEC 6.7.1): announced adapters queue one sweep task while
the debounce key is held, whatever the burst; the sweep embeds what is pending."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.cache import cache

from adapters.models import Adapter
from adapters.signals import adapters_imported
from loraforge.models import BackgroundJob
from recommendations.models import AdapterEmbedding
from recommendations.selectors import embedding_coverage
from recommendations.services.embeddings import (
    _SWEEP_KEY,
    SWEEP_DEBOUNCE_SECONDS,
    embeddings_pending_ids,
    embeddings_sweep_schedule,
)
from recommendations.tasks import compute_embeddings
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db
TASK = "recommendations.compute_embeddings"
SWEEP = (TASK, [None], {"countdown": SWEEP_DEBOUNCE_SECONDS})


def sweeps(sent_tasks: list[tuple[str, list, dict]]) -> list[tuple[str, list, dict]]:
    return [task for task in sent_tasks if task[0] == TASK]


def send(api, method: str, url: str, body: dict) -> int:
    response = getattr(api, method)(url, data=json.dumps(body), content_type="application/json")
    return int(response.status_code)


def test_a_burst_of_creates_queues_one_sweep(api, lora_dir: Path, sent_tasks, django_capture_on_commit_callbacks):
    for index in range(5):
        path = write_safetensors(lora_dir / f"style_{index}.safetensors", seed=index)
        with django_capture_on_commit_callbacks(execute=True):
            assert send(api, "post", "/api/v1/adapters", {"name": f"Style {index}", "file_path": str(path)}) == 201
    assert Adapter.objects.count() == 5
    assert sweeps(sent_tasks) == [SWEEP]


def test_a_burst_of_announcements_queues_one_sweep(sent_tasks, django_capture_on_commit_callbacks):
    adapters = AdapterFactory.create_batch(4)
    for adapter in adapters:
        with django_capture_on_commit_callbacks(execute=True):
            adapters_imported.send(sender=Adapter, adapter_ids=[str(adapter.pk)])
    assert sweeps(sent_tasks) == [SWEEP]


def test_the_sweep_is_scheduled_only_once_the_transaction_commits(sent_tasks, django_capture_on_commit_callbacks):
    adapter = AdapterFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        adapters_imported.send(sender=Adapter, adapter_ids=[str(adapter.pk)])
        assert sweeps(sent_tasks) == []
    assert len(callbacks) == 1


def test_an_empty_announcement_schedules_nothing(sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        adapters_imported.send(sender=Adapter, adapter_ids=[])
    assert sweeps(sent_tasks) == []


def test_another_sweep_follows_once_the_debounce_key_expired(sent_tasks):
    assert embeddings_sweep_schedule() is True
    assert embeddings_sweep_schedule() is False
    cache.delete(_SWEEP_KEY)  # what the key's timeout does after SWEEP_DEBOUNCE_SECONDS
    assert embeddings_sweep_schedule() is True
    assert sweeps(sent_tasks) == [SWEEP, SWEEP]


def test_a_refused_send_releases_the_debounce_key(monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("loraforge.celery.app.send_task", refuse)
    assert embeddings_sweep_schedule() is False
    assert cache.get(_SWEEP_KEY) is None


def test_no_sweep_without_semantic_embeddings(sent_tasks, unavailable_model):
    assert embeddings_sweep_schedule() is False
    assert sweeps(sent_tasks) == []


def test_patching_the_description_announces_the_adapter(api, sent_tasks, django_capture_on_commit_callbacks):
    adapter = AdapterFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert send(api, "patch", f"/api/v1/adapters/{adapter.pk}", {"description": "Moonlit rooftops"}) == 200
    assert sweeps(sent_tasks) == [SWEEP]


def test_patching_only_the_weight_announces_nothing(api, sent_tasks, django_capture_on_commit_callbacks):
    adapter = AdapterFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert send(api, "patch", f"/api/v1/adapters/{adapter.pk}", {"weight": 0.6}) == 200
    assert sweeps(sent_tasks) == []


def test_the_sweep_embeds_pending_adapters_without_a_job():
    adapters = AdapterFactory.create_batch(3)
    compute_embeddings()
    assert set(AdapterEmbedding.objects.values_list("adapter_id", flat=True)) == {adapter.pk for adapter in adapters}
    assert not BackgroundJob.objects.exists()


def test_an_adapter_written_without_a_text_change_leaves_the_pending_list_after_one_sweep(api):
    adapter = AdapterFactory(description="soft aquarelle washes")
    compute_embeddings()
    vector = AdapterEmbedding.objects.get(adapter=adapter).vector
    assert send(api, "patch", f"/api/v1/adapters/{adapter.pk}", {"weight": 0.6}) == 200
    assert embeddings_pending_ids() == [str(adapter.pk)]  # written after its vector was computed

    compute_embeddings()
    assert embeddings_pending_ids() == []  # checked once: the text is the same, so it is no longer pending
    row = AdapterEmbedding.objects.get(adapter=adapter)
    assert bytes(row.vector) == bytes(vector)  # not recomputed
    adapter.refresh_from_db()
    assert row.computed_at == adapter.updated_at

    assert send(api, "patch", f"/api/v1/adapters/{adapter.pk}", {"description": "inky night streets"}) == 200
    assert embeddings_pending_ids() == [str(adapter.pk)]  # a text change is pending again


def test_embedding_coverage_counts_the_adapters_that_are_not_pending(api):
    first, second, _third = AdapterFactory.create_batch(3)
    assert embedding_coverage() == (0, 3)
    compute_embeddings()
    assert embedding_coverage() == (3, 3)
    assert send(api, "patch", f"/api/v1/adapters/{first.pk}", {"description": "new words"}) == 200
    second.delete()
    assert embedding_coverage() == (1, 2)
    assert len(embeddings_pending_ids()) == 1


def test_embedding_coverage_is_zero_with_the_model_switched_off(settings):
    AdapterFactory()
    compute_embeddings()
    settings.LORAFORGE_EMBEDDING_MODEL = "off"
    assert embedding_coverage() == (0, 1)
