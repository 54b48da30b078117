"""Admin for generation backends (SPEC 9.1): every write goes through ``generation.backends.services``.

The password is write-only: the form has an empty password input (blank keeps the stored one) and a
"clear password" checkbox; no page ever renders the stored value.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from generation.backends.services import backend_create, backend_delete, backend_update, backends_check
from generation.models import (
    NAME_TAKEN,
    TIMEOUT_MAX,
    TIMEOUT_MIN,
    GenerationBackend,
    GenerationResult,
    backend_name_error,
    normalize_backend_url,
)
from generation.results.services import result_delete, result_rate, result_set_favorite, results_delete
from loraforge.errors import Conflict
from loraforge.media import media_url

DEFAULT_NOTE = (
    "The backend named “default” is managed from SDNEXT_URL (and SDNEXT_USERNAME / SDNEXT_PASSWORD): "
    "its URL and credentials are overwritten from the environment at every start of the server and workers."
)
WRITABLE_FIELDS = ("name", "url", "username", "enabled", "timeout_seconds")
HEALTH_BADGES = {True: ("#2e7d32", "healthy"), False: ("#c62828", "unhealthy"), None: ("#757575", "unknown")}


class GenerationBackendForm(forms.ModelForm):
    new_password = forms.CharField(
        label="Password",
        required=False,
        max_length=500,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored password.",
    )
    clear_password = forms.BooleanField(label="Clear password", required=False)

    class Meta:
        model = GenerationBackend
        fields = WRITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timeout_seconds"].widget.attrs.update(min=TIMEOUT_MIN, max=TIMEOUT_MAX)
        if self.instance.pk and self.instance.password:
            self.fields["new_password"].help_text = "A password is set. Leave blank to keep it."

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"])
        error = backend_name_error(name)
        if error:
            raise forms.ValidationError(error)
        if GenerationBackend.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(NAME_TAKEN)
        return name

    def clean_url(self) -> str:
        try:
            return normalize_backend_url(str(self.cleaned_data["url"]))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_username(self) -> str | None:
        return (self.cleaned_data.get("username") or "").strip() or None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_password") and cleaned.get("new_password"):
            self.add_error("new_password", "Enter a new password or clear it, not both.")
        return cleaned

    def backend_changes(self) -> dict[str, Any]:
        """The writable fields for ``backend_create``/``backend_update``; the password only when set or cleared."""
        data = self.cleaned_data
        changes = {name: data.get(name) for name in WRITABLE_FIELDS}
        if data.get("clear_password"):
            changes["password"] = None
        elif data.get("new_password"):
            changes["password"] = data["new_password"]
        return changes


@admin.register(GenerationBackend)
class GenerationBackendAdmin(admin.ModelAdmin):
    form = GenerationBackendForm
    list_display = ("name", "url", "enabled", "is_default", "health", "busy", "version", "last_checked_at")
    list_filter = ("enabled", "is_default", "healthy")
    search_fields = ("name", "url")
    ordering = ("name",)
    actions = ("check_health",)
    readonly_fields = (
        "id", "kind", "is_default", "has_password", "health", "last_error", "last_checked_at", "version",
        "busy", "lease_job", "lease_expires_at", "last_used_at", "created_at", "updated_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("name", "kind", "url", "enabled", "timeout_seconds"), "description": DEFAULT_NOTE}),
        ("Credentials (HTTP Basic)", {"fields": ("username", "has_password", "new_password", "clear_password")}),
        ("Health", {"fields": ("health", "last_error", "last_checked_at", "version")}),
        ("State", {"fields": ("id", "is_default", "busy", "lease_job", "lease_expires_at", "last_used_at")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {**(extra_context or {}), "default_note": DEFAULT_NOTE})

    @admin.display(description="Health", ordering="healthy")
    def health(self, backend: GenerationBackend) -> str:
        colour, label = HEALTH_BADGES[backend.healthy]
        title = backend.last_error or label
        return format_html('<span style="color: {}; font-weight: bold" title="{}">{}</span>', colour, title, label)

    @admin.display(description="Busy", boolean=True)
    def busy(self, backend: GenerationBackend) -> bool:
        return backend.has_live_lease()

    @admin.display(description="Password set", boolean=True)
    def has_password(self, backend: GenerationBackend) -> bool:
        return bool(backend.password)

    @admin.display(description="Version")
    def version(self, backend: GenerationBackend) -> str:
        info = backend.version_info or {}
        return " ".join(str(info[key]) for key in ("app", "commit") if info.get(key)) or "-"

    def save_model(self, request: HttpRequest, obj: GenerationBackend, form: Any, change: bool) -> None:
        changes = form.backend_changes()
        if change:
            saved = backend_update(backend=GenerationBackend.objects.get(pk=obj.pk), changes=changes)
        else:
            saved = backend_create(fields=changes)
        obj.pk = saved.pk  # the admin logs and redirects with this instance

    def has_delete_permission(self, request: HttpRequest, obj: GenerationBackend | None = None) -> bool:
        if obj is not None and obj.has_live_lease():
            return False  # "Backend is running a job"
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: GenerationBackend) -> None:
        backend_delete(backend=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[GenerationBackend]) -> None:
        for backend in queryset:
            try:
                backend_delete(backend=backend)
            except Conflict as exc:
                self.message_user(request, f"{backend.name}: {exc.detail}", messages.ERROR)

    @admin.action(description="Check health")
    def check_health(self, request: HttpRequest, queryset: QuerySet[GenerationBackend]) -> None:
        for backend in backends_check(backends=queryset, live=True):
            if backend.healthy:
                self.message_user(request, f"{backend.name}: healthy ({self.version(backend)})", messages.SUCCESS)
            else:
                self.message_user(request, f"{backend.name}: unhealthy ({backend.last_error})", messages.ERROR)


# --- generation results (SPEC 9.1): writes go through ``generation.results.services`` ---------------

RATING_ERROR = "rating must be an integer between 0 and 5"


class GenerationResultForm(forms.ModelForm):
    """Rating (0..5 or empty) and favourite, validated like ``PUT /generation/results/{id}/rating``."""

    rating = forms.IntegerField(
        min_value=0,
        max_value=5,
        required=False,
        error_messages={"invalid": RATING_ERROR, "min_value": RATING_ERROR, "max_value": RATING_ERROR},
    )

    class Meta:
        model = GenerationResult
        fields = ("rating", "is_favorite")


@admin.register(GenerationResult)
class GenerationResultAdmin(admin.ModelAdmin):
    form = GenerationResultForm
    list_display = ("thumbnail", "result_name", "job_link", "rating", "is_favorite", "dimensions", "created_at")
    list_display_links = ("result_name",)
    list_editable = ("rating", "is_favorite")
    list_filter = ("is_favorite", "rating", "created_at")
    list_per_page = 100
    ordering = ("-created_at", "-id")
    fields = (
        "image", "job_link", "index", "file", "content_type", "size_bytes", "width", "height", "seed", "infotext",
        "rating", "is_favorite", "rating_updated_at", "favorite_updated_at", "created_at",
    )  # fmt: skip
    readonly_fields = tuple(name for name in fields if name not in ("rating", "is_favorite"))

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        return super().get_changelist_form(request, form=GenerationResultForm, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # results are written by generation jobs only

    @admin.display(description="Image")
    def thumbnail(self, result: GenerationResult) -> str:
        return format_html(
            '<img src="{}" alt="" width="64" height="64" style="object-fit: cover" loading="lazy">',
            media_url(result.file),
        )

    @admin.display(description="Image")
    def image(self, result: GenerationResult) -> str:
        url = media_url(result.file)
        return format_html('<a href="{}" target="_blank"><img src="{}" alt="" style="max-height: 384px"></a>', url, url)

    @admin.display(description="Result", ordering="created_at")
    def result_name(self, result: GenerationResult) -> str:
        return f"{str(result.job_id)[:8]}/{result.index:03d}"

    @admin.display(description="Job", ordering="job")
    def job_link(self, result: GenerationResult) -> str:
        url = reverse("admin:deliveries_deliveryjob_change", args=[result.job_id])
        return format_html('<a href="{}">{}</a>', url, str(result.job_id)[:8])

    @admin.display(description="Size")
    def dimensions(self, result: GenerationResult) -> str:
        return f"{result.width} x {result.height}" if result.width and result.height else "-"

    # --- writes: the services of the results API (their timestamps, file removal) ----------------
    def save_model(self, request: HttpRequest, obj: GenerationResult, form: Any, change: bool) -> None:
        if "rating" in form.changed_data:
            result_rate(result=obj, rating=obj.rating)
        if "is_favorite" in form.changed_data:
            result_set_favorite(result=obj, is_favorite=obj.is_favorite)

    def delete_model(self, request: HttpRequest, obj: GenerationResult) -> None:
        result_delete(result=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[GenerationResult]) -> None:
        results_delete(ids=list(queryset.values_list("pk", flat=True)))
