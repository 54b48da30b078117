"""Admin for the adapter catalogue (SPEC 9.1): every write goes through ``adapters.services``."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html

from adapters.models import (
    CURATABLE_FIELDS,
    ORDINAL_MAX,
    ORDINAL_MIN,
    WEIGHT_MAX,
    WEIGHT_MIN,
    Adapter,
    ScannedFile,
    file_missing_filter,
)
from adapters.scanner.engine import adapter_rescan
from adapters.selectors import tag_counts
from adapters.serializers import AdapterUpdateSerializer
from adapters.services import (
    NAME_VERSION_TAKEN,
    adapter_delete,
    adapter_update,
    adapters_bulk,
    scanned_files_unexclude,
)
from adapters.tags import tag_token

PREVIEW_URL = "/api/v1/adapters/{id}/preview"
TAG_FILTER_SIZE = 50
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


def pretty_json(value: Any) -> str:
    """Indented JSON in a ``<pre>``; ``format_html`` escapes it (header metadata is untrusted)."""
    if value in (None, [], {}):
        return "-"
    return format_html('<pre class="lf-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def _messages_of(errors: Any) -> list[str]:
    """Flatten DRF's nested error structures (``{"tags": {"0": [...]}}``) into plain messages."""
    if isinstance(errors, dict):
        return [message for nested in errors.values() for message in _messages_of(nested)]
    if isinstance(errors, list):
        return [message for nested in errors for message in _messages_of(nested)]
    return [str(errors)]


# --- forms ----------------------------------------------------------------------------------


@cache
def _api_field_names() -> frozenset[str]:
    return frozenset(AdapterUpdateSerializer().fields)


class LinesField(forms.Field):
    """A JSON list of strings edited as a textarea, one item per line."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(str(item) for item in value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        return [line.strip() for line in str(value or "").splitlines() if line.strip()]


class ApiValidatedAdapterForm(forms.ModelForm):
    """Validates the changed fields with the API's PATCH serializer, so the admin accepts exactly what the API does.

    ``api_changes`` holds the validated changes for ``adapter_update``.
    """

    weight = forms.FloatField(min_value=WEIGHT_MIN, max_value=WEIGHT_MAX)
    ordinal = forms.IntegerField(min_value=ORDINAL_MIN, max_value=ORDINAL_MAX, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_changes: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        changes = {name: cleaned[name] for name in self.changed_data if name in cleaned and name in _api_field_names()}
        if not changes:
            return cleaned
        serializer = AdapterUpdateSerializer(data=changes)
        if not serializer.is_valid():
            for name, errors in serializer.errors.items():
                self.add_error(name if name in self.fields else None, _messages_of(errors))
            return cleaned
        self.api_changes = dict(serializer.validated_data)
        cleaned.update(self.api_changes)
        self._check_name_version()
        return cleaned

    def _check_name_version(self) -> None:
        """The API's name/version clash rule, reported on the edited field instead of a constraint name."""
        if "name" not in self.api_changes and "version" not in self.api_changes:
            return
        name = self.api_changes.get("name", self.instance.name)
        version = self.api_changes.get("version", self.instance.version) or ""
        clash = (
            Adapter.objects.annotate(version_key=Coalesce("version", Value("")))
            .filter(name=name, version_key=version)
            .exclude(pk=self.instance.pk)
        )
        if clash.exists():
            self.add_error("name" if "name" in self.api_changes else "version", NAME_VERSION_TAKEN)
            self.api_changes = {}


class AdapterChangeListForm(ApiValidatedAdapterForm):
    class Meta:
        model = Adapter
        fields = ("active", "weight", "ordinal")


class AdapterAdminForm(ApiValidatedAdapterForm):
    tags = LinesField(required=False, help_text="One tag per line; tags are normalised like the API does.")
    triggers = LinesField(required=False, help_text="One trigger phrase per line.")
    trained_words = LinesField(required=False, help_text="One trained word per line.")
    locked_fields = forms.MultipleChoiceField(
        choices=[(name, name) for name in CURATABLE_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Locked fields are never overwritten by a re-import. Editing a field locks it.",
    )

    class Meta:
        model = Adapter
        fields = (*CURATABLE_FIELDS, "active", "weight", "ordinal", "locked_fields")


# --- list filters ---------------------------------------------------------------------------


class FileMissingFilter(admin.SimpleListFilter):
    title = "file missing"
    parameter_name = "missing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(file_missing_filter(value == "yes")) if value in ("yes", "no") else queryset


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        most_used = Counter(tag_counts()).most_common(TAG_FILTER_SIZE)
        return [(tag, f"{tag} ({count})") for tag, count in most_used]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        tag = self.value()
        return queryset.filter(tag_index__contains=tag_token(tag)) if tag else queryset


# --- adapters -------------------------------------------------------------------------------


class DeferringChangeList(ChangeList):
    """A changelist that never loads the admin's ``changelist_deferred`` columns (large JSON, internal text)."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: list[str | None] | None = None) -> QuerySet[Any]:
        deferred = getattr(self.model_admin, "changelist_deferred", ())
        return super().get_queryset(request, exclude_parameters).defer(*deferred)


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
        ("File", {"fields": FILE_FIELDS}),
        ("Hash", {"fields": HASH_FIELDS}),
        ("Header", {"fields": HEADER_FIELDS}),
        ("Sidecars", {"fields": SIDECAR_FIELDS}),
        ("Civitai", {"fields": CIVITAI_FIELDS}),
        ("Usage", {"fields": USAGE_FIELDS}),
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
        return ", ".join(adapter.tags or [])

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

    # --- change form ------------------------------------------------------------------------
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


# --- scan cache -----------------------------------------------------------------------------


@admin.register(ScannedFile)
class ScannedFileAdmin(admin.ModelAdmin):
    list_display = ("path", "size", "sha256_prefix", "excluded", "adapter", "last_seen_at")
    list_filter = ("excluded",)
    list_select_related = ("adapter",)
    search_fields = ("path", "^sha256")
    list_per_page = 100
    changelist_deferred = ("header", "adapter__header_metadata", "adapter__search_index")
    actions = ("remove_exclusion",)
    fields = (
        "path",
        "size",
        "mtime_ns",
        "sha256",
        "excluded",
        "adapter",
        "last_seen_at",
        "header_error",
        "header_json",
    )
    readonly_fields = fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeferringChangeList

    @admin.display(description="SHA-256", ordering="sha256")
    def sha256_prefix(self, scanned_file: ScannedFile) -> str:
        return scanned_file.sha256[:12] if scanned_file.sha256 else "-"

    @admin.display(description="Header")
    def header_json(self, scanned_file: ScannedFile) -> str:
        return pretty_json(scanned_file.header)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScannedFile | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScannedFile | None = None) -> bool:
        return False

    @admin.action(description="Remove exclusion")
    def remove_exclusion(self, request: HttpRequest, queryset: QuerySet[ScannedFile]) -> None:
        count = scanned_files_unexclude(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Removed the exclusion of {count} scanned file(s).", messages.SUCCESS)
