"""Admin for delivery jobs (SPEC 9.1): read-only rows; "cancel" and "re-run" call the services the API uses."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from rest_framework.exceptions import ValidationError

from adapters.admin.display import DeferringChangeList
from deliveries.events import result_images
from deliveries.models import DeliveryJob, DeliveryOrigin
from deliveries.representation import with_links
from deliveries.services import AdapterLink, delivery_job_cancel, delivery_job_create
from loraforge.admin import pretty_json
from loraforge.errors import ApiProblem

STATUS_COLOURS = {
    "pending": "#757575",
    "running": "#1565c0",
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#6d4c41",
}
JOB_FIELDS = (
    "id", "kind", "mode", "status_badge", "created_via", "requested_backend", "backend_name", "attempts", "worker",
    "celery_task_id",
)  # fmt: skip
PROGRESS_FIELDS = ("progress_percent", "current_step", "total_steps", "eta_seconds", "message", "error", "error_code")
TIME_FIELDS = (
    "created_at", "enqueued_at", "started_at", "heartbeat_at", "cancel_requested_at", "finished_at", "updated_at",
)  # fmt: skip
DETAIL_FIELDS = ("params_json", "result_json", "linked_adapters", "result_thumbnails")


def job_links(job: DeliveryJob) -> list[AdapterLink]:
    """The job's adapter links, to give a re-run the same adapters and weights."""
    return [
        AdapterLink(link.adapter_id, link.adapter_name, link.sdnext_name, link.weight)
        for link in job.adapter_links.all()
    ]


@admin.register(DeliveryJob)
class DeliveryJobAdmin(admin.ModelAdmin):
    list_display = (
        "short_id", "kind", "mode", "status_badge", "backend_name", "created_at", "duration", "adapter_list",
        "image_count",
    )  # fmt: skip
    list_display_links = ("short_id",)
    list_filter = ("status", "kind", "mode", "backend_name", "created_at")
    search_fields = ("prompt", "id")
    search_help_text = "Prompt text or job id."
    list_per_page = 100
    changelist_deferred = ("params",)
    actions = ("cancel_selected", "rerun_selected")
    fieldsets = (
        (None, {"fields": JOB_FIELDS}),
        ("Prompt", {"fields": ("prompt",)}),
        ("Progress and outcome", {"fields": PROGRESS_FIELDS}),
        ("Parameters and result", {"fields": ("params_json", "result_json")}),
        ("Adapters and images", {"fields": ("linked_adapters", "result_thumbnails")}),
        ("Timestamps", {"fields": TIME_FIELDS}),
    )
    readonly_fields = (*JOB_FIELDS, "prompt", *PROGRESS_FIELDS, *DETAIL_FIELDS, *TIME_FIELDS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeliveryJob]:
        return with_links(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeferringChangeList

    # --- read-only ----------------------------------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeliveryJob | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DeliveryJob | None = None) -> bool:
        return False

    # --- columns ------------------------------------------------------------------------------
    @admin.display(description="Id", ordering="id")
    def short_id(self, job: DeliveryJob) -> str:
        return str(job.pk)[:8]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, job: DeliveryJob) -> str:
        colour = STATUS_COLOURS.get(job.status, "#757575")
        return format_html('<span style="color: {}; font-weight: bold">{}</span>', colour, job.status)

    @admin.display(description="Duration")
    def duration(self, job: DeliveryJob) -> str:
        seconds = job.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="Adapters")
    def adapter_list(self, job: DeliveryJob) -> str:
        return ", ".join(f"{link.sdnext_name}:{link.weight:g}" for link in job.adapter_links.all()) or "-"

    @admin.display(description="Images")
    def image_count(self, job: DeliveryJob) -> int:
        return len(result_images(job))

    # --- detail -------------------------------------------------------------------------------
    @admin.display(description="Progress")
    def progress_percent(self, job: DeliveryJob) -> str:
        return f"{job.progress_percent}%"

    @admin.display(description="Parameters")
    def params_json(self, job: DeliveryJob) -> str:
        return pretty_json(job.params)

    @admin.display(description="Result")
    def result_json(self, job: DeliveryJob) -> str:
        return pretty_json(job.result)

    @admin.display(description="Linked adapters")
    def linked_adapters(self, job: DeliveryJob) -> str:
        links = list(job.adapter_links.all())
        if not links:
            return "-"
        rows = [
            (self._adapter_href(link.adapter_id), link.adapter_name, link.sdnext_name, link.weight) for link in links
        ]
        return format_html(
            "<ol>{}</ol>", format_html_join("", '<li><a href="{}">{}</a> <code>{}</code> weight {}</li>', rows)
        )

    @staticmethod
    def _adapter_href(adapter_id: Any) -> str:
        return reverse("admin:adapters_adapter_change", args=[adapter_id]) if adapter_id else "#"

    @admin.display(description="Images")
    def result_thumbnails(self, job: DeliveryJob) -> str:
        images = result_images(job)
        if not images:
            return "-"
        return format_html_join(
            "",
            '<a href="{}" target="_blank"><img src="{}" alt="" height="128" loading="lazy"></a> ',
            ((url, url) for url in images),
        )

    # --- actions: the API's services ----------------------------------------------------------
    @admin.action(description="Cancel selected jobs")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[DeliveryJob]) -> None:
        cancelled, refused = 0, []
        for job in queryset:
            try:
                delivery_job_cancel(job=job)
                cancelled += 1
            except ApiProblem as exc:
                refused.append(f"{str(job.pk)[:8]}: {exc.detail}")
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Re-run selected jobs (same prompt, parameters and adapters)")
    def rerun_selected(self, request: HttpRequest, queryset: QuerySet[DeliveryJob]) -> None:
        created, failed = [], []
        for job in queryset:
            try:
                rerun = delivery_job_create(
                    mode=job.mode,
                    prompt=job.prompt,
                    params=job.params,
                    created_via=DeliveryOrigin.ADMIN,
                    requested_backend=job.requested_backend,
                    links=job_links(job),
                )
            except ApiProblem as exc:
                failed.append(f"{str(job.pk)[:8]}: {exc.detail}")
                continue
            except ValidationError as exc:  # the pinned backend is unknown or disabled now
                failed.append(f"{str(job.pk)[:8]}: {_first_message(exc.detail)}")
                continue
            created.append(str(rerun.pk)[:8])
        if created:
            self.message_user(request, f"Queued {len(created)} new job(s): {', '.join(created)}.", messages.SUCCESS)
        if failed:
            self.message_user(request, "Could not re-run: " + "; ".join(failed), messages.ERROR)


def _first_message(detail: Any) -> str:
    """The first text of a DRF validation error (``{"backend": ["..."]}`` → ``"..."``)."""
    while isinstance(detail, dict | list) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)
