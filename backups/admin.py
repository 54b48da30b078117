"""Admin of backups (SPEC 9.1): the list with download links, buttons that queue a full or a metadata backup,
"Verify" on selected backups, "Restore (merge)" of one; deleting removes the file; nothing is edited through a form."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from backups.archive.estimate import format_size
from backups.models import Backup, BackupStatus, BackupTrigger, BackupType
from backups.serializers.backups import DOWNLOAD_URL
from backups.services.backups import backup_create, backup_delete
from backups.services.restore import backup_restore_start, backup_verify
from loraforge.errors import ApiProblem

CREATE_BUTTONS = {"full": BackupType.FULL, "metadata": BackupType.METADATA_ONLY}


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ("created_at", "backup_type", "status", "human_size", "short_sha256", "download_link", "trigger")
    list_filter = ("status", "backup_type", "trigger")
    ordering = ("-created_at", "-id")
    actions = ("verify_selected", "restore_merge")
    change_list_template = "admin/backups/backup/change_list.html"
    fields = (
        "id", "backup_type", "status", "file_name", "human_size", "sha256", "counts", "error", "job", "trigger",
        "created_at", "started_at", "finished_at", "download_link",
    )  # fmt: skip
    readonly_fields = fields

    # --- columns ---------------------------------------------------------------------------------------
    @admin.display(description="Size", ordering="size")
    def human_size(self, backup: Backup) -> str:
        return format_size(backup.size) if backup.size is not None else "-"

    @admin.display(description="SHA-256")
    def short_sha256(self, backup: Backup) -> str:
        return backup.sha256[:12] if backup.sha256 else "-"

    @admin.display(description="Download")
    def download_link(self, backup: Backup) -> str:
        if backup.status != BackupStatus.COMPLETED:
            return "-"
        return format_html('<a href="{}">{}</a>', DOWNLOAD_URL.format(id=backup.pk), backup.file_name)

    # --- permissions: no adding or editing through the form ------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- delete removes the file --------------------------------------------------------------------------
    def delete_model(self, request: HttpRequest, obj: Backup) -> None:
        try:
            backup_delete(obj)
        except ApiProblem as exc:
            self.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        for backup in queryset:
            self.delete_model(request, backup)

    # --- actions and buttons ------------------------------------------------------------------------------
    @admin.action(description="Verify selected backups")
    def verify_selected(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        for backup in queryset.order_by("-created_at"):
            problems = backup_verify(backup)
            if problems:
                self.message_user(request, f"Backup {backup.pk}: {'; '.join(problems)}", messages.ERROR)
            else:
                self.message_user(
                    request, f"Backup {backup.pk} verified: every member matches its manifest", messages.SUCCESS
                )

    @admin.action(description="Restore the selected backup (merge)")
    def restore_merge(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        """Queue a restore (mode ``merge``) of exactly one completed backup, like ``POST /backups/{id}/restore``."""
        selected = list(queryset[:2])
        if len(selected) != 1:
            self.message_user(request, "Select exactly one backup to restore", messages.ERROR)
            return
        try:
            job = backup_restore_start(selected[0], mode="merge", created_via=BackupTrigger.ADMIN)
        except ApiProblem as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return
        self.message_user(request, f"Restore of backup {selected[0].pk} queued (job {job.pk})", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        create = self.admin_site.admin_view(self.create_view)
        return [path("create/<str:which>/", create, name="backups_backup_create"), *super().get_urls()]

    def create_view(self, request: HttpRequest, which: str) -> HttpResponse:
        """The changelist's "Create full backup" / "Create metadata backup" buttons (POST): queue one."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if which not in CREATE_BUTTONS or not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:backups_backup_changelist"))
        try:
            backup = backup_create(
                backup_type=CREATE_BUTTONS[which], trigger=BackupTrigger.ADMIN, created_via=BackupTrigger.ADMIN
            )
        except ApiProblem as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
        else:
            label = backup.get_backup_type_display()
            self.message_user(request, f"{label} backup {backup.pk} queued (job {backup.job_id})", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:backups_backup_changelist"))
