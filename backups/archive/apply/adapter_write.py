"""Writing the adapter plan (SPEC 6.10.3): created rows inserted with the record's values (the record's
``created_at``), matched rows updated with the planned changes; ``updated_at`` and ``last_ingested_at`` of both are
the time of the import. Their files are staged here and moved into place after commit."""

from __future__ import annotations

from typing import Any

from adapters.models import Adapter, search_index_for
from adapters.tags import tag_index_for
from backups.archive.apply.adapter_plan import CREATED, UPDATED, AdapterPlan, AdapterPlans
from backups.archive.apply.adapter_records import adapter_record_read
from backups.archive.apply.context import ApplyContext, batched, insert


def _stage(context: ApplyContext, plan: AdapterPlan) -> None:
    if plan.location is not None:
        for member, final in plan.location.copies:
            context.stage(member, final)


def _created_row(context: ApplyContext, plan: AdapterPlan) -> dict[str, Any]:
    values: dict[str, Any] = adapter_record_read(context, plan.member, check=False).values
    assert plan.location is not None
    values.update(plan.normalised)
    values.update(plan.location.values)
    values.update(id=plan.local_id, updated_at=context.now, last_ingested_at=context.now)
    if values.get("created_at") is None:
        values["created_at"] = context.now
    values["tag_index"] = tag_index_for(values.get("tags") or [])
    values["search_index"] = search_index_for(values["name"], values["sdnext_name"], values.get("author_username"))
    values["has_duplicates"] = bool(values.get("duplicate_paths"))
    return values


def _update(context: ApplyContext, plan: AdapterPlan) -> None:
    assert plan.local_id is not None
    adapter = Adapter.objects.get(pk=plan.local_id)
    for name, value in plan.changes.items():
        setattr(adapter, name, value)
    adapter.last_ingested_at = context.now
    adapter.save(update_fields=[*plan.changes, "last_ingested_at"])


def adapters_write(context: ApplyContext, plans: AdapterPlans) -> list[str]:
    """Apply the plan; returns the ids (str) of the created and updated adapters."""
    for batch in batched(plans.with_status(CREATED)):
        rows = []
        for plan in batch:
            rows.append(_created_row(context, plan))
            _stage(context, plan)
        insert(context, Adapter, rows)
    for plan in plans.with_status(UPDATED):
        _update(context, plan)
        _stage(context, plan)
    return [str(plan.local_id) for plan in plans.plans if plan.status in (CREATED, UPDATED)]
