"""A backup through the real server in the embedded shape (no Redis; SPEC 1.4, 5.9): the API queues it, the
worker inside the server writes it, the download streams it."""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.factories import AdapterFactory
from tests.processes import ProcessSet, server_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_embedded_server_runs_a_backup_and_streams_its_download(tmp_path, lora_dir, api_key):
    """The embedded shape (no Redis): ``POST /backups`` answers 202, the worker inside the server writes the backup,
    the history shows it completed and the download streams exactly the stored file."""
    AdapterFactory.create_batch(3)
    headers = {"X-API-Key": api_key}
    env = server_env(tmp_path, LORAFORGE_LORA_DIRS=str(lora_dir))
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        created = requests.post(f"{base_url}/api/v1/backups", json={"backup_type": "full"}, headers=headers, timeout=30)
        assert created.status_code == 202, created.text
        backup_id = created.json()["backup_id"]

        def finished() -> dict | None:
            item = requests.get(f"{base_url}/api/v1/backups/{backup_id}", headers=headers, timeout=30).json()
            return item if item["status"] in ("completed", "failed") else None

        item = wait_until(finished, timeout=90, what="the backup to finish", procs=[web])
        assert (item["status"], item["error"]) == ("completed", None)
        download = requests.get(f"{base_url}{item['download_url']}", headers=headers, timeout=60)
    assert download.status_code == 200
    assert int(download.headers["Content-Length"]) == item["size"] == len(download.content)
    assert hashlib.sha256(download.content).hexdigest() == item["sha256"]
    assert (tmp_path / "data" / "backups" / item["file_name"]).read_bytes() == download.content
