"""Models of the `analytics` app (SPEC 3.6): resource samples. Every other figure is computed from the jobs."""

from __future__ import annotations

from django.db import models


class ResourceSample(models.Model):
    """One reading of the host's CPU and memory and of its first GPU, taken by the sampling task."""

    id = models.BigAutoField(primary_key=True)
    recorded_at = models.DateTimeField(db_index=True)
    host = models.CharField(max_length=255)
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    memory_used_mb = models.IntegerField()
    gpu_percent = models.FloatField(null=True, blank=True)
    gpu_memory_percent = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.host} @ {self.recorded_at:%Y-%m-%d %H:%M:%S}"
