from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.db_triggers import install
        from loraforge.db_triggers import install_after_migrate

        install_after_migrate(self, install)
