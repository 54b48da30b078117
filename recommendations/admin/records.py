"""Read-only admins of what the recommender stores: sessions, feedback and sentence embeddings (SPEC 9.1)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from adapters.admin.display import DeferringChangeList
from loraforge.admin import pretty_json
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession

# Large adapter columns a changelist never needs for a linked name.
ADAPTER_DEFERRED = ("header_metadata", "search_index")


def adapter_link(adapter_id: Any, name: str) -> str:
    if adapter_id is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse("admin:adapters_adapter_change", args=[adapter_id]), name)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the recommender only: viewable, never added, changed or deleted here."""

    list_per_page = 100

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeferringChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(RecommendationSession)
class RecommendationSessionAdmin(ReadOnlyAdmin):
    list_display = ("short_id", "kind", "context_key", "target", "item_count", "processing_time_ms", "created_at")
    list_display_links = ("short_id",)
    list_filter = ("kind", "created_at")
    list_select_related = ("target_adapter",)
    search_fields = ("id", "context_key", "context_prompt", "trigger_query", "target_adapter__name")
    search_help_text = "Session id, context key, prompt, trigger query or target adapter name."
    changelist_deferred = tuple(f"target_adapter__{name}" for name in ADAPTER_DEFERRED)
    fields = (
        "id", "kind", "context_key", "context_prompt", "trigger_query", "target", "active_loras_json",
        "recommendations_json", "processing_time_ms", "created_at",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Id", ordering="id")
    def short_id(self, session: RecommendationSession) -> str:
        return str(session.pk)[:8]

    @admin.display(description="Target adapter", ordering="target_adapter__name")
    def target(self, session: RecommendationSession) -> str:
        adapter = session.target_adapter
        return adapter_link(session.target_adapter_id, adapter.name) if adapter else "-"

    @admin.display(description="Items")
    def item_count(self, session: RecommendationSession) -> int:
        return len(session.recommendations or [])

    @admin.display(description="Active LoRAs")
    def active_loras_json(self, session: RecommendationSession) -> str:
        return pretty_json(session.active_loras)

    @admin.display(description="Recommendations (id, rank, final score)")
    def recommendations_json(self, session: RecommendationSession) -> str:
        return pretty_json(session.recommendations)


@admin.register(RecommendationFeedback)
class RecommendationFeedbackAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "feedback_type", "adapter_name", "session_link", "implicit_signal", "reason")
    list_display_links = ("created_at",)
    list_filter = ("feedback_type", "implicit_signal", "created_at")
    list_select_related = ("adapter",)
    search_fields = ("adapter__name", "feedback_reason", "session__id")
    search_help_text = "Adapter name, reason or session id."
    changelist_deferred = tuple(f"adapter__{name}" for name in ADAPTER_DEFERRED)
    fields = (
        "id", "feedback_type", "adapter_name", "session_link", "implicit_signal", "feedback_reason", "created_at"
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Adapter", ordering="adapter__name")
    def adapter_name(self, feedback: RecommendationFeedback) -> str:
        return adapter_link(feedback.adapter_id, feedback.adapter.name)

    @admin.display(description="Session")
    def session_link(self, feedback: RecommendationFeedback) -> str:
        url = reverse("admin:recommendations_recommendationsession_change", args=[feedback.session_id])
        return format_html('<a href="{}">{}</a>', url, str(feedback.session_id)[:8])

    @admin.display(description="Reason")
    def reason(self, feedback: RecommendationFeedback) -> str:
        text = feedback.feedback_reason or ""
        return text if len(text) <= 80 else text[:79] + "…"


@admin.register(AdapterEmbedding)
class AdapterEmbeddingAdmin(ReadOnlyAdmin):
    """The vector bytes are never shown: they are in no column and no field."""

    list_display = ("adapter_name", "model_name", "dim", "computed_at", "quality_score", "popularity_score")
    list_display_links = ("adapter_name",)
    list_filter = ("model_name", "computed_at")
    list_select_related = ("adapter",)
    search_fields = ("adapter__name", "model_name")
    changelist_deferred = tuple(f"adapter__{name}" for name in ADAPTER_DEFERRED)
    fields = (
        "adapter_name", "model_name", "dim", "text_sha256", "quality_score", "popularity_score", "recency_score",
        "normalized_triggers", "computed_at",
    )  # fmt: skip
    readonly_fields = fields
    ordering = ("-computed_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AdapterEmbedding]:
        return super().get_queryset(request).defer("vector")

    @admin.display(description="Adapter", ordering="adapter__name")
    def adapter_name(self, embedding: AdapterEmbedding) -> str:
        return adapter_link(embedding.adapter_id, embedding.adapter.name)
