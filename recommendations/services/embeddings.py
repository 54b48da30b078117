"""Computing and storing sentence embeddings (SPEC 3.5, 5.6, 6.7.1, 8): the batch computation behind the
``recommendations.compute_embeddings`` task, the API's embeddings jobs and ``recompute_embeddings``; and the
debounced sweep that follows adapter writes, so a burst of creates costs a few batch tasks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from adapters.models import Adapter
from loraforge.embedded import embedded_worker_running
from loraforge.jobs.background import (
    background_job_create,
    background_job_take,
    job_enqueue,
    job_fail,
    job_keep_result,
    job_succeed,
)
from loraforge.jobs.deadline import TIME_LIMIT_EXCEEDED
from loraforge.jobs.enqueue import task_send
from loraforge.jobs.reporters import JobProgressReporter, ProgressTee
from loraforge.models import BackgroundJob
from loraforge.models.jobs import BackgroundJobKind
from recommendations.documents import SNAPSHOT_FIELDS, semantic_text, text_sha256
from recommendations.encoder import device_name, encoder_get, model_name, unavailable_reason
from recommendations.index import index_current
from recommendations.models import AdapterEmbedding
from recommendations.process_encoder import process_encoder_get
from recommendations.scoring import popularity_score, quality_score, recency_score
from recommendations.triggers import adapter_phrases

logger = logging.getLogger("loraforge.recommendations")

TASK = "recommendations.compute_embeddings"
DEFAULT_BATCH_SIZE = 32
SWEEP_DEBOUNCE_SECONDS = 3.0
_SWEEP_KEY = "recommendations:sweep-scheduled"
ERRORS_KEPT = 100


class BatchEncoder(Protocol):
    dim: int
    device: str

    def encode_rows(self, texts: list[str], *, batch_size: int = 32) -> list[bytes]: ...


class ItemsProgress(Protocol):
    def step(self, *, done: int, total: int, message: str) -> None: ...

    def cancelled(self) -> bool: ...


@dataclass
class EmbeddingsReport:
    processed_count: int = 0
    skipped_count: int = 0
    error_count: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    semantic_available: bool = True
    reason: str | None = None
    device: str | None = None
    cancelled: bool = False

    def result(self) -> dict[str, Any]:
        return {
            "processed_count": self.processed_count,
            "skipped_count": self.skipped_count,
            "error_count": self.error_count,
            "processing_time_seconds": round(self.seconds, 3),
            "errors": self.errors[:ERRORS_KEPT],
            "completed_at": timezone.now().isoformat().replace("+00:00", "Z"),
            "semantic_available": self.semantic_available,
        }


def _batches(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def embeddings_compute(
    *, adapter_ids: Sequence[str | UUID], force: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ItemsProgress | None = None,
) -> EmbeddingsReport:  # fmt: skip
    """Embed the given adapters in batches; current vectors are skipped unless ``force``. Semantic embeddings being
    unavailable is a report, not an error."""
    started = time.perf_counter()
    ids = [str(adapter_id) for adapter_id in adapter_ids]
    report = EmbeddingsReport()
    encoder = _batch_encoder() if ids else None
    if encoder is None:
        report.semantic_available = ids == [] and unavailable_reason() is None
        report.reason = unavailable_reason()
        report.skipped_count = len(ids)
        report.seconds = time.perf_counter() - started
        return report
    report.device = encoder.device
    done = 0
    if progress is not None:
        progress.step(done=0, total=len(ids), message=f"Embedding {len(ids)} adapters")
    for batch in _batches(ids, max(1, batch_size)):
        if progress is not None and progress.cancelled():
            report.cancelled = True
            break
        _embed_batch(encoder, batch, force=force, batch_size=batch_size, report=report)
        done += len(batch)
        if progress is not None:
            progress.step(done=done, total=len(ids), message=f"Embedded {done}/{len(ids)} adapters")
    report.seconds = time.perf_counter() - started
    return report


def _batch_encoder() -> BatchEncoder | None:
    """In the embedded shape a child process embeds (the web server keeps its memory and CPU); else this process."""
    if embedded_worker_running():
        return process_encoder_get()
    return encoder_get()


def _embed_batch(
    encoder: BatchEncoder, ids: list[str], *, force: bool, batch_size: int, report: EmbeddingsReport
) -> None:
    name = model_name()
    adapters = {str(a.pk): a for a in Adapter.objects.filter(pk__in=ids).only(*SNAPSHOT_FIELDS, "updated_at")}
    stored = AdapterEmbedding.objects.filter(adapter_id__in=ids, model_name=name).only("text_sha256", "computed_at")
    current = {str(row.adapter_id): row for row in stored}
    todo: list[tuple[Adapter, str, str]] = []
    unchanged: list[AdapterEmbedding] = []
    for adapter_id in ids:
        adapter = adapters.get(adapter_id)
        if adapter is None:  # deleted meanwhile
            report.skipped_count += 1
            continue
        text = semantic_text(adapter)
        sha = text_sha256(text)
        row = current.get(adapter_id)
        if not force and row is not None and row.text_sha256 == sha:
            report.skipped_count += 1
            if row.computed_at < adapter.updated_at:
                row.computed_at = adapter.updated_at
                unchanged.append(row)
            continue
        todo.append((adapter, text, sha))
    _mark_checked(unchanged)
    if not todo:
        return
    try:
        vectors = encoder.encode_rows([text for _, text, _ in todo], batch_size=batch_size)
    except SoftTimeLimitExceeded:
        raise  # the task's time is up: the job fails, it is not a per-adapter error
    except Exception as exc:
        logger.exception("Embedding a batch of %d adapters failed", len(todo))
        for adapter, _, _ in todo:
            _error(report, str(adapter.pk), f"Encoding failed ({type(exc).__name__})")
        return
    now = timezone.now()
    rows = [
        AdapterEmbedding(
            adapter_id=adapter.pk, model_name=name, dim=encoder.dim, vector=vector,
            text_sha256=sha, quality_score=quality_score(adapter.stats),
            popularity_score=popularity_score(adapter.stats),
            recency_score=recency_score(adapter.published_at, adapter.created_at, now),
            normalized_triggers=adapter_phrases(
                triggers=adapter.triggers, trained_words=adapter.trained_words,
                activation_text=adapter.activation_text, header_metadata=adapter.header_metadata,
            ),
            computed_at=now,
        )
        for (adapter, _, sha), vector in zip(todo, vectors, strict=True)
    ]  # fmt: skip
    _store(rows, report)


_UPDATED = ["model_name", "dim", "vector", "text_sha256", "quality_score", "popularity_score", "recency_score",
            "normalized_triggers", "computed_at"]  # fmt: skip


def _mark_checked(rows: list[AdapterEmbedding]) -> None:
    """Vectors found current for an adapter written since (a weight, a flag: nothing the text holds) are marked as
    checked at that write, so the adapter leaves the pending list instead of being re-read by every sweep. The
    adapter's ``updated_at`` as read, not now: a text change written meanwhile is newer and keeps it pending."""
    if rows:
        AdapterEmbedding.objects.bulk_update(rows, ["computed_at"])


