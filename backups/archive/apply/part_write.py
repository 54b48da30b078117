"""Writing every part besides adapters (SPEC 6.10.3), in batches of 1,000 records checked as they are read:
jobs, results, sessions and feedback inserted when their id is absent (``replace`` overwrites rows with the same
id), preferences upserted by (type, value), backends created when the name is absent (never with a password),
resource samples inserted when (recorded_at, host) is absent, embeddings stored for existing adapters computed by
the current model. Inserts are plain INSERTs, so the database triggers (analytics rollups) see every row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models

from adapters.models import Adapter
from analytics.models import ResourceSample
from analytics.rollups import rollups_suspended
from backups.archive.apply.context import ApplyContext, batched, indexes_suspended, insert
from backups.archive.apply.part_records import BACKENDS_PART, PARTS, Part, part_values
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
from loraforge.media import media_path
from recommendations.encoder import model_name
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference
from recommendations.usage_triggers import usage_suspended

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
    """The primary keys among ``ids`` (one batch) that ``model``'s table holds: one plain query, not compiled by the
    ORM per batch (on PostgreSQL that cost a tenth of a million-job restore), ``= ANY`` of one array there."""
    if not ids:
        return set()
    pk = model._meta.pk
    assert pk is not None
    quote = connection.ops.quote_name
    column, table = quote(str(pk.column)), quote(model._meta.db_table)
    if connection.vendor == "postgresql":
        sql, params = f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)", [ids]  # noqa: S608 - quoted names
    else:
        params = [pk.get_db_prep_value(pk_value, connection) for pk_value in ids]
        sql = f"SELECT {column} FROM {table} WHERE {column} IN ({', '.join(['%s'] * len(ids))})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {pk.to_python(row[0]) for row in cursor.fetchall()}


def _overwrite(model: type[models.Model], pk: Any, values: dict[str, Any]) -> None:
    model._base_manager.filter(pk=pk).update(**{k: v for k, v in values.items() if k != "id"})


def _part(context: ApplyContext, part: Part) -> Any:
    return batched(part_values(context, part))


def _by_id(
    context: ApplyContext, part: Part, model: type[models.Model]
) -> Iterator[tuple[list[dict[str, Any]], set[Any]]]:
    """Batches of the records to write and the ids of the batch already present. Every record is checked here,
    present or not (the write is the check: an invalid one raises inside the transaction, which rolls back);
    a present one is written only when ``replace`` overwrites it."""
    for batch in _part(context, part):
        present = _present(model, [values["id"] for values in batch])
        yield (batch if context.replace else [values for values in batch if values["id"] not in present]), present


def backends_write(context: ApplyContext) -> dict[uuid.UUID, uuid.UUID]:
    local = dict(GenerationBackend.objects.values_list("name", "pk"))
    has_default = GenerationBackend.objects.filter(is_default=True).exists()
    mapping: dict[uuid.UUID, uuid.UUID] = {}
    created: list[dict[str, Any]] = []
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
        created.append(values)
        local[values["name"]] = mapping[values["id"]] = pk
    insert(context, GenerationBackend, created)
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
        rows = [values for values in wanted if values["adapter_id"] not in present]
        insert(context, AdapterEmbedding, rows)
        context.count("embeddings", len(rows))
    if other_model:
        context.warn(f"{other_model} embeddings skipped: computed by another model than '{current or 'off'}'")
    if missing:
        context.warn(f"{missing} embeddings skipped: their adapter is not in the library")


def _link_rows(job_id: uuid.UUID, links_values: list[dict[str, Any]], links: Links) -> list[dict[str, Any]]:
    return [
        {**values, "job_id": job_id, "adapter_id": links.adapter(values.get("adapter_id"))} for values in links_values
    ]


ANALYZE_FIRST = 10_000


def _analyze_as_tables_grow(inserted: int, next_at: int) -> int:
    """PostgreSQL: refresh the planner statistics of the jobs and links tables each time the rows inserted in this
    transaction double. The rollup triggers join each batch's transition table with these tables; planned with
    the statistics of a table that was (nearly) empty, each batch scanned the whole table: a restore of 1,000,000
    jobs into an empty database took 686 s, with this 264 s. ANALYZE runs inside the transaction."""
    if inserted < next_at or connection.vendor != "postgresql":
        return next_at
    with connection.cursor() as cursor:
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (DeliveryJob, DeliveryJobAdapter))
        cursor.execute(f"ANALYZE {tables}")
    return inserted * 2


BULK_JOBS = 10_000  # once a restore has inserted this many jobs, from an archive at least half the table's size ...


def _bulk_load(context: ApplyContext, *, inserted: int, existing: int) -> bool:
    """... the rest are loaded with the analytics triggers off and the rollups rebuilt at the end, in the same
    transaction (``rollups_suspended``): per-row triggers took most of a million-job restore into an empty SQLite
    database. On SQLite the plain indexes of jobs and links are rebuilt at the end too (``indexes_suspended``).
    Decided on rows really inserted, so a restore whose jobs are all present never pays a rebuild. The manifest's
    count may lie: it only chooses how the rows are written, never which."""
    return inserted >= BULK_JOBS and context.archive.declared_count("generation_jobs") * 2 >= existing


def jobs_write(context: ApplyContext, links: Links) -> None:
    with ExitStack() as bulk:
        _jobs_write(context, links, bulk)


def _jobs_write(context: ApplyContext, links: Links, bulk: ExitStack) -> None:
    inserted, analyze_at = 0, ANALYZE_FIRST
    existing, suspended = DeliveryJob.objects.count(), False
    for batch, present in _by_id(context, PART["generation_jobs"], DeliveryJob):
        if not suspended and _bulk_load(context, inserted=inserted, existing=existing):
            bulk.enter_context(rollups_suspended())
            bulk.enter_context(usage_suspended())  # the co-usage version: bumped once
            bulk.enter_context(indexes_suspended(DeliveryJob, DeliveryJobAdapter))  # recreated before the rebuild
            suspended = True
        jobs: list[dict[str, Any]] = []
        link_rows: list[dict[str, Any]] = []
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
            jobs.append(values)
            link_rows.extend(_link_rows(values["id"], job_links, links))
        insert(context, DeliveryJob, jobs)
        insert(context, DeliveryJobAdapter, link_rows, without={"id"})
        context.count("generation_jobs", len(jobs))
        inserted += len(jobs)
        analyze_at = _analyze_as_tables_grow(inserted, analyze_at)


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
    for batch, present in _by_id(context, PART["generation_results"], GenerationResult):
        jobs = _present(DeliveryJob, list({values["job_id"] for values in batch}))
        taken = set(GenerationResult.objects.order_by().filter(job_id__in=jobs).values_list("job_id", "index"))
        rows: list[dict[str, Any]] = []
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
            rows.append({k: v for k, v in values.items() if k != "member"})
        insert(context, GenerationResult, rows)
        context.count("generation_results", len(rows))
    if orphans:
        context.warn(f"{orphans} generation results skipped: their job is not in the database")


def sessions_write(context: ApplyContext, links: Links) -> None:
    for batch, present in _by_id(context, PART["sessions"], RecommendationSession):
        rows: list[dict[str, Any]] = []
        for values in batch:
            values["target_adapter_id"] = links.adapter(values.get("target_adapter_id"))
            values.setdefault("created_at", context.now)
            if values["id"] in present:
                if context.replace:
                    _overwrite(RecommendationSession, values["id"], values)
                    context.count("sessions")
                continue
            rows.append(values)
        insert(context, RecommendationSession, rows)
        context.count("sessions", len(rows))


def feedback_write(context: ApplyContext, links: Links) -> None:
    orphans = 0
    for batch, present in _by_id(context, PART["feedback"], RecommendationFeedback):
        sessions = _present(RecommendationSession, list({values["session_id"] for values in batch}))
        rows: list[dict[str, Any]] = []
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
            rows.append(values)
        insert(context, RecommendationFeedback, rows)
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
        rows: list[dict[str, Any]] = []
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
            rows.append(values)
        insert(context, UserPreference, rows)
        context.count("preferences", len(rows))


def samples_write(context: ApplyContext) -> None:
    for batch in _part(context, PART["resource_samples"]):
        moments = list({values["recorded_at"] for values in batch})
        present = set(
            ResourceSample.objects.order_by().filter(recorded_at__in=moments).values_list("recorded_at", "host")
        )
        rows: list[dict[str, Any]] = []
        for values in batch:
            key = (values["recorded_at"], values["host"])
            if key not in present:
                present.add(key)
                rows.append(values)
        insert(context, ResourceSample, rows, without={"id"})
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
