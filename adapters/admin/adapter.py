"""``AdapterAdmin``: the catalogue's changelist, change form and actions (SPEC 9.1)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from adapters.admin.display import DeferringChangeList
from adapters.admin.extensions import change_panels_render, list_actions
from adapters.admin.filters import FileMissingFilter, TagFilter
from adapters.admin.forms import AdapterAdminForm, AdapterChangeListForm
from adapters.models import CURATABLE_FIELDS, Adapter
from adapters.scanner.engine import adapter_rescan
from adapters.services import adapter_delete, adapter_update, adapters_bulk
from loraforge.admin import pretty_json

PREVIEW_URL = "/api/v1/adapters/{id}/preview"
SHA256_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")
# Read-only sections of the change form (SPEC 9.1).
FILE_FIELDS = ("file_path", "format", "file_size", "file_mtime", "missing_since", "duplicate_paths_list")
HASH_FIELDS = ("sha256", "autov2", "autov3", "hash_status")
HEADER_FIELDS = (
    "header_error", "network_dim", "network_alpha", "network_module", "output_name", "header_tags_list",
    "header_metadata_json",
)  # fmt: skip
SIDECAR_FIELDS = ("preview_path", "json_file_path", "json_file_mtime", "json_file_size", "sidecars_json", "extra_json")
CIVITAI_FIELDS = (
    "civitai_model_id", "civitai_version_id", "civitai_match", "canonical_version_name", "author_username",
    "published_at", "primary_file_name", "primary_file_size_kb", "primary_file_sha256", "primary_file_download_url",
    "primary_file_local_path", "stats_json",
)  # fmt: skip
USAGE_FIELDS = ("usage_count", "last_used_at", "last_ingested_at", "created_at", "updated_at")
COLLAPSED = ["collapse"]  # read-only sections start folded: the curation fields come first
TAG_CHIPS = 3  # tags shown as chips in the changelist; the rest collapse into a "+N" chip


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    form = AdapterAdminForm
    list_display = (
        "thumbnail",
        "name",
        "sdnext_name",
        "base_model",
        "active",
        "weight",
        "ordinal",
        "tag_list",
        "file_state",
        "usage_count",
        "updated_at",
    )
    list_display_links = ("name",)
    list_editable = ("active", "weight", "ordinal")
    list_filter = (
        "active",
        "base_family",
        "hash_status",
        FileMissingFilter,
        "has_duplicates",
        "civitai_match",
        TagFilter,
    )
    search_fields = ("name", "sdnext_name", "file_path", "tag_index")
    search_help_text = "Name, SDNext name, file path, tag or SHA-256 prefix."
    list_per_page = 100
    changelist_deferred = ("header_metadata", "search_index")
    actions = ("activate_selected", "deactivate_selected", "rescan_selected")
    fieldsets = (
        (None, {"fields": ("preview_image",)}),
        ("Curation", {"fields": CURATABLE_FIELDS}),
        ("Composition", {"fields": ("active", "weight", "ordinal", "locked_fields")}),
        ("File", {"fields": FILE_FIELDS, "classes": COLLAPSED}),
        ("Hash", {"fields": HASH_FIELDS, "classes": COLLAPSED}),
        ("Header", {"fields": HEADER_FIELDS, "classes": COLLAPSED}),
        ("Sidecars", {"fields": SIDECAR_FIELDS, "classes": COLLAPSED}),
        ("Civitai", {"fields": CIVITAI_FIELDS, "classes": COLLAPSED}),
        ("Usage", {"fields": USAGE_FIELDS, "classes": COLLAPSED}),
    )
    readonly_fields = (
        "preview_image",
        *FILE_FIELDS,
        *HASH_FIELDS,
        *HEADER_FIELDS,
        *SIDECAR_FIELDS,
        *CIVITAI_FIELDS,
        *USAGE_FIELDS,
    )

    # --- changelist -------------------------------------------------------------------------
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeferringChangeList

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        return super().get_changelist_form(request, form=AdapterChangeListForm, **kwargs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Adapter], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lower()
        if SHA256_PREFIX.match(term):
            results = results | queryset.filter(sha256__startswith=term)
        return results, may_have_duplicates

    @admin.display(description="Preview")
    def thumbnail(self, adapter: Adapter) -> str:
        if not adapter.preview_path:
            return format_html('<span class="lf-thumb lf-thumb-empty" title="{}"></span>', "No preview")
        return format_html(
            '<img class="lf-thumb" src="{}" alt="" width="48" height="48" loading="lazy">',
            PREVIEW_URL.format(id=adapter.pk),
        )

    @admin.display(description="Tags")
    def tag_list(self, adapter: Adapter) -> str:
        """The first tags as short chips and a "+N" chip for the rest (all of them in its tooltip)."""
        tags = adapter.tags or []
        chips = format_html_join(
            "", '<span class="lf-chip" title="{}">{}</span>', ((tag, tag) for tag in tags[:TAG_CHIPS])
        )
        if len(tags) > TAG_CHIPS:
            more = format_html(
                '<span class="lf-chip lf-chip-more" title="{}">+{}</span>', ", ".join(tags), len(tags) - TAG_CHIPS
            )
            chips = format_html("{}{}", chips, more)
        return format_html('<span class="lf-chips">{}</span>', chips)

    @admin.display(description="File")
    def file_state(self, adapter: Adapter) -> str:
        if adapter.file_missing:
            state = "missing"
        elif adapter.header_error:
            state = "header error"
        elif adapter.has_duplicates:
            state = "duplicate"
        else:
            state = "ok"
        return format_html('<span class="lf-badge lf-badge-{}">{}</span>', state.replace(" ", "-"), state)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """The admin's own actions plus those other apps registered (``adapters.admin.extensions``)."""
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        for extra in list_actions():
            if all(getattr(self, f"has_{name}_permission")(request) for name in extra.permissions):
                actions[extra.name] = (extra.function, extra.name, extra.description)
        return actions

    # --- change form ------------------------------------------------------------------------
    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: Adapter | None = None,
    ) -> HttpResponse:  # fmt: skip
        """The form plus the read-only panels other apps registered (``adapters.admin.extensions``)."""
        context["adapter_panels"] = change_panels_render(request, obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Preview")
    def preview_image(self, adapter: Adapter) -> str:
        if not adapter.preview_path:
            return "No preview"
        return format_html('<img class="lf-preview" src="{}" alt="Preview">', PREVIEW_URL.format(id=adapter.pk))

    @admin.display(description="Duplicate paths")
    def duplicate_paths_list(self, adapter: Adapter) -> str:
        return pretty_json(adapter.duplicate_paths)

    @admin.display(description="Header tags")
    def header_tags_list(self, adapter: Adapter) -> str:
        return ", ".join(adapter.header_tags or []) or "-"

    @admin.display(description="Header metadata")
    def header_metadata_json(self, adapter: Adapter) -> str:
        return pretty_json(adapter.header_metadata)

    @admin.display(description="Sidecars")
    def sidecars_json(self, adapter: Adapter) -> str:
        return pretty_json(adapter.sidecars)

    @admin.display(description="Extra (unmapped sidecar keys)")
    def extra_json(self, adapter: Adapter) -> str:
        return pretty_json(adapter.extra)

    @admin.display(description="Civitai stats")
    def stats_json(self, adapter: Adapter) -> str:
        return pretty_json(adapter.stats)

    # --- writes: always through the services --------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # adapters come from scans and POST /adapters, which check the file path

    def save_model(self, request: HttpRequest, obj: Adapter, form: Any, change: bool) -> None:
        changes = getattr(form, "api_changes", {})
        if changes:
            adapter_update(adapter=obj, changes=changes)

    def delete_model(self, request: HttpRequest, obj: Adapter) -> None:
        adapter_delete(adapter=obj, exclude=True)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
        adapters_bulk(action="delete", ids=list(queryset.values_list("pk", flat=True)), exclude=True)

    @admin.action(description="Activate selected adapters")
    def activate_selected(self, request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
        outcome = adapters_bulk(action="activate", ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Activated {len(outcome.ids)} adapter(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected adapters")
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
        outcome = adapters_bulk(action="deactivate", ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Deactivated {len(outcome.ids)} adapter(s).", messages.SUCCESS)

    @admin.action(description="Rescan selected adapters")
    def rescan_selected(self, request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
        statuses: Counter[str] = Counter()
        for adapter in queryset.order_by("pk").iterator(chunk_size=100):
            _adapter, item = adapter_rescan(adapter=adapter)
            statuses[item.status] += 1
        counts = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        level = messages.WARNING if statuses["error"] or statuses["missing"] else messages.SUCCESS
        self.message_user(request, f"Rescanned {statuses.total()} adapter(s): {counts or 'none'}.", level)
