from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backups.admin_export import adapter_export_action_register
        from backups.services.backups import on_background_job_stopped
        from loraforge.signals import background_job_stopped

        adapter_export_action_register()
        # A backup cancelled (even before its task ran) or whose worker was lost ends its row failed (SPEC 5.11, 7).
        background_job_stopped.connect(on_background_job_stopped, dispatch_uid="backups.settle_on_job_stopped")
