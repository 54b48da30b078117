"""The adapter change page's recommendations panel and the changelist's "compute embeddings" action, registered
with ``AdapterAdmin`` through ``adapters.admin.extensions``. Both call the services the API calls; the panel
records no session (it is not a response the user can give feedback on)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from adapters.admin.extensions import ChangePanel, ListAction, change_panel_register, list_action_register
from adapters.models import Adapter
from loraforge.models.jobs import JobOrigin
from recommendations.index import index_ready_or_building
from recommendations.services.embeddings import embeddings_job_start

PANEL_SIZE = 5
PANEL_TEMPLATE = "admin/recommendations/adapter_panel.html"
COMPUTE_EMBEDDINGS = "Compute embeddings for selected adapters"


def _rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The response items with the admin link of each adapter."""
    return [{**item, "url": reverse("admin:adapters_adapter_change", args=[item["lora_id"]])} for item in items]


def recommendations_panel(request: HttpRequest, adapter: Adapter) -> str:
    """The two tables; while a large catalogue's index is being rebuilt (after a write), a note instead of a wait."""
    from recommendations.services.recommend import recommend_similar, recommend_works_well_with  # numpy: on use

    if not index_ready_or_building():
        return render_to_string(PANEL_TEMPLATE, {"preparing": True}, request=request)
    similar = recommend_similar(adapter=adapter, limit=PANEL_SIZE, record=False)
    works_well = recommend_works_well_with(adapter=adapter, limit=PANEL_SIZE, record=False)
    context = {"similar": _rows(similar["recommendations"]), "works_well": _rows(works_well["recommendations"])}
    return render_to_string(PANEL_TEMPLATE, context, request=request)


@admin.action(description=COMPUTE_EMBEDDINGS)
def compute_embeddings(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
    ids = [str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True)]
    job, queued = embeddings_job_start(adapter_ids=ids, created_via=JobOrigin.ADMIN)
    modeladmin.message_user(request, f"Queued embeddings for {queued} adapters (job {job.pk})", messages.SUCCESS)


def adapter_page_extend() -> None:
    change_panel_register(ChangePanel("recommendations", "Recommendations", recommendations_panel))
    list_action_register(ListAction("compute_embeddings", compute_embeddings, COMPUTE_EMBEDDINGS))
