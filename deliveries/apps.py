from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    verbose_name = "Deliveries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deliveries.events import job_snapshot_events
        from deliveries.http_cli_runners import CliRunner, HttpRunner
        from deliveries.models import DeliveryJob
        from deliveries.recovery import delivery_jobs_recover
        from deliveries.runner_registry import runner_register
        from loraforge.jobs.registry import JobKind, job_kind_register

        kind = JobKind(model=DeliveryJob, snapshot_events=job_snapshot_events, recover=delivery_jobs_recover)
        job_kind_register(kind)
        runner_register(HttpRunner())
        runner_register(CliRunner())
