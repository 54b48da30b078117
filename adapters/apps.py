from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AdaptersConfig(AppConfig):
    name = "adapters"
    verbose_name = "Adapters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adapters.db_triggers import reinstall_after_migrate

        post_migrate.connect(reinstall_after_migrate, sender=self, dispatch_uid="adapters.db_triggers")
