from django.apps import AppConfig


class AdaptersConfig(AppConfig):
    name = "adapters"
    verbose_name = "Adapters"
    default_auto_field = "django.db.models.BigAutoField"
