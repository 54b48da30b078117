from django.apps import AppConfig


class AdaptersConfig(AppConfig):
    name = "adapters"
    verbose_name = "Adapters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adapters.db_triggers import install
        from loraforge.db_triggers import install_after_migrate

        install_after_migrate(self, install)
