from django.apps import AppConfig
from django.db.backends.base.base import BaseDatabaseWrapper


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adapters.signals import adapters_imported
        from loraforge.db_triggers import install_after_migrate
        from recommendations.db_triggers import install
        from recommendations.receivers import adapters_written
        from recommendations.usage_triggers import install as install_usage

        adapters_imported.connect(adapters_written, dispatch_uid="recommendations.adapters_written")

        def install_all(connection: BaseDatabaseWrapper) -> None:
            install(connection)
            install_usage(connection)

        install_after_migrate(self, install_all)
