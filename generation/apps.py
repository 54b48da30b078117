from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deliveries.runner_registry import runner_register, targets_register
        from generation import signals  # noqa: F401 - connects the receivers
        from generation.backends.services import backend_sync_default_on_start
        from generation.backends.target_validation import BackendTargets
        from generation.runner import SDNextRunner
        from loraforge.signals import process_started

        process_started.connect(backend_sync_default_on_start, dispatch_uid="generation.sync_default_backend")
        targets_register(BackendTargets())
        runner_register(SDNextRunner())
