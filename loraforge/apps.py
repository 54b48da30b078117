from django.apps import AppConfig


class LoraforgeConfig(AppConfig):
    name = "loraforge"
    verbose_name = "LoRAForge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from loraforge import checks, schema  # noqa: F401  (registers system checks and schema extensions)
        from loraforge.jobs.recovery import background_jobs_recover
        from loraforge.jobs.registry import JobKind, job_kind_register
        from loraforge.jobs.snapshots import background_job_snapshot_events
        from loraforge.models import BackgroundJob

        events = background_job_snapshot_events
        job_kind_register(JobKind(model=BackgroundJob, snapshot_events=events, recover=background_jobs_recover))
