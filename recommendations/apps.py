from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adapters.signals import adapters_imported
        from loraforge.db_triggers import install_after_migrate
        from recommendations.db_triggers import install
        from recommendations.receivers import adapters_written

        adapters_imported.connect(adapters_written, dispatch_uid="recommendations.adapters_written")
        install_after_migrate(self, install)
