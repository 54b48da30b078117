"""Writes to the adapter catalogue: create, update, activate, delete, bulk, hashing (SPEC 5.2, 6.6.7)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from adapters.models import CURATABLE_FIELDS, WEIGHT_MAX, WEIGHT_MIN, Adapter, HashStatus, ScannedFile
from adapters.scanner.engine import (
    adapter_rescan,
    register_file,
    registered_file_insert,
    registered_file_row,
    remember_registered_file,
)
from adapters.scanner.identity import name_holder
from adapters.signals import adapters_imported
from loraforge.inserts import insert_compiled
from loraforge.jobs.enqueue import task_send
from loraforge.prepared import PreparedQuery

logger = logging.getLogger("loraforge.adapters")

HASH_TASK = "adapters.hash_adapter_file"

NAME_VERSION_TAKEN = "adapter with this name and version already exists"
FILE_TAKEN = "an adapter already exists for this file"
UNSET: Any = object()


def default_weight(preferred: float | None) -> float:
    if preferred is not None and WEIGHT_MIN <= preferred <= WEIGHT_MAX:
        return float(preferred)
    return 1.0


def _name_version_taken(name: str, version: str | None, exclude_id: UUID | None = None) -> bool:
    return name_holder(name, version, exclude_id=exclude_id) is not None


def _integrity_error(adapter: Adapter) -> ValidationError:
    """A unique-constraint race lost by a save, as the API's validation error (read after the rollback)."""
    if Adapter.objects.filter(file_path=adapter.file_path).exclude(pk=adapter.pk).exists():
        return ValidationError({"file_path": [FILE_TAKEN]})
    return ValidationError({"non_field_errors": [NAME_VERSION_TAKEN]})


def _save_checked(adapter: Adapter, **kwargs: Any) -> None:
    """Save in a transaction of its own, turning unique-constraint races into the API's validation errors."""
    try:
        with transaction.atomic():
            adapter.save(**kwargs)
    except IntegrityError as exc:
        raise _integrity_error(adapter) from exc


_FILE_HOLDER: PreparedQuery[Adapter] = PreparedQuery(
    lambda path: Adapter.objects.order_by().filter(file_path=path).values_list("id")[:1], "path"
)


def adapter_create(*, file_path: Path, fields: Mapping[str, Any]) -> Adapter:
    """Register one file like a one-file scan (header, sidecars, hash), then apply the body on top and lock what
    it set (SPEC 5.2). Exclusions of the path and hash are lifted; embeddings follow ``adapters_imported``."""
    if _FILE_HOLDER.rows(str(file_path)):
        raise ValidationError({"file_path": [FILE_TAKEN]})
    try:
        registered = register_file(path=file_path)
    except OSError:
        raise ValidationError({"file_path": ["file_path does not exist or is not readable"]}) from None
    adapter, warnings = registered.adapter, registered.warnings
    for name, value in fields.items():
        setattr(adapter, name, value)
    if "weight" not in fields:
        adapter.weight = default_weight(adapter.preferred_weight)
    adapter.locked_fields = [name for name in CURATABLE_FIELDS if name in fields]
    if _name_version_taken(adapter.name, adapter.version):
        raise ValidationError({"non_field_errors": [NAME_VERSION_TAKEN]})
    row = registered_file_row(registered=registered)
    pending = adapter.hash_status == HashStatus.PENDING
    # Compiled before the transaction, which then only executes (``loraforge.inserts``: on SQLite the process's
    # write lock is held from BEGIN to COMMIT, and Python run under it ran at a share of the GIL).
    adapter.refresh_indexes()  # as ``Adapter.save`` would
    adapter_insert = insert_compiled(adapter)
    cache_insert = None if row is None else registered_file_insert(row)
    try:
        with transaction.atomic():  # no savepoint around the insert: a lost race rolls the whole write back
            adapter_insert.execute()
            remember_registered_file(adapter=adapter, row=row, insert=cache_insert)
            transaction.on_commit(lambda: _after_create(adapter.pk, hash_pending=pending))
    except IntegrityError as exc:
        raise _integrity_error(adapter) from exc
    if warnings:
        logger.info("Registered %s with warnings: %s", file_path, "; ".join(warnings))
    return adapter


def _after_create(adapter_id: UUID, *, hash_pending: bool) -> None:
    if hash_pending:
        enqueue_hash(adapter_id)
    adapters_imported.send_robust(sender=Adapter, adapter_ids=[str(adapter_id)])


def enqueue_hash(adapter_id: UUID) -> None:
    try:
        task_send(HASH_TASK, args=[str(adapter_id)])
    except Exception:  # the broker is down: the adapter stays "pending" and a rescan hashes it
        logger.exception("Could not queue hashing of adapter %s", adapter_id)