def _store(rows: list[AdapterEmbedding], report: EmbeddingsReport) -> None:
    """Upsert the batch; an adapter deleted since it was read is skipped (one row at a time after a conflict)."""
    try:
        with transaction.atomic():
            existing = set(Adapter.objects.filter(pk__in=[row.adapter_id for row in rows]).values_list("pk", flat=True))
            kept = [row for row in rows if row.adapter_id in existing]
            AdapterEmbedding.objects.bulk_create(
                kept, update_conflicts=True, unique_fields=["adapter"], update_fields=_UPDATED
            )
        report.processed_count += len(kept)
        report.skipped_count += len(rows) - len(kept)
        return
    except IntegrityError:
        pass
    for row in rows:
        try:
            with transaction.atomic():
                AdapterEmbedding.objects.bulk_create(
                    [row], update_conflicts=True, unique_fields=["adapter"], update_fields=_UPDATED
                )
            report.processed_count += 1
        except IntegrityError:
            report.skipped_count += 1


def _error(report: EmbeddingsReport, adapter_id: str, message: str) -> None:
    report.error_count += 1
    report.errors.append({"adapter_id": adapter_id, "error": message})


# --- which adapters ---------------------------------------------------------------------------------


def embeddings_pending_ids() -> list[str]:
    """Adapters without a vector of the current model, or changed since it was computed (its text may differ)."""
    name = model_name()
    missing = Q(embedding__isnull=True) | ~Q(embedding__model_name=name)
    changed = Q(embedding__computed_at__lt=F("updated_at"))
    return [str(pk) for pk in Adapter.objects.filter(missing | changed).order_by("pk").values_list("pk", flat=True)]


def embeddings_target_ids(*, adapter_ids: Sequence[str | UUID] = (), include_current: bool = False) -> list[str]:
    """The given adapters, else every adapter (``include_current``) or those pending."""
    if adapter_ids:
        return [str(adapter_id) for adapter_id in adapter_ids]
    if include_current:
        return [str(pk) for pk in Adapter.objects.order_by("pk").values_list("pk", flat=True)]
    return embeddings_pending_ids()


def unknown_adapter_ids(adapter_ids: Sequence[str | UUID]) -> list[str]:
    wanted = [str(adapter_id) for adapter_id in adapter_ids]
    known = {str(pk) for pk in Adapter.objects.filter(pk__in=wanted).values_list("pk", flat=True)}
    return [adapter_id for adapter_id in wanted if adapter_id not in known]


