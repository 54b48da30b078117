"""LoRAForge project package.

The Celery app is imported here so that every process (web, commands, workers, tests) enqueues
tasks through LoRAForge's broker, not Celery's default app.
"""

import os

# numpy's OpenBLAS threads busy-wait for a while after each product (a semantic similarity), on the cores where a
# request's lexical products share their work with a second thread (recommendations/products.py); they now sleep
# soon after their work. Set in the environment to override; it takes effect only before numpy loads, which nothing
# in this package does at import.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from loraforge.celery import app as celery_app

__version__ = "1.0.0"
__all__ = ["__version__", "celery_app"]
