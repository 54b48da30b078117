"""Admin for the core models (SPEC 9.1): LoRAForge branding, API keys and the read-only background job list."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from loraforge.api_keys import api_key_create, api_key_revoke
from loraforge.models import ApiKey, BackgroundJob

# The admin says LoRAForge (SPEC 9.1); its "View site" link is the dashboard (9.2), labelled so in base_site.html.
admin.site.site_header = "LoRAForge"
admin.site.site_title = "LoRAForge admin"
admin.site.index_title = "Library administration"
admin.site.site_url = "/"

ONE_TIME_KEY_MESSAGE = "API key “{}” created. Copy it now, it will not be shown again: <code>{}</code>"


def pretty_json(value: Any) -> str:
    """Indented JSON in a ``<pre>`` for read-only admin fields; ``format_html`` escapes it (header metadata, job
    params and results are untrusted)."""
    if value in (None, [], {}):
        return "-"
    return format_html('<pre class="lf-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "read_only", "expires_at")

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("This field is required.")
        return name

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "read_only", "created_at", "last_used_at", "expires_at", "key_state")
    list_filter = ("read_only",)
    search_fields = ("name", "public_id")
    actions = ("revoke_selected",)
    # key_hash is never shown: it is in no field list, no column and no read-only field.
    change_fields = (
        "name",
        "prefix",
        "read_only",
        "key_state",
        "created_at",
        "created_by",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )

    @admin.display(description="Key prefix", ordering="public_id")
    def prefix(self, api_key: ApiKey) -> str:
        return api_key.prefix

    @admin.display(description="State")
    def key_state(self, api_key: ApiKey) -> str:
        return api_key.state()

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return ApiKeyAddForm.Meta.fields if obj is None else self.change_fields

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return () if obj is None else tuple(name for name in self.change_fields if name != "name")

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # keys are revoked, not deleted, so their use stays traceable

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        created = api_key_create(
            name=form.cleaned_data["name"],
            read_only=form.cleaned_data["read_only"],
            expires_at=form.cleaned_data["expires_at"],
            created_by=request.user if request.user.is_authenticated else None,
        )
        # The admin goes on with ``obj`` (change log, redirect): make it the row the service created.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created.api_key, field.attname))
        obj._state.adding = False
        obj._state.db = created.api_key._state.db
        messages.success(request, format_html(ONE_TIME_KEY_MESSAGE, created.api_key.name, created.plain_key))

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = [api_key_revoke(api_key=api_key) for api_key in queryset]
        self.message_user(request, f"Revoked {len(revoked)} API key(s).", messages.SUCCESS)


@admin.register(BackgroundJob)
class BackgroundJobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress_percent", "created_via", "created_at", "finished_at")
    list_filter = ("kind", "status")
    list_per_page = 100
    fields = (
        "id",
        "kind",
        "status",
        "progress_percent",
        "message",
        "created_via",
        "celery_task_id",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "cancel_requested_at",
        "params_json",
        "result_json",
        "error",
    )
    readonly_fields = fields

    @admin.display(description="Progress", ordering="progress")
    def progress_percent(self, job: BackgroundJob) -> str:
        return f"{round(100 * job.progress)}%"

    @admin.display(description="Parameters")
    def params_json(self, job: BackgroundJob) -> str:
        return pretty_json(job.params)

    @admin.display(description="Result")
    def result_json(self, job: BackgroundJob) -> str:
        return pretty_json(job.result)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BackgroundJob | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BackgroundJob | None = None) -> bool:
        return False
