from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    verbose_name = "Deliveries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deliveries.events import delivery_job_snapshots
        from deliveries.http_cli_runners import CliRunner, HttpRunner
        from deliveries.recovery import delivery_jobs_recover
        from deliveries.runner_registry import runner_register
        from loraforge.jobs.recovery import register_recovery_hook
        from loraforge.jobs.snapshots import register_snapshot_provider

        register_snapshot_provider(delivery_job_snapshots)
        register_recovery_hook(delivery_jobs_recover)
        runner_register(HttpRunner())
        runner_register(CliRunner())