def adapter_hash(*, adapter_id: UUID | str) -> Adapter | None:
    """Hash the adapter's file (the task behind large ``POST /adapters`` files): a one-file rescan, so the
    Civitai version is matched by hash once the hash is known."""
    adapter = Adapter.objects.filter(pk=adapter_id).first()
    if adapter is None:
        return None
    adapter, item = adapter_rescan(adapter=adapter)
    if item.status == "error":
        logger.warning("Cannot hash %s: %s", adapter.file_path, item.detail)
    return adapter


# Fields whose change alters what the adapter is recommended by: a PATCH of any announces it (embeddings follow).
TEXT_FIELDS = frozenset(
    {"name", "description", "tags", "trained_words", "triggers", "activation_text", "base_model", "sdnext_name"}
)


def adapter_update(*, adapter: Adapter, changes: Mapping[str, Any]) -> Adapter:
    """Apply a PATCH: every patched curatable field becomes locked (SPEC 6.6.7)."""
    name = changes.get("name", adapter.name)
    version = changes.get("version", adapter.version)
    if ("name" in changes or "version" in changes) and _name_version_taken(name, version, adapter.pk):
        raise ValidationError({"non_field_errors": [NAME_VERSION_TAKEN]})
    locked = list(changes["locked_fields"]) if "locked_fields" in changes else list(adapter.locked_fields or [])
    for field_name, value in changes.items():
        if field_name == "locked_fields":
            continue
        setattr(adapter, field_name, value)
        if field_name in CURATABLE_FIELDS and field_name not in locked:
            locked.append(field_name)
    adapter.locked_fields = [field for field in CURATABLE_FIELDS if field in locked]
    # Only what the PATCH set: a scan or hashing task that wrote the row since it was read keeps its values.
    _save_checked(adapter, update_fields=[*(name for name in changes if name != "locked_fields"), "locked_fields"])
    if set(changes) & TEXT_FIELDS:
        adapters_imported.send_robust(sender=Adapter, adapter_ids=[str(adapter.pk)])
    return adapter


def adapter_set_active(*, adapter: Adapter, active: bool, ordinal: Any = UNSET) -> Adapter:
    adapter.active = active
    update_fields = ["active"]
    if ordinal is not UNSET:
        adapter.ordinal = ordinal
        update_fields.append("ordinal")
    adapter.save(update_fields=update_fields)
    return adapter


def _exclude_file(adapter: Adapter) -> None:
    now = timezone.now()
    size, mtime_ns = adapter.file_size or 0, 0
    try:
        stat = Path(adapter.file_path).stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    except OSError:
        pass
    ScannedFile.objects.update_or_create(
        path=adapter.file_path,
        defaults={"excluded": True, "adapter": None, "sha256": adapter.sha256, "last_seen_at": now},
        create_defaults={
            "excluded": True,
            "sha256": adapter.sha256,
            "size": size,
            "mtime_ns": mtime_ns,
            "last_seen_at": now,
        },
    )
    if adapter.sha256:
        ScannedFile.objects.filter(sha256=adapter.sha256).update(excluded=True)


def adapter_delete(*, adapter: Adapter, exclude: bool = True) -> None:
    """Delete the row (never the file); with ``exclude`` later scans skip its path and hash."""
    with transaction.atomic():
        if exclude:
            _exclude_file(adapter)
        adapter.delete()


@dataclass(frozen=True)
class BulkOutcome:
    action: str
    ids: list[str]
    missing: list[str]


def adapters_bulk(*, action: str, ids: Iterable[UUID], exclude: bool = True) -> BulkOutcome:
    """Activate, deactivate or delete many adapters in one transaction."""
    wanted = list(dict.fromkeys(ids))
    with transaction.atomic():
        found = {adapter.pk: adapter for adapter in Adapter.objects.select_for_update().filter(pk__in=wanted)}
        processed = [pk for pk in wanted if pk in found]
        if action in ("activate", "deactivate"):
            Adapter.objects.filter(pk__in=processed).update(active=action == "activate", updated_at=timezone.now())
        elif action == "delete":
            for pk in processed:
                adapter_delete(adapter=found[pk], exclude=exclude)
    return BulkOutcome(
        action=action,
        ids=[str(pk) for pk in processed],
        missing=[str(pk) for pk in wanted if pk not in found],
    )


def scanned_files_unexclude(*, ids: Iterable[int]) -> int:
    """Lift the exclusion of these scan-cache rows and of every row sharing their content hash.

    A scan skips a file when its path or its hash is excluded (SPEC 6.6.6), so both must go.
    Returns the number of rows changed.
    """
    wanted = list(ids)
    with transaction.atomic():
        hashes = [sha for sha in ScannedFile.objects.filter(pk__in=wanted).values_list("sha256", flat=True) if sha]
        return ScannedFile.objects.filter(Q(pk__in=wanted) | Q(sha256__in=hashes), excluded=True).update(excluded=False)