# --- jobs -------------------------------------------------------------------------------------------


def embeddings_job_start(
    *, adapter_ids: Sequence[str | UUID] = (), force: bool = False, compute_all: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE, created_via: str = "api", enqueue: bool = True,
) -> tuple[BackgroundJob, int]:  # fmt: skip
    """A pending ``embeddings`` job and how many adapters it will consider; the task is sent on commit.
    ``enqueue=False`` (``recompute_embeddings``) leaves the job ``pending`` for ``embeddings_job_run`` inline."""
    ids = [str(adapter_id) for adapter_id in adapter_ids] or None
    queued = len(ids) if ids else (Adapter.objects.count() if force or compute_all else len(embeddings_pending_ids()))
    params = {"adapter_ids": ids, "force_recompute": force, "compute_all": compute_all, "batch_size": batch_size}
    with transaction.atomic():
        job = background_job_create(kind=BackgroundJobKind.EMBEDDINGS, params=params, created_via=created_via)
        if enqueue:
            transaction.on_commit(lambda: job_enqueue(job))
    return job, queued


def embeddings_job_run(*, job_id: str | UUID, progress: ItemsProgress | None = None) -> BackgroundJob | None:
    """Run a pending embeddings job to its end: the task, and ``recompute_embeddings`` inline with its console bar
    as ``progress``. Idempotent: a job already taken or finished is left alone."""
    job, started = background_job_take(job_id=job_id, kind=BackgroundJobKind.EMBEDDINGS)
    if job is None or not started:
        return job
    report = _job_compute(job, progress)
    if report is not None:
        result = report.result()
        if report.cancelled or not job_succeed(job, result, message=embeddings_summary(report)):
            job_keep_result(job, result)  # cancelled while it ran: keep the partial report
    return job


def _job_compute(job: BackgroundJob, progress: ItemsProgress | None) -> EmbeddingsReport | None:
    """The job's computation; without semantic embeddings the lexical index is rebuilt instead (SPEC 8)."""
    params = job.params or {}
    with JobProgressReporter(job) as reporter:
        try:
            ids = embeddings_target_ids(
                adapter_ids=params.get("adapter_ids") or (),
                include_current=bool(params.get("force_recompute") or params.get("compute_all")),
            )
            report = embeddings_compute(
                adapter_ids=ids, force=bool(params.get("force_recompute")),
                batch_size=int(params.get("batch_size") or DEFAULT_BATCH_SIZE),
                progress=ProgressTee(reporter, progress),
            )  # fmt: skip
            if not report.semantic_available:
                index_current(force=True, semantic=False)
            return report
        except SoftTimeLimitExceeded:
            job_fail(job, TIME_LIMIT_EXCEEDED)
        except Exception:
            logger.exception("Embeddings job %s failed", job.pk)
            job_fail(job, "Computing embeddings failed")
    return None


def embeddings_summary(report: EmbeddingsReport) -> str:
    """``Embeddings: 40 computed, 2 skipped, 0 errors in 3.2 s (model …, device cpu)`` (SPEC 8), or what was done
    without semantic embeddings."""
    if not report.semantic_available:
        return f"Semantic embeddings unavailable ({report.reason or 'unknown reason'}); lexical index rebuilt only."
    return (
        f"Embeddings: {report.processed_count} computed, {report.skipped_count} skipped, {report.error_count} errors "
        f"in {report.seconds:.1f} s (model {model_name()}, device {report.device or device_name()})"
    )


# --- the sweep that follows adapter writes -----------------------------------------------------------


def embeddings_sweep_schedule() -> bool:
    """Queue one sweep a few seconds from now unless one is already waiting (the cache's atomic ``add``): every
    adapter written meanwhile is picked up by that sweep."""
    if unavailable_reason() is not None:
        return False
    if not cache.add(_SWEEP_KEY, 1, timeout=SWEEP_DEBOUNCE_SECONDS):
        return False
    try:
        task_send(TASK, args=[None], countdown=SWEEP_DEBOUNCE_SECONDS)
    except Exception:  # the broker is down: the next write or ``recompute_embeddings`` catches up
        cache.delete(_SWEEP_KEY)
        logger.warning("Could not queue the embeddings sweep", exc_info=True)
        return False
    return True


def embeddings_sweep() -> EmbeddingsReport:
    """Embed every pending adapter (the debounced task after adapter writes)."""
    ids = embeddings_pending_ids()
    report = embeddings_compute(adapter_ids=ids)
    if ids:
        logger.info(
            "Embeddings sweep: %d computed, %d skipped, %d errors in %.2f s",
            report.processed_count, report.skipped_count, report.error_count, report.seconds,
        )  # fmt: skip
    return report
