"""The Celery application: JSON only, acks late, results ignored (the database is the truth).

``celery -A loraforge worker`` and ``celery -A loraforge beat`` find ``app`` here; the embedded worker
(``loraforge.embedded``) runs the same app inside the ASGI server.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

from loraforge.jobs.deadline import task_deadlines_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loraforge.settings")

app = Celery("loraforge")
app.config_from_object("loraforge.celery_config")
app.autodiscover_tasks()
task_deadlines_connect()


@signals.setup_logging.connect
def keep_django_logging(**kwargs: Any) -> None:
    """Keep Django's ``LOGGING`` in worker and beat processes.

    A receiver of ``setup_logging`` tells Celery that logging is configured: it then installs no handler
    of its own, leaves the root level (``LORAFORGE_LOG_LEVEL``) alone and does not redirect stdout/stderr.
    """
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()  # applies LOGGING
