"""The plan of the adapter records (SPEC 6.10.3), made before anything is written: each record's match (id, else
SHA-256, else name and version), its status, the changes of a matched row, where its files go."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.models import Adapter, BaseFamily
from adapters.scanner.identity import name_holder
from adapters.scanner.paths import path_exists
from backups.archive.apply.adapter_files import Location, PathClaims, file_not_local, location_plan
from backups.archive.apply.adapter_records import AdapterRecord, adapter_members, adapter_record_read
from backups.archive.apply.context import ApplyContext, batched

USER_OWNED = frozenset({"active", "weight", "ordinal", "locked_fields"})
UNIONED = ("tags", "trained_words", "triggers")
LOCATION_FIELDS = frozenset(
    {"file_path", "json_file_path", "json_file_mtime", "json_file_size", "sidecars", "preview_path", "missing_since",
     "primary_file_local_path"}
)  # fmt: skip
# What the file on disk determines: a replace keeps the row's when its own, different file stays in place.
FILE_IDENTITY = frozenset(
    {"format", "file_size", "file_mtime", "sha256", "autov2", "autov3", "hash_status", "header_metadata",
     "header_error", "network_dim", "network_alpha", "network_module", "output_name", "header_tags"}
)  # fmt: skip
# Never taken from a record for a matched row: identity, this host's bookkeeping and timestamps.
KEPT = frozenset({"id", "created_at", "updated_at", "last_ingested_at", "usage_count", "last_used_at"})

CREATED, UPDATED, SKIPPED = "created", "updated", "skipped"


@dataclass
class AdapterPlan:
    member: str
    archive_id: uuid.UUID
    name: str
    status: str
    local_id: uuid.UUID | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    location: Location | None = None
    normalised: dict[str, Any] = field(default_factory=dict)  # a created row's values the API checks changed


@dataclass
class AdapterPlans:
    plans: list[AdapterPlan] = field(default_factory=list)
    id_map: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # archive id -> local id

    def with_status(self, status: str) -> list[AdapterPlan]:
        return [plan for plan in self.plans if plan.status == status]


def is_empty(name: str, value: Any) -> bool:
    if name == "base_family":
        return value in (None, "", BaseFamily.UNKNOWN)
    return value is None or value == "" or value == [] or value == {}


def _union(current: list[Any] | None, new: list[Any] | None) -> list[Any]:
    merged = list(current or [])
    merged.extend(item for item in new or [] if item not in merged)
    return merged


def merge_changes(row: Adapter, values: dict[str, Any]) -> dict[str, Any]:
    """Merge (SPEC 6.10.3, 6.6.7): empty, unlocked fields are filled; tags, trained words and triggers unioned;
    user-owned fields and non-empty values never change."""
    locked = set(row.locked_fields or [])
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name in USER_OWNED or name in KEPT or name in LOCATION_FIELDS or name in locked:
            continue
        current = getattr(row, name)
        if name in UNIONED:
            merged = _union(current, value)
            if merged != list(current or []):
                changes[name] = merged
        elif is_empty(name, current) and not is_empty(name, value):
            changes[name] = value
    return changes


def replace_changes(row: Adapter, values: dict[str, Any]) -> dict[str, Any]:
    """Replace: the archive's values, curation and ``locked_fields`` included; the row keeps id and created_at
    (and the facts of its own file when that file is present and holds other content)."""
    other_file = bool(row.sha256) and row.sha256 != values.get("sha256") and _file_present(row.file_path)
    kept = KEPT | LOCATION_FIELDS | (FILE_IDENTITY if other_file else frozenset())
    return {name: value for name, value in values.items() if name not in kept and getattr(row, name) != value}


class Planner:
    def __init__(self, context: ApplyContext) -> None:
        self.context = context
        self.result = AdapterPlans()
        self.claims = PathClaims()
        self.ids: set[uuid.UUID] = set()
        self.keys: dict[tuple[str, str], uuid.UUID] = {}
        self.shas: set[str] = set()
        self.local_ids: set[uuid.UUID] = set()

    def sha_of(self, record: AdapterRecord) -> str | None:
        sha = record.values.get("sha256")
        if not sha and record.file_member is not None:
            sha = self.context.archive.members[record.file_member].sha256
        return sha.lower() if sha else None

    def plan_batch(self, records: list[AdapterRecord]) -> None:
        """Match a batch in three queries at most, each only for the records the previous one left unmatched."""
        rows = Adapter.objects.order_by()
        matched: dict[int, Adapter] = {}
        by_id = {row.pk: row for row in rows.filter(pk__in=[record.values["id"] for record in records])}
        for index, record in enumerate(records):
            if record.values["id"] in by_id:
                matched[index] = by_id[record.values["id"]]
        shas = {index: self.sha_of(record) for index, record in enumerate(records) if index not in matched}
        if any(shas.values()):
            by_sha = {row.sha256: row for row in rows.filter(sha256__in=[s for s in shas.values() if s])}
            matched.update({index: by_sha[sha] for index, sha in shas.items() if sha in by_sha})
        rest = [index for index in range(len(records)) if index not in matched]
        if rest:
            by_key = {
                (row.name, row.version or ""): row
                for row in rows.filter(name__in=[records[index].values["name"] for index in rest])
            }
            matched.update({index: by_key[records[index].key] for index in rest if records[index].key in by_key})
        self.claims.prefetch([record.values["file_path"] for record in records])
        for index, record in enumerate(records):
            row = matched.get(index)
            plan = self.plan_match(record, row) if row is not None else self.plan_new(record, self.sha_of(record))
            self.result.plans.append(plan)

    def plan_match(self, record: AdapterRecord, row: Adapter) -> AdapterPlan:
        values = record.values
        changes = replace_changes(row, values) if self.context.replace else merge_changes(row, values)
        self._keep_key_free(row, changes)
        location = None
        if not _file_present(row.file_path) and record.file_member is not None:
            location = location_plan(self.context, record, self.claims, own_id=row.pk)
            if location is not None:
                changes.update({k: v for k, v in location.values.items() if getattr(row, k) != v})
        self.result.id_map[values["id"]] = row.pk
        self.local_ids.add(row.pk)
        status = UPDATED if changes or (location is not None and location.copies) else SKIPPED
        return AdapterPlan(record.member, values["id"], row.name, status, row.pk, changes, location)

    def _keep_key_free(self, row: Adapter, changes: dict[str, Any]) -> None:
        if "name" not in changes and "version" not in changes:
            return
        name = changes.get("name", row.name)
        version = changes.get("version", row.version)
        key = (name, version or "")
        holder = self.keys.get(key)
        if (holder is not None and holder != row.pk) or name_holder(name, version, exclude_id=row.pk) is not None:
            changes.pop("name", None)
            changes.pop("version", None)
            self.context.warn(f"Name already used; kept '{row.name}'")
            return
        self.keys[key] = row.pk

    def plan_new(self, record: AdapterRecord, sha: str | None) -> AdapterPlan:
        values = record.values
        archive_id = values["id"]
        if archive_id in self.ids or record.key in self.keys or (sha and sha in self.shas):
            self.context.warn(f"Duplicate adapter record skipped: {record.member}")
            return AdapterPlan(record.member, archive_id, values["name"], SKIPPED)
        local_id = archive_id if archive_id not in self.local_ids else uuid.uuid4()
        location = location_plan(self.context, record, self.claims, own_id=local_id)
        if location is None:
            self.context.warn(file_not_local(record))
            return AdapterPlan(record.member, archive_id, values["name"], SKIPPED)
        self.ids.add(archive_id)
        self.keys[record.key] = local_id
        if sha:
            self.shas.add(sha)
        self.result.id_map[archive_id] = local_id
        self.local_ids.add(local_id)
        plan = AdapterPlan(record.member, archive_id, values["name"], CREATED, local_id, location=location)
        plan.normalised = record.normalised
        return plan


def _file_present(path: str) -> bool:
    return bool(path) and path_exists(Path(path))


def adapters_plan(context: ApplyContext) -> AdapterPlans:
    """Every adapter record read, checked and planned; raises ``ArchiveError`` on the first invalid one."""
    planner = Planner(context)
    for members in batched(adapter_members(context)):
        planner.plan_batch([adapter_record_read(context, member) for member in members])
    return planner.result
