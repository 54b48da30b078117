"""Backups with a real Celery worker process on Redis (SPEC 5.11, 6.2.6, 6.10.4, 7): a backup queued by the service
completes in the worker; one cancelled while the worker writes ends ``failed`` "Cancelled by user" without a partial
file; one whose worker is killed with SIGKILL is failed by the recovery sweep and its ``.part`` file removed.

The worker runs ``tests.backups.worker`` (Celery with the archive writer slowed by ``BACKUP_TEST_DELAY`` seconds per
progress step, so there is time to act while it writes)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from celery import Celery

from backups.models import Backup
from backups.services.backups import backup_create
from loraforge.jobs.background import job_cancel
from loraforge.jobs.recovery import WORKER_LOST
from loraforge.models import BackgroundJob
from tests.backups.helpers import sha256_of
from tests.factories import AdapterFactory
from tests.processes import PYTHON, Proc, ProcessSet, server_env, stop, wait_for_log, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

STALE_SECONDS = 5


@pytest.fixture
def folder(tmp_path: Path, settings, lora_dir: Path) -> Path:
    """The backups folder the worker writes to (its data folder's), known to this process's services too."""
    settings.LORAFORGE_BACKUP_DIR = tmp_path / "data" / "backups"
    return settings.LORAFORGE_BACKUP_DIR


def _env(tmp_path: Path, lora_dir: Path, redis_url: str, delay: float) -> dict[str, str]:
    return server_env(
        tmp_path,
        LORAFORGE_LORA_DIRS=str(lora_dir),
        LORAFORGE_JOB_STALE_SECONDS=str(STALE_SECONDS),
        REDIS_URL=redis_url,
        BACKUP_TEST_DELAY=str(delay),
    )


def _start_worker(procs: ProcessSet, env: dict[str, str]) -> Proc:
    argv = [PYTHON, "-m", "tests.backups.worker", "-A", "loraforge", "worker", "-Q", "default", "--pool", "threads"]
    return procs.start("worker", [*argv, "-c", "2", "--hostname", f"backups-{uuid.uuid4().hex[:8]}@%h"], env=env)


def _queue_backup(redis_url: str, sent: list[tuple[str, list, dict]]) -> Backup:
    """A backup created by the service; the task it queued is sent again through Redis for the worker."""
    backup = backup_create(backup_type="full", trigger="api", created_via="api")
    [(name, args, _options)] = sent
    client = Celery("tests", broker=redis_url)
    try:
        client.send_task(name, args=args, queue="default")
    finally:
        client.close()
    return backup


def _row(backup: Backup) -> Backup:
    return Backup.objects.get(pk=backup.pk)


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.part")) if folder.exists() else []


def test_a_queued_backup_completes_in_the_worker(tmp_path, lora_dir, folder, redis_url, sent_tasks):
    AdapterFactory.create_batch(3)
    backup = _queue_backup(redis_url, sent_tasks)
    with ProcessSet(tmp_path / "logs") as procs:
        worker = _start_worker(procs, _env(tmp_path, lora_dir, redis_url, delay=0))
        done = wait_until(
            lambda: (row := _row(backup)).status in ("completed", "failed") and row, timeout=90,
            what="the backup to finish", procs=[worker],
        )  # fmt: skip
    assert (done.status, done.error) == ("completed", None)
    path = folder / str(done.file_name)
    assert (done.size, done.sha256) == (path.stat().st_size, sha256_of(path))
    assert done.counts["adapters"] == 3
    assert BackgroundJob.objects.get(pk=done.job_id).status == "succeeded"
    assert _parts(folder) == []


def test_a_backup_cancelled_while_the_worker_writes_ends_failed_without_files(
    tmp_path,
    lora_dir,
    folder,
    redis_url,
    sent_tasks,
):
    AdapterFactory.create_batch(30)
    backup = _queue_backup(redis_url, sent_tasks)
    with ProcessSet(tmp_path / "logs") as procs:
        worker = _start_worker(procs, _env(tmp_path, lora_dir, redis_url, delay=0.5))
        wait_until(lambda: _parts(folder), timeout=60, what="the worker to write", procs=[worker])
        job_cancel(job=BackgroundJob.objects.get(pk=backup.job_id))
        wait_for_log(worker, f"Backup {backup.pk} cancelled while writing", timeout=30)
    row = _row(backup)
    assert (row.status, row.error) == ("failed", "Cancelled by user")
    assert BackgroundJob.objects.get(pk=backup.job_id).status == "cancelled"
    assert list(folder.iterdir()) == []


def test_a_worker_killed_mid_backup_leaves_a_failed_backup_and_no_part_file(
    tmp_path,
    lora_dir,
    folder,
    redis_url,
    sent_tasks,
):
    AdapterFactory.create_batch(60)
    backup = _queue_backup(redis_url, sent_tasks)
    env = _env(tmp_path, lora_dir, redis_url, delay=0.5)
    with ProcessSet(tmp_path / "logs") as procs:
        first = _start_worker(procs, env)
        [part] = wait_until(lambda: _parts(folder), timeout=60, what="the worker to write", procs=[first])
        stop(first, sig=signal.SIGKILL)
        assert part.exists()  # nobody is left to clean it up
        assert _row(backup).status == "running"

        job = BackgroundJob.objects.get(pk=backup.job_id)
        wait_until(lambda: _row(backup).status != "running" or _stale(job), timeout=30, what="a stale heartbeat")
        second = _start_worker(procs, {**env, "BACKUP_TEST_DELAY": "0"})  # its start runs the recovery sweep
        failed = wait_until(
            lambda: (row := _row(backup)).status == "failed" and row, timeout=90, what="the recovery", procs=[second]
        )
    assert failed.error == WORKER_LOST
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", WORKER_LOST)
    assert _parts(folder) == []
    assert list(folder.iterdir()) == []


def _stale(job: BackgroundJob) -> bool:
    from django.utils import timezone

    job.refresh_from_db()
    beat = job.heartbeat_at or job.started_at
    return beat is not None and (timezone.now() - beat).total_seconds() > STALE_SECONDS + 0.5
