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


# --- rollups (issue 12): kept exact by database triggers (analytics/db_triggers.py) ---------------------------------
# Every row counts the ``kind = 'generation'`` delivery jobs created in one UTC hour (or day); the triggers update them
# in the transaction that writes the jobs and their adapter links, with upserts, so concurrent writers stay exact.
# ``analytics.selectors.rollups.rollups_rebuild()`` recomputes them from scratch.


class JobHourRollup(models.Model):
    """Generation jobs created in one hour, by status, with the summed duration of the succeeded ones."""

    bucket = models.DateTimeField(primary_key=True)
    total = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    running = models.BigIntegerField(default=0)
    succeeded = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    cancelled = models.BigIntegerField(default=0)
    duration_us = models.BigIntegerField(default=0, help_text="Sum of finished_at - started_at (µs), succeeded jobs")
    duration_count = models.BigIntegerField(default=0, help_text="Succeeded jobs with both timestamps")

    class Meta:
        ordering = ["bucket"]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H}h: {self.total} jobs"


class JobErrorHourRollup(models.Model):
    """Failed generation jobs created in one hour, by error code (null → ``unknown``) and error text."""

    id = models.BigAutoField(primary_key=True)
    bucket = models.DateTimeField()
    error_code = models.CharField(max_length=64)
    error_key = models.TextField(help_text="'' for a null error, else 't' + the text (SQLite) or its md5 (PostgreSQL)")
    error = models.TextField(null=True, blank=True)
    count = models.BigIntegerField(default=0)
    last_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bucket", "error_code"]
        constraints = [
            models.UniqueConstraint(fields=["bucket", "error_code", "error_key"], name="analytics_error_hour_key")
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H}h {self.error_code}: {self.count}"


class AdapterRollup(models.Model):
    """Adapter links of the generation jobs created in one bucket, per adapter (each job once; links without an
    adapter are not counted), with how many of those jobs succeeded or failed."""

    id = models.BigAutoField(primary_key=True)
    adapter_id = models.UUIDField()
    total = models.BigIntegerField(default=0)
    succeeded = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["bucket", "adapter_id"]


class AdapterHourRollup(AdapterRollup):
    """Per UTC hour (the 24h window, and the current day of the 7d and 30d windows)."""

    bucket = models.DateTimeField()

    class Meta(AdapterRollup.Meta):
        constraints = [models.UniqueConstraint(fields=["bucket", "adapter_id"], name="analytics_adapter_hour_key")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H}h {self.adapter_id}: {self.total}"


class AdapterDayRollup(AdapterRollup):
    """Per UTC day (what the 7d and 30d windows read for their whole days)."""

    bucket = models.DateField()

    class Meta(AdapterRollup.Meta):
        constraints = [models.UniqueConstraint(fields=["bucket", "adapter_id"], name="analytics_adapter_day_key")]
        # One adapter's days, read without the table (co-usage sums a partner's succeeded jobs over 180 days).
        indexes = [models.Index(fields=["adapter_id", "bucket", "succeeded"], name="analytics_adapter_day_use")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d} {self.adapter_id}: {self.total}"
