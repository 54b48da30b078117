"""Celery settings, derived from the Django settings (which read the environment)."""

from __future__ import annotations

from django.conf import settings
from kombu import Queue

broker_url = settings.CELERY_BROKER_URL
broker_connection_retry_on_startup = True
broker_connection_timeout = 3
broker_transport_options = (
    {"polling_interval": 0.05} if broker_url.startswith("memory") else {"visibility_timeout": 7200}
)
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_default_queue = "default"
task_queues = (Queue("default"), Queue("generation"))
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
beat_scheduler = "celery.beat:Scheduler"
worker_hijack_root_logger = False
worker_send_task_events = False
timezone = "UTC"
enable_utc = True
