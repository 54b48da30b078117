"""Admin of analytics (SPEC 9.1): resource samples are a read-only list."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from analytics.models import ResourceSample


@admin.register(ResourceSample)
class ResourceSampleAdmin(admin.ModelAdmin):
    list_display = (
        "recorded_at",
        "host",
        "cpu_percent",
        "memory_percent",
        "memory_used_mb",
        "gpu_percent",
        "gpu_memory_percent",
    )
    list_filter = ("host",)
    date_hierarchy = "recorded_at"
    list_per_page = 100
    show_full_result_count = False  # the table grows by one row a minute: no COUNT(*) per page
    fields = list_display
    readonly_fields = list_display

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ResourceSample | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ResourceSample | None = None) -> bool:
        return False
