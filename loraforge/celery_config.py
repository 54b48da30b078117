"""Celery settings, derived from the Django settings (which read the environment).

Embedded shape (no ``REDIS_URL``): the in-memory transport, consumed by the worker that runs inside the
ASGI server (``loraforge.embedded``). Distributed shape: Redis. Either way JSON only, acks late, one
message prefetched per worker thread, results ignored (the database is the source of truth).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from kombu import Queue

# ``memory://`` alone makes kombu warn "No hostname was supplied" on every connection.
broker_url = "memory://localhost/" if settings.CELERY_BROKER_URL.startswith("memory") else settings.CELERY_BROKER_URL
broker_connection_retry_on_startup = True
broker_connection_timeout = 3
broker_transport_options: dict[str, Any] = (
    {"polling_interval": 0.02} if broker_url.startswith("memory") else {"visibility_timeout": 7200}
)
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None
result_expires = None  # nothing to expire, and beat then schedules no celery.backend_cleanup
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_default_queue = "default"
task_queues = (Queue("default", routing_key="default"), Queue("generation", routing_key="generation"))
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
# Periodic tasks are added to ``beat_schedule`` by name (JSON arguments only). The plain Scheduler keeps
# its state in memory: nothing is pickled to a ``celerybeat-schedule`` shelve file.
# Recovery sweeps every 60 s, sooner when jobs go stale sooner (LORAFORGE_JOB_STALE_SECONDS below 60).
RECOVERY_PERIOD = float(min(60, settings.LORAFORGE_JOB_STALE_SECONDS))
# The options of a periodic prune (the tasks named below): redelivered if its worker dies, no result kept, five
# minutes at most.
PRUNE_TASK: dict[str, Any] = {
    "queue": "default", "acks_late": True, "reject_on_worker_lost": True, "ignore_result": True,
    "soft_time_limit": 300, "time_limit": 360,
}  # fmt: skip
beat_schedule: dict[str, dict[str, Any]] = {
    "recover-jobs": {  # every registered kind of job (loraforge.jobs.registry)
        "task": "loraforge.recover_jobs",
        "schedule": RECOVERY_PERIOD,
        "options": {"queue": "default", "expires": RECOVERY_PERIOD * 0.9},
    },
}
# Resource samples (SPEC 3.6): recorded every LORAFORGE_RESOURCE_SAMPLE_SECONDS (0 = off), pruned hourly.
RESOURCE_SAMPLE_PERIOD = float(settings.LORAFORGE_RESOURCE_SAMPLE_SECONDS)
RESOURCE_PRUNE_PERIOD = 3600.0
if RESOURCE_SAMPLE_PERIOD > 0:
    beat_schedule["record-resource-sample"] = {
        "task": "analytics.record_resource_sample",
        "schedule": RESOURCE_SAMPLE_PERIOD,
        "options": {"queue": "default", "expires": RESOURCE_SAMPLE_PERIOD * 0.9},
    }
beat_schedule["prune-resource-samples"] = {
    "task": "analytics.prune_resource_samples",
    "schedule": RESOURCE_PRUNE_PERIOD,
    "options": {"queue": "default", "expires": RESOURCE_PRUNE_PERIOD * 0.9},
}
# The co-usage log of changed jobs keeps its newest rows (recommendations/services/usage_changes.py).
USAGE_CHANGES_PRUNE_PERIOD = 600.0
beat_schedule["prune-usage-changes"] = {
    "task": "recommendations.prune_usage_changes",
    "schedule": USAGE_CHANGES_PRUNE_PERIOD,
    "options": {"queue": "default", "expires": USAGE_CHANGES_PRUNE_PERIOD * 0.9},
}
# Scheduled metadata_only backups every LORAFORGE_BACKUP_INTERVAL_HOURS (0 = off; SPEC 6.10.4).
BACKUP_PERIOD = float(settings.LORAFORGE_BACKUP_INTERVAL_HOURS * 3600)
if BACKUP_PERIOD > 0:
    beat_schedule["scheduled-backup"] = {
        "task": "backups.scheduled_backup",
        "schedule": BACKUP_PERIOD,
        "options": {"queue": "default", "expires": BACKUP_PERIOD * 0.9},
    }
beat_scheduler = "celery.beat:Scheduler"
beat_enable_remote_control = False
# Logging stays Django's (``LOGGING`` in settings); see ``loraforge.celery.keep_django_logging``.
worker_hijack_root_logger = False
worker_redirect_stdouts = False
worker_send_task_events = False
timezone = "UTC"
enable_utc = True
