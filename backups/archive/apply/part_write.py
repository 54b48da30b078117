"""Writing every part besides adapters (SPEC 6.10.3), in batches of 1,000 records read again from the archive:
jobs, results, sessions and feedback inserted when their id is absent (``replace`` overwrites rows with the same
id), preferences upserted by (type, value), backends created when the name is absent (never with a password),
resource samples inserted when (recorded_at, host) is absent, embeddings stored for existing adapters computed by
the current model. Inserts are plain INSERTs, so the database triggers (analytics rollups) see every row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from adapters.models import Adapter
from analytics.models import ResourceSample
from backups.archive.apply.context import ApplyContext, batched, insert_rows
from backups.archive.apply.part_records import BACKENDS_PART, PARTS, Part, part_values
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
from loraforge.media import media_path
from recommendations.encoder import model_name
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference

PART = {part.key: part for part in PARTS}


@dataclass
class Links:
    """How archive ids become local ids: adapters matched to another row, backends matched by name."""

    adapters: dict[uuid.UUID, uuid.UUID]
    adapter_ids: set[uuid.UUID] = field(default_factory=set)  # every adapter in the database after the adapters
    backends: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # archive id -> local id
    backend_ids: set[uuid.UUID] = field(default_factory=set)  # every backend in the database

    def backend(self, archive_id: uuid.UUID | None) -> uuid.UUID | None:
        if archive_id is None:
            return None
        local = self.backends.get(archive_id, archive_id)
        return local if local in self.backend_ids else None

    def adapter(self, archive_id: uuid.UUID | None) -> uuid.UUID | None:
        if archive_id is None:
            return None
        local = self.adapters.get(archive_id, archive_id)
        return local if local in self.adapter_ids else None


def _present(model: type[models.Model], ids: list[Any]) -> set[Any]:
    return set(model._base_manager.order_by().filter(pk__in=ids).values_list("pk", flat=True))


def _overwrite(model: type[models.Model], pk: Any, values: dict[str, Any]) -> None:
    model._base_manager.filter(pk=pk).update(**{k: v for k, v in values.items() if k != "id"})


def _part(context: ApplyContext, part: Part) -> Any:
    return batched(part_values(context, part))


def backends_write(context: ApplyContext) -> dict[uuid.UUID, uuid.UUID]:
    local = dict(GenerationBackend.objects.values_list("name", "pk"))
    has_default = GenerationBackend.objects.filter(is_default=True).exists()
    mapping: dict[uuid.UUID, uuid.UUID] = {}
    created = []
    for values in part_values(context, BACKENDS_PART):
        if values["name"] in local:
            mapping[values["id"]] = local[values["name"]]
            if context.replace:
                fields = {k: values[k] for k in ("url", "enabled") if k in values}
                GenerationBackend.objects.filter(pk=local[values["name"]]).update(**fields, updated_at=context.now)
                context.count("backends")
            continue
        pk = values["id"] if not _present(GenerationBackend, [values["id"]]) else uuid.uuid4()
        values.update(id=pk, password=None)
        values["is_default"] = bool(values.get("is_default")) and not has_default
        values.setdefault("created_at", context.now)
        values["updated_at"] = context.now
        created.append(GenerationBackend(**values))
        local[values["name"]] = mapping[values["id"]] = pk
    insert_rows(GenerationBackend, created)
    context.count("backends", len(created))
    return mapping


def embeddings_write(context: ApplyContext, links: Links) -> None:
    current = model_name()
    other_model = missing = 0
    for batch in _part(context, PART["embeddings"]):
        wanted = []
        for values in batch:
            adapter_id = links.adapter(values["adapter_id"])
            if adapter_id is None:
                missing += 1
            elif values["model_name"] != current:
                other_model += 1
            else:
                wanted.append({**values, "adapter_id": adapter_id})
        present = _present(AdapterEmbedding, [values["adapter_id"] for values in wanted])
        if context.replace:
            AdapterEmbedding.objects.filter(pk__in=present).delete()
            present = set()
        rows = [AdapterEmbedding(**values) for values in wanted if values["adapter_id"] not in present]
        insert_rows(AdapterEmbedding, rows)
        context.count("embeddings", len(rows))
    if other_model:
        context.warn(f"{other_model} embeddings skipped: computed by another model than '{current or 'off'}'")
    if missing:
        context.warn(f"{missing} embeddings skipped: their adapter is not in the library")


def _link_rows(job_id: uuid.UUID, links_values: list[dict[str, Any]], links: Links) -> list[DeliveryJobAdapter]:
    return [
        DeliveryJobAdapter(**{**values, "job_id": job_id, "adapter_id": links.adapter(values.get("adapter_id"))})
        for values in links_values
    ]


def jobs_write(context: ApplyContext, links: Links) -> None:
    for batch in _part(context, PART["generation_jobs"]):
        present = _present(DeliveryJob, [values["id"] for values in batch])
        jobs, link_rows = [], []
        for values in batch:
            job_links = values.pop("adapter_links")
            values["backend_id"] = links.backend(values.get("backend_id"))
            if values["id"] in present:
                if context.replace:
                    _overwrite(DeliveryJob, values["id"], values)
                    DeliveryJobAdapter.objects.filter(job_id=values["id"]).delete()
                    link_rows.extend(_link_rows(values["id"], job_links, links))
                    context.count("generation_jobs")
                continue
            values.setdefault("updated_at", context.now)
            jobs.append(DeliveryJob(**values))
            link_rows.extend(_link_rows(values["id"], job_links, links))
        insert_rows(DeliveryJob, jobs)
        DeliveryJobAdapter.objects.bulk_create(link_rows, batch_size=500)
        context.count("generation_jobs", len(jobs))


def _image(context: ApplyContext, values: dict[str, Any], claimed: set[str]) -> None:
    member = values["member"]
    target = media_path(values["file"])
    if member is None or target is None or str(target) in claimed:
        return
    if target.exists():
        context.warn(f"Not overwriting existing file: {target}")
        return
    claimed.add(str(target))
    context.stage(member, target)
    context.count("images")


def results_write(context: ApplyContext) -> None:
    claimed: set[str] = set()
    orphans = 0
    for batch in _part(context, PART["generation_results"]):
        present = _present(GenerationResult, [values["id"] for values in batch])
        jobs = _present(DeliveryJob, list({values["job_id"] for values in batch}))
        taken = set(GenerationResult.objects.order_by().filter(job_id__in=jobs).values_list("job_id", "index"))
        rows = []
        for values in batch:
            if values["job_id"] not in jobs:
                orphans += 1
                continue
            if values["id"] in present:
                if context.replace:
                    _overwrite(GenerationResult, values["id"], {k: v for k, v in values.items() if k != "member"})
                    _image(context, values, claimed)
                    context.count("generation_results")
                continue
            if (values["job_id"], values["index"]) in taken:
                continue
            taken.add((values["job_id"], values["index"]))
            _image(context, values, claimed)
            rows.append(GenerationResult(**{k: v for k, v in values.items() if k != "member"}))
        insert_rows(GenerationResult, rows)
        context.count("generation_results", len(rows))
    if orphans:
        context.warn(f"{orphans} generation results skipped: their job is not in the database")


def sessions_write(context: ApplyContext, links: Links) -> None:
    for batch in _part(context, PART["sessions"]):
        present = _present(RecommendationSession, [values["id"] for values in batch])
        rows = []
        for values in batch:
            values["target_adapter_id"] = links.adapter(values.get("target_adapter_id"))
            values.setdefault("created_at", context.now)
            if values["id"] in present:
                if context.replace:
                    _overwrite(RecommendationSession, values["id"], values)
                    context.count("sessions")
                continue
            rows.append(RecommendationSession(**values))
        insert_rows(RecommendationSession, rows)
        context.count("sessions", len(rows))


def feedback_write(context: ApplyContext, links: Links) -> None:
    orphans = 0
    for batch in _part(context, PART["feedback"]):
        present = _present(RecommendationFeedback, [values["id"] for values in batch])
        sessions = _present(RecommendationSession, list({values["session_id"] for values in batch}))
        rows = []
        for values in batch:
            values["adapter_id"] = links.adapter(values["adapter_id"])
            if values["adapter_id"] is None or values["session_id"] not in sessions:
                orphans += 1
                continue
            values.setdefault("created_at", context.now)
            if values["id"] in present:
                if context.replace:
                    _overwrite(RecommendationFeedback, values["id"], values)
                    context.count("feedback")
                continue
            rows.append(RecommendationFeedback(**values))
        insert_rows(RecommendationFeedback, rows)
        context.count("feedback", len(rows))
    if orphans:
        context.warn(f"{orphans} feedback records skipped: their session or adapter is not in the database")


def preferences_write(context: ApplyContext) -> None:
    for batch in _part(context, PART["preferences"]):
        values_by_key = {(v["preference_type"], v["preference_value"]): v for v in batch}
        existing = {
            (row.preference_type, row.preference_value): row
            for row in UserPreference.objects.filter(preference_value__in=[key[1] for key in values_by_key])
        }
        taken_ids = _present(UserPreference, [v["id"] for v in batch if "id" in v])
        rows = []
        for key, values in values_by_key.items():
            row = existing.get(key)
            if row is not None:
                if context.replace and "confidence" in values and row.confidence != values["confidence"]:
                    UserPreference.objects.filter(pk=row.pk).update(
                        confidence=values["confidence"], updated_at=context.now
                    )
                    context.count("preferences")
                continue
            if values.get("id") is None or values["id"] in taken_ids:
                values["id"] = uuid.uuid4()
            values.setdefault("last_evidence_at", context.now)
            values.setdefault("created_at", context.now)
            values.setdefault("updated_at", context.now)
            rows.append(UserPreference(**values))
        insert_rows(UserPreference, rows)
        context.count("preferences", len(rows))


def samples_write(context: ApplyContext) -> None:
    for batch in _part(context, PART["resource_samples"]):
        moments = list({values["recorded_at"] for values in batch})
        present = set(
            ResourceSample.objects.order_by().filter(recorded_at__in=moments).values_list("recorded_at", "host")
        )
        rows = []
        for values in batch:
            key = (values["recorded_at"], values["host"])
            if key not in present:
                present.add(key)
                rows.append(ResourceSample(**values))
        ResourceSample.objects.bulk_create(rows)
        context.count("resource_samples", len(rows))


def parts_write(
    context: ApplyContext, adapter_map: dict[uuid.UUID, uuid.UUID], backend_map: dict[uuid.UUID, uuid.UUID]
) -> None:
    """Every part in dependency order (backends were written before the adapters)."""
    links = Links(
        adapters=adapter_map,
        adapter_ids=set(Adapter.objects.values_list("pk", flat=True)),
        backends=backend_map,
        backend_ids=set(GenerationBackend.objects.values_list("pk", flat=True)),
    )
    embeddings_write(context, links)
    jobs_write(context, links)
    results_write(context)
    sessions_write(context, links)
    feedback_write(context, links)
    preferences_write(context)
    samples_write(context)
