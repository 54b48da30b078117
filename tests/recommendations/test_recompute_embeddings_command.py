"""``manage.py recompute_embeddings`` (SPEC 8): which adapters it embeds, the vectors it stores (SPEC 3.5), the
summary, ``--json``, exit codes and the job it records."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from adapters.models import Adapter
from loraforge.models import BackgroundJob
from recommendations.documents import semantic_text
from recommendations.encoder import Encoder, encoder_get
from recommendations.index import index_peek
from recommendations.models import AdapterEmbedding
from tests.factories import AdapterFactory
from tests.processes import manage_command
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SUMMARY = re.compile(
    r"^Embeddings: (?P<computed>\d+) computed, (?P<skipped>\d+) skipped, (?P<errors>\d+) errors "
    r"in \d+\.\d s \(model (?P<model>.+), device (?P<device>cpu|cuda)\)$"
)


def run(*args: str, stderr: io.StringIO | None = None) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), stderr or io.StringIO()
    try:
        call_command("recompute_embeddings", *args, stdout=stdout, stderr=stderr)
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    return code, stdout.getvalue(), stderr.getvalue()


def counts(stdout: str) -> tuple[int, int, int]:
    match = SUMMARY.match(stdout.strip())
    assert match, stdout
    assert match["model"] == MODEL
    return int(match["computed"]), int(match["skipped"]), int(match["errors"])


@pytest.fixture
def adapters():
    return [
        AdapterFactory(name="Starry Eyes", description="Sparkling anime eyes", tags=["anime", "eyes"]),
        AdapterFactory(name="Ink Wash", description="Traditional ink painting", tags=["ink"]),
        AdapterFactory(name="Neon City", description="Cyberpunk streets at night", tags=["city"]),
    ]


def change_description(adapter: Adapter, description: str) -> None:
    adapter.description = description
    adapter.save()


def test_embeds_every_adapter_without_a_vector(adapters):
    code, stdout, stderr = run("--no-progress")
    assert code == 0, stderr
    assert counts(stdout) == (3, 0, 0)
    assert stderr == ""
    assert AdapterEmbedding.objects.filter(model_name=MODEL).count() == 3


def test_stored_vectors_are_normalised_little_endian_float32_of_the_semantic_text(adapters):
    run("--no-progress")
    model = encoder_get()
    assert model is not None
    for adapter in adapters:
        row = AdapterEmbedding.objects.get(adapter=adapter)
        text = semantic_text(Adapter.objects.get(pk=adapter.pk))
        assert row.dim == 384
        assert len(bytes(row.vector)) == 4 * row.dim
        vector = np.frombuffer(bytes(row.vector), dtype="<f4")
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        raw = np.asarray(model.model.encode([text], convert_to_numpy=True)[0], dtype=np.float64)
        np.testing.assert_allclose(vector, raw / np.linalg.norm(raw), atol=1e-5)
        assert row.text_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_by_default_only_a_stale_vector_is_recomputed(adapters):
    run("--no-progress")
    before = {row.adapter_id: row for row in AdapterEmbedding.objects.all()}
    change_description(adapters[0], "Glittering starry eyes")
    code, stdout, _stderr = run("--no-progress")
    assert code == 0
    assert counts(stdout) == (1, 0, 0)
    after = {row.adapter_id: row for row in AdapterEmbedding.objects.all()}
    stale, current = adapters[0].pk, adapters[1].pk
    assert after[stale].text_sha256 != before[stale].text_sha256
    assert after[stale].text_sha256 == hashlib.sha256(semantic_text(adapters[0]).encode()).hexdigest()
    assert bytes(after[stale].vector) != bytes(before[stale].vector)
    assert after[current].computed_at == before[current].computed_at


def test_nothing_to_do_when_every_vector_is_current(adapters):
    run("--no-progress")
    code, stdout, _stderr = run("--no-progress")
    assert code == 0
    assert counts(stdout) == (0, 0, 0)


def test_all_considers_current_vectors_and_skips_them(adapters):
    run("--no-progress")
    change_description(adapters[2], "Rainy neon streets")
    code, stdout, _stderr = run("--all", "--no-progress")
    assert code == 0
    assert counts(stdout) == (1, 2, 0)


def test_force_recomputes_current_vectors(adapters):
    run("--no-progress")
    before = {row.adapter_id: row.computed_at for row in AdapterEmbedding.objects.all()}
    code, stdout, _stderr = run("--force", "--no-progress")
    assert code == 0
    assert counts(stdout) == (3, 0, 0)
    assert all(row.computed_at > before[row.adapter_id] for row in AdapterEmbedding.objects.all())


def test_adapter_limits_the_run_to_the_given_ids(adapters):
    code, stdout, _stderr = run("--adapter", str(adapters[0].pk), "--adapter", str(adapters[2].pk), "--no-progress")
    assert code == 0
    assert counts(stdout) == (2, 0, 0)
    assert set(AdapterEmbedding.objects.values_list("adapter_id", flat=True)) == {adapters[0].pk, adapters[2].pk}
    assert BackgroundJob.objects.get().params["adapter_ids"] == [str(adapters[0].pk), str(adapters[2].pk)]


def test_unknown_adapter_ids_exit_1_before_any_job(adapters):
    missing = str(uuid.uuid4())
    code, stdout, stderr = run("--adapter", str(adapters[0].pk), "--adapter", missing, "--adapter", "nope")
    assert (code, stdout) == (1, "")
    assert stderr.strip() == f"Unknown adapter ids: nope, {missing}"
    assert not BackgroundJob.objects.exists()
    assert not AdapterEmbedding.objects.exists()


def test_json_prints_the_job_result(adapters):
    code, stdout, _stderr = run("--json", "--no-progress", "--batch-size", "2")
    report = json.loads(stdout)
    job = BackgroundJob.objects.get()
    assert code == 0
    assert report == job.result
    assert set(report) == {
        "processed_count", "skipped_count", "error_count", "processing_time_seconds", "errors", "completed_at",
        "semantic_available",
    }  # fmt: skip
    assert (report["processed_count"], report["skipped_count"], report["error_count"]) == (3, 0, 0)
    assert report["errors"] == []
    assert report["semantic_available"] is True
    assert job.params["batch_size"] == 2


def test_records_a_cli_job_and_publishes_its_events(adapters):
    recorder = EventRecorder()
    try:
        run("--no-progress", "--batch-size", "1")
        events = job_events(recorder.events())
    finally:
        recorder.close()
    job = BackgroundJob.objects.get()
    assert (job.kind, job.status, job.created_via, job.progress) == ("embeddings", "succeeded", "cli", 1.0)
    assert job.message.startswith("Embeddings: 3 computed, 0 skipped, 0 errors in ")
    assert {event["kind"] for event in events} == {"embeddings"}
    assert {event["job_id"] for event in events} == {str(job.pk)}
    statuses = [event["status"] for event in events]
    assert statuses[:2] == ["pending", "running"]
    assert statuses[-1] == "succeeded"
    assert events[-1]["result"] == job.result


def test_unavailable_model_rebuilds_the_lexical_index_only(adapters, unavailable_model):
    code, stdout, stderr = run("--no-progress")
    assert code == 0, stderr
    assert stdout.strip() == (
        f"Semantic embeddings unavailable (Model folder not found: {unavailable_model}); lexical index rebuilt only."
    )
    assert not AdapterEmbedding.objects.exists()
    index = index_peek()
    assert index is not None
    assert index.lexical is not None
    assert len(index.catalogue) == 3
    job = BackgroundJob.objects.get()
    assert job.status == "succeeded"
    assert (job.result["semantic_available"], job.result["skipped_count"]) == (False, 3)


def test_per_item_errors_exit_2(adapters, monkeypatch):
    def broken(self, texts, *, batch_size=32, background=False):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Encoder, "encode", broken)
    code, stdout, _stderr = run("--json", "--no-progress")
    report = json.loads(stdout)
    assert code == 2
    assert (report["processed_count"], report["error_count"]) == (0, 3)
    assert {error["adapter_id"] for error in report["errors"]} == {str(adapter.pk) for adapter in adapters}
    assert {error["error"] for error in report["errors"]} == {"Encoding failed (RuntimeError)"}
    assert BackgroundJob.objects.get().status == "succeeded"


def test_a_failed_job_exits_1_with_its_error(adapters, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("recommendations.services.embeddings.embeddings_compute", explode)
    code, stdout, stderr = run("--no-progress")
    assert (code, stdout) == (1, "")
    assert stderr.strip() == "Computing embeddings failed"
    assert BackgroundJob.objects.get().status == "failed"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_counts_adapters_on_a_terminal(adapters):
    code, _stdout, stderr = run("--batch-size", "1", stderr=Terminal())
    assert code == 0
    assert "3/3" in stderr
    assert "adapter" in stderr


def test_no_progress_bar_with_no_progress_or_without_a_terminal(adapters):
    assert run("--no-progress", stderr=Terminal())[2] == ""
    assert run("--all")[2] == ""


@pytest.mark.parametrize("size", ["0", "129", "many"])
def test_bad_batch_size_is_a_usage_error_exit_1(tmp_path, size):
    result = manage_command("recompute_embeddings", "--batch-size", size, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "--batch-size" in result.stderr
