"""The backups app's Celery tasks (SPEC 6.2.2, 6.10.4): declared like every job task, registered with the app,
scheduled through beat when ``LORAFORGE_BACKUP_INTERVAL_HOURS`` is set."""

from __future__ import annotations

import importlib

import pytest

from backups import tasks
from backups.models import Backup
from loraforge.celery import app
from loraforge.models import BackgroundJob
from tests.factories import AdapterFactory


@pytest.mark.parametrize("name", ["backups.run_backup", "backups.run_restore"])
def test_the_job_tasks_are_registered_and_declared_like_every_job_task(name):
    task = app.tasks[name]
    assert (task.acks_late, task.reject_on_worker_lost, task.ignore_result) == (True, True, True)
    assert task.soft_time_limit == 24 * 3600
    assert task.time_limit > task.soft_time_limit
    assert task.queue == "default"


@pytest.fixture
def reload_celery_config(settings):
    import loraforge.celery_config as config

    yield lambda: importlib.reload(config)
    importlib.reload(config)


def test_the_schedule_holds_a_backup_entry_only_when_an_interval_is_set(settings, reload_celery_config):
    settings.LORAFORGE_BACKUP_INTERVAL_HOURS = 0
    assert "scheduled-backup" not in reload_celery_config().beat_schedule
    settings.LORAFORGE_BACKUP_INTERVAL_HOURS = 6
    entry = reload_celery_config().beat_schedule["scheduled-backup"]
    assert (entry["task"], entry["schedule"]) == ("backups.scheduled_backup", 6 * 3600.0)
    assert "backups.scheduled_backup" in app.tasks


@pytest.mark.django_db(transaction=True)
def test_the_scheduled_task_queues_a_metadata_backup(backup_dir, sent_tasks):
    tasks.scheduled_backup()
    backup = Backup.objects.get()
    assert (backup.backup_type, backup.trigger, backup.status) == ("metadata_only", "schedule", "pending")
    assert BackgroundJob.objects.get(pk=backup.job_id).created_via == "schedule"
    assert sent_tasks == [("backups.run_backup", [str(backup.job_id)], {})]


@pytest.mark.django_db
def test_the_backup_task_called_directly_writes_the_backup(backup_dir, sent_tasks):
    AdapterFactory()
    from backups.services.backups import backup_create

    backup = backup_create(backup_type="full", trigger="api", created_via="api", enqueue=False)
    tasks.run_backup(str(backup.job_id))
    backup.refresh_from_db()
    assert backup.status == "completed"
    tasks.run_backup(str(backup.job_id))  # a redelivered task: nothing more happens
    assert Backup.objects.get().sha256 == backup.sha256
