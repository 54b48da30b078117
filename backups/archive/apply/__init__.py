"""Applying a validated archive (SPEC 6.10.2 step 9, 6.10.3): the adapter records are read and checked first (the
plan), then everything is written in one database transaction, every other record checked as it is read for the
write; files are staged under ``<data dir>/tmp/import-<job id>/`` and moved into place only after the commit. The
first invalid record, or any failure, rolls everything back and removes the staging folder: nothing is written.
``dry-run`` plans and checks every record, and writes nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.models import Adapter
from adapters.signals import adapters_imported
from backups.archive.apply.adapter_plan import AdapterPlans, adapters_plan
from backups.archive.apply.adapter_write import adapters_write
from backups.archive.apply.context import (
    DRY_RUN,
    MODES,
    ApplyContext,
    bulk_writes,
    fewer_collections,
    place_all,
    staging_remove,
)
from backups.archive.apply.part_records import parts_check
from backups.archive.apply.part_write import backends_write, parts_write
from backups.archive.progress import ArchiveProgress, NoProgress
from backups.archive.reader import ValidatedArchive

__all__ = ["archive_apply"]

PART_KEYS = ("embeddings", "generation_jobs", "generation_results")


def _report(context: ApplyContext, plans: AdapterPlans, checked: dict[str, int] | None = None) -> dict[str, Any]:
    planned = {"created": "would_create", "updated": "would_update", "skipped": "would_skip"}
    counts = {status: len(plans.with_status(status)) for status in ("created", "updated", "skipped")}
    parts = dict.fromkeys(PART_KEYS, 0)
    parts.update(context.parts if checked is None else checked)
    return {
        "status": "validated" if context.dry_run else "imported",
        **counts,
        "adapters": [
            {
                "id": str(plan.local_id or plan.archive_id),
                "name": plan.name,
                "status": planned[plan.status] if context.dry_run else plan.status,
            }
            for plan in plans.plans
        ],
        "parts": parts,
        "warnings": context.warnings,
        "errors": [],
    }


def _bytes_to_copy(context: ApplyContext, plans: AdapterPlans) -> int:
    """The adapter files the plan copies and every image of the archive (those whose result is inserted are)."""
    members = context.archive.members
    adapter_files = sum(
        members[member].size for plan in plans.plans if plan.location for member, _final in plan.location.copies
    )
    return adapter_files + sum(members[name].size for name in context.archive.names_under("generations/images/"))


def archive_apply(
    archive: ValidatedArchive, *, mode: str, job_id: str, progress: ArchiveProgress | None = None
) -> dict[str, Any]:
    """Apply ``archive`` with ``mode`` (``merge``, ``replace`` or ``dry-run``) and return the per-file report
    (without ``file``). Raises ``ArchiveError`` (nothing written) for an invalid record."""
    if mode not in MODES:
        raise ValueError(f"Unknown import mode {mode!r}")
    staging = Path(settings.LORAFORGE_TMP_DIR) / f"import-{job_id}"
    with zipfile.ZipFile(archive.path) as opened, fewer_collections():
        context = ApplyContext(archive=archive, zip=opened, mode=mode, now=timezone.now(), staging=staging)
        context.progress = progress or NoProgress()
        staging_remove(context)  # left by a run of this job that died: ours by its name
        try:
            plans = adapters_plan(context)
            if mode == DRY_RUN:
                context.progress.planned(0)
                return _report(context, plans, parts_check(context))
            context.progress.planned(_bytes_to_copy(context, plans))
            with bulk_writes(), transaction.atomic():
                backend_map = backends_write(context)
                written = adapters_write(context, plans)
                parts_write(context, plans.id_map, backend_map)
            place_all(context)
        finally:
            staging_remove(context)
    if written:
        adapters_imported.send_robust(sender=Adapter, adapter_ids=written)
    return _report(context, plans)
