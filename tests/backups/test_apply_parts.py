"""Applying the parts besides adapters (SPEC 6.10.3): embeddings, jobs with links (rollups stay exact), results
and images, sessions, feedback, preferences, backends, resource samples."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import numpy as np
import pytest

from adapters.models import Adapter
from analytics.models import ResourceSample
from analytics.rollups import rollups_rebuild
from backups.archive.format import BACKENDS, ArchiveError, image_member
from backups.archive.records import BACKEND_PRIVATE, row_record
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
from recommendations.cousage import usage_version
from recommendations.models import (
    AdapterEmbedding,
    RecommendationFeedback,
    RecommendationSession,
    UsageChange,
    UserPreference,
)
from recommendations.usage_history import usage_state
from tests.analytics.report_jobs import NOW, make_job, rollup_rows
from tests.backups.apply_archives import adapter_members, apply, dump, folders, merged
from tests.backups.helpers import job_table_indexes
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db
__all__ = ["folders"]


@pytest.fixture
def adapter(folders):
    return AdapterFactory(file_path=str(write_safetensors(folders["loras"] / "a.safetensors", seed=1)))


def embedding_record(adapter, model_name):
    vector = np.ones(4, dtype="<f4") / 2
    row = AdapterEmbedding(
        adapter=adapter, model_name=model_name, dim=4, vector=vector.tobytes(), text_sha256="0" * 64, computed_at=NOW
    )
    record = row_record(row)
    record["vector_b64"] = record.pop("vector")
    return record


def test_embeddings_are_stored_for_the_current_model_only(folders, adapter, tmp_path, settings):
    settings.LORAFORGE_EMBEDDING_MODEL = "current-model"
    other = AdapterFactory(file_path=str(write_safetensors(folders["loras"] / "b.safetensors", seed=2)))
    members = {
        "embeddings/embeddings.jsonl": dump(
            [embedding_record(adapter, "current-model"), embedding_record(other, "old-model")]
        )
    }

    report = apply(tmp_path, members)

    assert report["parts"]["embeddings"] == 1
    stored = AdapterEmbedding.objects.get()
    assert (stored.adapter_id, bytes(stored.vector)) == (adapter.pk, (np.ones(4, dtype="<f4") / 2).tobytes())
    assert report["warnings"] == ["1 embeddings skipped: computed by another model than 'current-model'"]


def test_embedding_vector_of_the_wrong_length_is_an_invalid_record(folders, adapter, tmp_path, settings):
    record = embedding_record(adapter, "m")
    record["vector_b64"] = base64.b64encode(b"\0" * 12).decode()
    with pytest.raises(ArchiveError) as raised:
        apply(tmp_path, {"embeddings/embeddings.jsonl": dump([record])})
    assert str(raised.value).startswith("Invalid embedding record in embeddings/embeddings.jsonl: vector_b64: ")


def job_record(job):
    record = row_record(job)
    record["adapter_links"] = [
        row_record(link, exclude={"id", "job"}) for link in job.adapter_links.order_by("position")
    ]
    return record


@pytest.mark.parametrize("bulk", [False, True], ids=["triggers", "bulk-load"])
def test_jobs_are_inserted_with_links_to_the_matched_adapters_and_rollups_stay_exact(
    folders, adapter, tmp_path, monkeypatch, bulk
):
    """Both ways of keeping the rollups: the triggers per statement, or (a large load against what is there) the
    triggers off, a rebuild, the triggers on again."""
    from backups.archive.apply import part_write

    monkeypatch.setattr(part_write, "BULK_JOBS", 0 if bulk else 10**9)
    suspensions: list[bool] = []
    suspend = part_write.rollups_suspended

    def spy() -> object:
        suspensions.append(True)
        return suspend()

    monkeypatch.setattr(part_write, "rollups_suspended", spy)
    indexes_before = job_table_indexes()
    archived = AdapterFactory(file_path="/elsewhere/a.safetensors", sha256=adapter.sha256)  # same file, other id
    jobs = [make_job(NOW, "succeeded", seconds=2, adapters=[archived]), make_job(NOW, "failed", error_code="x")]
    records = [job_record(job) for job in jobs]
    members = merged(adapter_members(archived), {"generations/jobs.jsonl": dump(records)})
    DeliveryJob.objects.all().delete()
    archived.delete()
    rollups_rebuild()
    version = usage_version()

    report = apply(tmp_path, members)

    assert report["parts"]["generation_jobs"] == 2
    for record in records:  # every column as archived, timestamps included
        restored = job_record(DeliveryJob.objects.get(pk=record["id"]))
        assert {**restored, "adapter_links": None} == {**record, "adapter_links": None}
    link = DeliveryJobAdapter.objects.get()
    assert (link.job_id, link.adapter_id) == (jobs[0].pk, adapter.pk)
    incremental = rollup_rows()
    rollups_rebuild()
    assert rollup_rows() == incremental
    assert incremental["adapter_days"][0][1:] == (adapter.pk, 1, 1, 0)
    assert suspensions == ([True] if bulk else [])
    assert job_table_indexes() == indexes_before  # a bulk load on SQLite drops the plain indexes and makes them again
    restored = usage_version()
    assert restored != version  # the co-usage history changed
    logged = set(UsageChange.objects.filter(version__gt=version).values_list("job_id", flat=True))
    if bulk:  # no job logged: a history kept in memory is loaded again rather than caught up
        assert (logged, usage_state().pruned_through) == (set(), restored)
    else:  # each job logged: a history kept in memory catches up
        assert logged == {job.pk for job in jobs if job.status == "succeeded"}
    make_job(NOW, "succeeded", seconds=2, adapters=[adapter])  # the triggers are on after the import
    assert rollup_rows()["adapter_days"][0][1:] == (adapter.pk, 2, 2, 0)
    assert usage_version() != restored


def test_jobs_present_are_kept_by_merge_and_overwritten_by_replace(folders, tmp_path):
    job = make_job(NOW, "succeeded", seconds=1)
    record = {**job_record(job), "prompt": "from archive"}
    members = {"generations/jobs.jsonl": dump([record])}
    assert apply(tmp_path, members)["parts"]["generation_jobs"] == 0
    assert DeliveryJob.objects.get().prompt == "p"
    assert apply(tmp_path, members, mode="replace", name="b.zip")["parts"]["generation_jobs"] == 1
    assert DeliveryJob.objects.get().prompt == "from archive"


def test_results_and_images_go_to_their_media_path_without_overwriting(folders, tmp_path):
    job = make_job(NOW, "succeeded", seconds=1)
    results = [
        GenerationResult(job=job, index=i, file=f"generations/x/{i:03d}.png", content_type="image/png", size_bytes=3)
        for i in range(2)
    ]
    records = [{**row_record(r), "member": image_member(job.pk, r.index, "png")} for r in results]
    images = {image_member(job.pk, i, "png"): f"img{i}".encode() for i in range(2)}
    existing = folders["media"] / "generations/x/001.png"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"mine")
    members = merged(
        {"generations/jobs.jsonl": dump([job_record(job)]), "generations/results.jsonl": dump(records)}, images
    )
    job.delete()

    report = apply(tmp_path, members)

    assert report["parts"]["generation_results"] == 2
    assert GenerationResult.objects.count() == 2
    assert (folders["media"] / "generations/x/000.png").read_bytes() == b"img0"
    assert existing.read_bytes() == b"mine"
    assert report["warnings"] == [f"Not overwriting existing file: {existing}"]


def test_results_whose_job_is_absent_are_skipped(folders, tmp_path):
    job = make_job(NOW)
    result = GenerationResult(job=job, index=0, file="g/0.png", content_type="image/png", size_bytes=1)
    members = {"generations/results.jsonl": dump([{**row_record(result), "member": None}])}
    job.delete()
    report = apply(tmp_path, members)
    assert (report["parts"]["generation_results"], GenerationResult.objects.count()) == (0, 0)


def test_sessions_and_feedback_are_inserted_when_absent(folders, adapter, tmp_path):
    session = RecommendationSession.objects.create(kind="similar", context_key="k", target_adapter=adapter)
    feedback = RecommendationFeedback.objects.create(session=session, adapter=adapter, feedback_type="positive")
    members = {
        "recommendations/sessions.jsonl": dump([row_record(session)]),
        "recommendations/feedback.jsonl": dump([row_record(feedback)]),
    }
    created_at = session.created_at
    session.delete()

    report = apply(tmp_path, members)

    assert (report["parts"]["sessions"], report["parts"]["feedback"]) == (1, 1)
    assert RecommendationSession.objects.get().created_at == created_at
    assert RecommendationFeedback.objects.get().adapter_id == adapter.pk
    assert apply(tmp_path, members, name="b.zip")["parts"]["sessions"] == 0


@pytest.mark.parametrize(("mode", "confidence"), [("merge", 0.2), ("replace", 0.9)])
def test_preferences_are_upserted_by_type_and_value(folders, tmp_path, mode, confidence):
    kept = UserPreference.objects.create(preference_type="tag", preference_value="anime", confidence=0.2,
                                         last_evidence_at=NOW)  # fmt: skip
    archived = [
        {**row_record(kept), "id": "00000000-0000-4000-8000-000000000001", "confidence": 0.9},
        {**row_record(kept), "id": "00000000-0000-4000-8000-000000000002", "preference_value": "sdxl"},
    ]
    apply(tmp_path, {"recommendations/preferences.jsonl": dump(archived)}, mode=mode)
    assert UserPreference.objects.get(preference_value="anime").confidence == confidence
    assert UserPreference.objects.filter(preference_value="sdxl").count() == 1


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_backends_are_created_without_passwords_and_replace_updates_url(folders, tmp_path, mode):
    local = GenerationBackend.objects.create(name="gpu1", url="http://old:7860", enabled=True)
    remote = GenerationBackend(name="gpu2", url="http://new:7860", username="u", password="secret")
    records = [
        {**row_record(local, exclude=BACKEND_PRIVATE), "url": "http://moved:7860", "enabled": False},
        {**row_record(remote, exclude=BACKEND_PRIVATE), "created_at": NOW.isoformat(), "updated_at": NOW.isoformat()},
    ]
    apply(tmp_path, {BACKENDS: json.dumps(records).encode()}, mode=mode)
    created = GenerationBackend.objects.get(name="gpu2")
    assert (created.password, created.username, created.url) == (None, "u", "http://new:7860")
    local.refresh_from_db()
    assert (local.url, local.enabled) == (
        ("http://moved:7860", False) if mode == "replace" else ("http://old:7860", True)
    )


def test_resource_samples_are_inserted_when_recorded_at_and_host_are_absent(folders, tmp_path):
    sample = ResourceSample.objects.create(recorded_at=NOW, host="h", cpu_percent=1, memory_percent=2, memory_used_mb=3)
    records = [row_record(sample, exclude={"id"}), {**row_record(sample, exclude={"id"}), "host": "other"}]
    later = {**records[0], "recorded_at": (NOW + timedelta(minutes=1)).isoformat()}
    report = apply(tmp_path, {"analytics/resource_samples.jsonl": dump([*records, later])})
    assert report["parts"]["resource_samples"] == 2
    assert ResourceSample.objects.count() == 3


def test_adapters_created_are_announced_for_the_recommendation_index(folders, adapter, tmp_path):
    from adapters.signals import adapters_imported

    received = []

    def receiver(sender, adapter_ids=None, **kwargs):
        received.extend(adapter_ids or [])

    adapters_imported.connect(receiver)
    try:
        members = adapter_members(adapter)
        adapter_id = str(adapter.pk)
        Adapter.objects.all().delete()
        apply(tmp_path, members)
    finally:
        adapters_imported.disconnect(receiver)
    assert received == [adapter_id]


def test_dry_run_of_every_part_writes_nothing_and_counts_the_records(folders, adapter, tmp_path, settings):
    from tests.backups.apply_archives import listing, table_rows

    settings.LORAFORGE_EMBEDDING_MODEL = "m"
    job = make_job(NOW, "succeeded", seconds=1, adapters=[adapter])
    result = GenerationResult(job=job, index=0, file="g/0.png", content_type="image/png", size_bytes=3)
    session = RecommendationSession.objects.create(kind="similar", context_key="k")
    preference = UserPreference.objects.create(preference_type="tag", preference_value="x", last_evidence_at=NOW)
    sample = ResourceSample.objects.create(recorded_at=NOW, host="h", cpu_percent=1, memory_percent=2, memory_used_mb=3)
    backend = GenerationBackend(name="gpu9", url="http://gpu9:7860", created_at=NOW, updated_at=NOW)
    members = {
        "embeddings/embeddings.jsonl": dump([embedding_record(adapter, "m")]),
        "generations/jobs.jsonl": dump([job_record(job)]),
        "generations/results.jsonl": dump([{**row_record(result), "member": image_member(job.pk, 0, "png")}]),
        image_member(job.pk, 0, "png"): b"img",
        "recommendations/sessions.jsonl": dump([row_record(session)]),
        "recommendations/preferences.jsonl": dump([{**row_record(preference), "preference_value": "y"}]),
        "analytics/resource_samples.jsonl": dump([{**row_record(sample, exclude={"id"}), "host": "other"}]),
        BACKENDS: json.dumps([row_record(backend, exclude=BACKEND_PRIVATE)]).encode(),
    }
    job.delete()
    session.delete()
    rows, files = table_rows(), listing(folders["data"], folders["loras"])

    report = apply(tmp_path, members, mode="dry-run")

    assert report["status"] == "validated"
    assert report["parts"] == {
        "embeddings": 1, "generation_jobs": 1, "generation_results": 1, "sessions": 1, "preferences": 1,
        "resource_samples": 1, "backends": 1,
    }  # fmt: skip
    assert table_rows() == rows
    assert listing(folders["data"], folders["loras"]) == files
