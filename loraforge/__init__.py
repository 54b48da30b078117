"""LoRAForge project package.

The Celery app is imported here so that every process (web, commands, workers, tests) enqueues
tasks through LoRAForge's broker, not Celery's default app.
"""

from loraforge.celery import app as celery_app

__version__ = "1.0.0"
__all__ = ["__version__", "celery_app"]
