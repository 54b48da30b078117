"""A Celery worker for the backup tests: ``python -m tests.backups.worker <celery worker arguments>``.

When ``BACKUP_TEST_DELAY`` is set, the archive writer is slowed down by that many seconds per progress step, so that
a test has time to cancel a backup or kill the worker while it writes."""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def _wrap(original: Any, delay: float) -> Any:
    class Slow:
        def __init__(self, progress: Any) -> None:
            self._progress = progress

        def planned(self, total_bytes: int) -> None:
            self._progress.planned(total_bytes)

        def advance(self, nbytes: int, member: str) -> None:
            time.sleep(delay)
            self._progress.advance(nbytes, member)

        def cancelled(self) -> bool:
            return bool(self._progress.cancelled())

    def write(target: Any, options: Any, **kwargs: Any) -> Any:
        kwargs["progress"] = Slow(kwargs.get("progress"))
        return original(target, options, **kwargs)

    return write


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loraforge.settings")
    django.setup()
    delay = float(os.environ.get("BACKUP_TEST_DELAY") or 0)
    if delay > 0:
        import importlib

        build = importlib.import_module("backups.archive.build")
        setattr(build, "archive_write", _wrap(build.archive_write, delay))  # noqa: B010
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", *sys.argv[1:]]
    celery_main()


if __name__ == "__main__":
    main()
