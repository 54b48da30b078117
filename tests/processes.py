"""Real processes for tests: free ports, process groups, bounded waits, logs shown when a test fails.

Every process is started in its own session (process group) with its output in a log file, and is
stopped by ``ProcessSet.__exit__`` (SIGTERM to the group, then SIGKILL), whatever the test did. The
logs are printed at exit; pytest shows them only for a failing test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
# The interpreter of the processes tests start. ``make runtime-check`` points it at a venv built from
# requirements.txt alone, so a runtime dependency that only the dev tools bring along fails there.
PYTHON = os.environ.get("LORAFORGE_TEST_SERVER_PYTHON") or sys.executable
T = TypeVar("T")

START_TIMEOUT = 90.0  # a cold Django + uvicorn start on a loaded 2-core machine
STOP_TIMEOUT = 15.0
LOG_TAIL = 8000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stopped_in: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return f"--- {self.name} (pid {self.pid}, {state}) log tail ---\n{self.log()[-LOG_TAIL:]}"


@dataclass
class ProcessSet:
    """Starts processes and guarantees they are gone when the ``with`` block ends."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def __enter__(self) -> ProcessSet:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        for proc in self.procs:
            print(proc.describe())

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path = REPO_ROOT,
    ) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.procs)}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches its children too
            )
        proc = Proc(name=name, popen=popen, log_path=log_path)
        self.procs.append(proc)
        return proc

    def start_web(self, env: Mapping[str, str], *, attempts: int = 3) -> tuple[Proc, str]:
        """``uvicorn loraforge.asgi:application --lifespan on`` on a free port; returns it healthy."""
        for _ in range(attempts):
            port = free_port()
            argv = [PYTHON, "-m", "uvicorn", "loraforge.asgi:application"]
            argv += ["--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--no-access-log"]
            proc = self.start("web", argv, env=env)
            base_url = f"http://127.0.0.1:{port}"
            try:
                wait_for_http(f"{base_url}/api/health", proc=proc)
            except AssertionError:
                if proc.alive() or "address already in use" not in proc.log():
                    raise
                continue  # lost the race for the port: draw another
            return proc, base_url
        raise AssertionError(f"no free port for the web server after {attempts} attempts")


def stop(proc: Proc, *, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
    """Signal the process group, wait for the leader, then make sure the whole group is gone.

    Records how long the leader took to exit in ``proc.stopped_in``; returns its exit status.
    """
    started = time.monotonic()
    if proc.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout)
    if proc.stopped_in is None:
        proc.stopped_in = time.monotonic() - started
    deadline = time.monotonic() + timeout
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(proc.pid) or proc.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(5)
    return proc.popen.returncode


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a foreign process reused the id
        return False
    return True


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    procs: Sequence[Proc] = (),
    interval: float = 0.2,
) -> T:
    """Poll ``check`` until it returns a truthy value; fail (with the logs) at the deadline or when a
    watched process dies."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        dead = [proc for proc in procs if not proc.alive()]
        if dead:
            raise AssertionError(f"{dead[0].name} exited while waiting for {what}\n" + _logs(procs))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n" + _logs(procs))
        time.sleep(interval)


def wait_for_http(url: str, *, proc: Proc, timeout: float = START_TIMEOUT) -> requests.Response:
    """GET ``url`` until it answers 200 (connection errors are retried until the deadline)."""

    def answered() -> requests.Response | None:
        try:
            response = requests.get(url, timeout=5)
        except requests.RequestException:
            return None
        return response if response.status_code == 200 else None

    return wait_until(answered, timeout=timeout, what=f"GET {url}", procs=[proc], interval=0.25)


def wait_for_log(proc: Proc, text: str, *, timeout: float = 30.0) -> str:
    wait_until(lambda: text in proc.log(), timeout=timeout, what=f"{text!r} in the {proc.name} log", procs=[proc])
    return proc.log()


def _logs(procs: Sequence[Proc]) -> str:
    return "\n".join(proc.describe() for proc in procs)


def child_env(**overrides: str | None) -> dict[str, str]:
    """``os.environ`` with overrides; ``None`` removes a variable. Children use the real settings."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="loraforge.settings")
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def server_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """What a web or worker process of a test needs: this test's database and its own data folder, the embedded
    worker when no ``REDIS_URL`` is given, a fixed secret key; ``overrides`` on top (``None`` removes a variable)."""
    from django.db import connection

    defaults: dict[str, str | None] = {
        "LORAFORGE_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url(connection.settings_dict),
        "LORAFORGE_EMBEDDED_WORKER": "auto",
        "LORAFORGE_SECRET_KEY": "test-secret-key-for-server-processes-0123456789abcdef",
        "LORAFORGE_LOG_LEVEL": "info",
        "REDIS_URL": None,
    }
    return child_env(**{**defaults, **overrides})


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A ``DATABASE_URL`` for the database a test connection uses (the test database during tests)."""
    if "sqlite" in settings_dict["ENGINE"]:
        return f"sqlite:///{Path(settings_dict['NAME']).resolve().as_posix().lstrip('/')}"
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


def manage_command(*args: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` in a child process with a private data folder, as an operator runs it."""
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(tmp_path / "data"), "LORAFORGE_LOG_LEVEL": "warning"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
