"""SDNext's global, phase-based progress state (§3.3) and the /progress and /status views of it."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime
from typing import Any


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d%H%M%S")


class ProgressState:
    """One process-wide state: every phase start resets it, every phase end clears id/job/job_count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.id: str | int = 0  # the integer 0 before the first job after process start
        self.job = ""
        self.job_count = 0
        self.job_no = 0
        self.sampling_step = 0
        self.sampling_steps = 0
        self.skipped = False
        self.interrupted = False
        self.job_timestamp = "0"
        self.phase_started = time.monotonic()
        self.total = 0
        self.active = False
        self.preview: str | None = None

    def begin(self, job: str) -> None:
        with self.lock:
            self.id = secrets.token_hex(8)[:15]
            self.job = job
            self.job_count = 1
            self.job_no = 0
            self.sampling_step = 0
            self.sampling_steps = 0
            self.skipped = False
            self.interrupted = False
            self.job_timestamp = timestamp()
            self.phase_started = time.monotonic()
            self.preview = None
            if job.startswith("API-"):
                self.total += 1

    def end(self) -> None:
        with self.lock:
            self.id = ""
            self.job = ""
            self.job_count = 0

    def update(self, **fields: Any) -> None:
        with self.lock:
            for name, value in fields.items():
                setattr(self, name, value)

    def _progress(self) -> float:
        steps = self.sampling_steps
        if steps <= 0:
            return 0.0
        return round(min(1.0, (steps * self.job_no + self.sampling_step) / (steps * max(self.job_count, 1))), 2)

    def progress_body(self, *, skip_current_image: bool) -> dict[str, Any]:
        with self.lock:
            state = {
                "skipped": self.skipped,
                "interrupted": self.interrupted,
                "job": self.job,
                "job_count": self.job_count,
                "job_timestamp": self.job_timestamp,
                "job_no": self.job_no,
                "sampling_step": self.sampling_step,
                "sampling_steps": self.sampling_steps,
            }
            body: dict[str, Any] = {"id": self.id, "progress": 0, "eta_relative": 0, "state": state}
            body |= {"current_image": None, "textinfo": None}
            if self.job_count == 0 and self.sampling_step == 0:
                return body
            progress = self._progress()
            elapsed = time.monotonic() - self.phase_started
            body["progress"] = progress
            body["eta_relative"] = round(elapsed / progress - elapsed, 2) if progress > 0 else 0
            if not skip_current_image:
                body["current_image"] = self.preview
            return body

    def status_body(self) -> dict[str, Any]:
        with self.lock:
            if self.active:
                status = "running"
            elif self.interrupted:
                status = "interrupted"
            elif self.skipped:
                status = "skipped"
            else:
                status = "idle"
            elapsed = time.monotonic() - self.phase_started if self.active else None
            progress = self._progress() if self.active else 0.0
            eta = round(elapsed / progress - elapsed, 2) if elapsed is not None and progress > 0 else None
            return {
                "status": status,
                "task": self.job,
                "timestamp": self.job_timestamp if self.active else None,
                "current": "",
                "id": self.id,
                "job": self.job_no,
                "jobs": self.job_count,
                "total": self.total,
                "step": self.sampling_steps * self.job_no + self.sampling_step,
                "steps": self.sampling_steps * self.job_count,
                "queued": 0,
                "uptime": round(time.monotonic() - self.started),
                "elapsed": round(elapsed, 2) if elapsed is not None else None,
                "eta": eta,
                "progress": progress,
            }
