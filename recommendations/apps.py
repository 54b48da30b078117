from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adapters.signals import adapters_imported
        from recommendations.db_triggers import reinstall_after_migrate
        from recommendations.receivers import adapters_written

        adapters_imported.connect(adapters_written, dispatch_uid="recommendations.adapters_written")
        post_migrate.connect(reinstall_after_migrate, sender=self, dispatch_uid="recommendations.db_triggers")
