"""``make run``: the embedded shape from a fresh data folder, as a new user starts it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from loraforge.lifespan import NO_API_KEY
from tests.processes import REPO_ROOT, ProcessSet, child_env, free_port, stop, wait_for_http, wait_for_log

pytestmark = [pytest.mark.slow]

START_TIMEOUT = 180.0  # migrating a fresh SQLite database on a loaded machine
EXIT_TIMEOUT = 10.0


def test_make_run_serves_the_embedded_shape_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = child_env(
        HOST="127.0.0.1",
        PORT=str(port),
        LORAFORGE_DATA_DIR=str(tmp_path / "data"),
        LORAFORGE_EMBEDDED_WORKER="auto",
        LORAFORGE_LOG_LEVEL="info",
        DATABASE_URL=None,
        REDIS_URL=None,
        LORAFORGE_LORA_DIRS=None,
        # a make running this test must not hand its flags or jobserver to ours
        MAKEFLAGS=None,
        MFLAGS=None,
        MAKELEVEL=None,
        MAKEOVERRIDES=None,
    )
    # The venv exists; -o keeps make from reinstalling it when requirements.txt is newer than the
    # stamp (the machine may be offline). Everything else is the real target: migrate, then uvicorn.
    argv = ["make", "--no-print-directory", "-o", ".venv/.runtime", "run"]
    with ProcessSet(tmp_path / "logs") as procs:
        make = procs.start("make-run", argv, env=env, cwd=REPO_ROOT)
        health = wait_for_http(f"http://127.0.0.1:{port}/api/health", proc=make, timeout=START_TIMEOUT)
        assert health.json() == {"status": "ok"}
        assert requests.get(f"http://127.0.0.1:{port}/api/v1/adapters", timeout=10).status_code == 401

        log = wait_for_log(make, "Application startup complete")
        assert NO_API_KEY in log
        assert NO_API_KEY == "No API key configured. Create one with: python manage.py create_api_key --name <name>"
        assert "Embedded Celery worker started" in log
        assert (tmp_path / "data" / "db.sqlite3").is_file()

        started = time.monotonic()
        stop(make, sig=signal.SIGTERM, timeout=EXIT_TIMEOUT)
        assert make.stopped_in is not None
        assert make.stopped_in < EXIT_TIMEOUT, make.describe()
        assert time.monotonic() - started < EXIT_TIMEOUT + 1
        log = make.log()
        assert "Embedded Celery worker stopped" in log
        assert "Application shutdown complete" in log
        with pytest.raises(ProcessLookupError):
            os.killpg(make.pid, 0)
