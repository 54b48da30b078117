"""The Celery application: JSON only, acks late, results ignored (the database is the truth)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loraforge.settings")

app = Celery("loraforge")
app.config_from_object("loraforge.celery_config")
app.autodiscover_tasks()
