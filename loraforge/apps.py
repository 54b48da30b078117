from django.apps import AppConfig


class LoraforgeConfig(AppConfig):
    name = "loraforge"
    verbose_name = "LoRAForge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from loraforge import checks, schema  # noqa: F401  (registers system checks and schema extensions)
