"""Running http and cli deliveries for real (SPEC 6.4, 6.2.4): a local HTTP server receives the POSTs, files are
written under a temporary data folder. Jobs are created through the API, then run as the worker would."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from deliveries.execution import delivery_run
from deliveries.models import DeliveryJob
from deliveries.tasks import run_delivery
from loraforge import __version__
from tests.deliveries.conftest import post
from tests.progress_events import EventRecorder, job_events

pytestmark = pytest.mark.django_db
HOLD_LIMIT = 10.0  # a held handler gives up after this many seconds


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class HookServer:
    """A stdlib HTTP server on 127.0.0.1 that records POSTs and answers as configured."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    stall_body: bool = False  # send the headers, then hold the body
    on_request: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def hold(self) -> None:
        """Answer only after ``release`` is set (or the hold limit passes)."""
        self.release.clear()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(self.path, dict(self.headers.items()), json.loads(self.rfile.read(length)))
                hook.received.append(received)
                if hook.on_request is not None:
                    hook.on_request(received)
                if not hook.stall_body:
                    hook.release.wait(HOLD_LIMIT)
                with contextlib.suppress(OSError):  # the client gave up (a timeout test): nobody reads the answer
                    self._answer()

            def _answer(self) -> None:
                self.send_response(hook.status)
                for name, value in hook.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(hook.body)))
                self.end_headers()
                if hook.stall_body:
                    self.wfile.flush()
                    hook.release.wait(HOLD_LIMIT)
                self.wfile.write(hook.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer()
    server.release.set()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def data_dir(settings, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    recorder = EventRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
def loopback(settings) -> None:
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = ["127.0.0.1"]


def create(client, mode: str, params: dict[str, Any], prompt: str = "a cat <lora:x:1>") -> DeliveryJob:
    response = post(client, "/api/v1/deliveries", {"prompt": prompt, "mode": mode, "params": params})
    assert response.status_code == 201, response.content
    return DeliveryJob.objects.get(pk=response.json()["delivery_id"])


def http_job(client, hook: HookServer, **params: Any) -> DeliveryJob:
    return create(client, "http", {"host": "127.0.0.1", "port": hook.port, **params})


def run(job: DeliveryJob) -> DeliveryJob:
    delivery_run(job_id=job.pk, worker="test-worker")
    job.refresh_from_db()
    return job


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- http -----------------------------------------------------------------------------------


def test_http_delivery_posts_the_prompt_and_succeeds(api, hook, loopback):
    job = http_job(api, hook, path="/hooks/in", headers={"X-Token": "s3cret"})

    job = run(job)

    [received] = hook.received
    assert received.path == "/hooks/in"
    assert received.body == {"prompt": "a cat <lora:x:1>", "job_id": str(job.pk)}
    assert received.headers["X-Token"] == "s3cret"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"] == f"LoRAForge/{__version__}"
    assert (job.status, job.progress, job.attempts, job.worker) == ("succeeded", 1.0, 1, "test-worker")
    assert job.result == {"status": 200, "detail": '{"ok": true}', "headers": {"content-type": "application/json"}}
    assert job.started_at is not None
    assert job.finished_at is not None


@pytest.mark.parametrize("status", [201, 202, 204, 299])
def test_any_2xx_succeeds(api, hook, loopback, status):
    hook.status, hook.body, hook.headers = status, b"", {}

    job = run(http_job(api, hook))

    assert job.status == "succeeded"
    assert job.result == {"status": status, "detail": "", "headers": {"content-type": None}}


def test_detail_is_the_first_2000_characters_of_the_body(api, hook, loopback):
    hook.body, hook.headers = ("é" * 3000).encode(), {"Content-Type": "text/plain; charset=utf-8"}

    job = run(http_job(api, hook))

    assert job.result["detail"] == "é" * 2000
    assert job.result["headers"] == {"content-type": "text/plain; charset=utf-8"}


def test_a_body_over_1_mib_is_cut_not_fatal(api, hook, loopback):
    hook.body = b"x" * (3 * 1024 * 1024)

    job = run(http_job(api, hook))

    assert job.status == "succeeded"
    assert job.result["detail"] == "x" * 2000


def test_an_unknown_response_charset_is_read_as_utf_8(api, hook, loopback):
    hook.body, hook.headers = "ok ✓".encode(), {"Content-Type": "text/plain; charset=no-such-codec"}

    job = run(http_job(api, hook))

    assert (job.status, job.result["detail"]) == ("succeeded", "ok ✓")


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_non_2xx_fails_with_http_error(api, hook, loopback, status):
    hook.status = status

    job = run(http_job(api, hook))

    assert (job.status, job.error_code) == ("failed", "http_error")
    assert job.error == f"HTTP delivery failed with status {status}"
    assert job.message == job.error
    assert job.result is None


def test_redirects_are_not_followed(api, hook, loopback):
    hook.status, hook.headers = 302, {"Location": f"http://127.0.0.1:{hook.port}/elsewhere"}

    job = run(http_job(api, hook))

    assert (job.status, job.error) == ("failed", "HTTP delivery failed with status 302")
    assert [received.path for received in hook.received] == ["/"]


def test_a_server_that_does_not_answer_in_time_fails_with_http_timeout(api, hook, loopback):
    hook.hold()

    job = run(http_job(api, hook, timeout_seconds=1))

    assert (job.status, job.error_code) == ("failed", "http_timeout")
    assert job.error == "HTTP delivery timed out after 1 s"


def test_a_body_that_stalls_fails_with_http_timeout(api, hook, loopback):
    hook.hold()
    hook.stall_body = True

    job = run(http_job(api, hook, timeout_seconds=1))

    assert (job.status, job.error) == ("failed", "HTTP delivery timed out after 1 s")


def test_a_refused_connection_fails_with_http_unreachable(api, loopback):
    job = create(api, "http", {"host": "127.0.0.1", "port": free_port()})

    job = run(job)

    assert (job.status, job.error_code) == ("failed", "http_unreachable")
    assert job.error == "HTTP delivery could not connect to 127.0.0.1"


def test_the_allow_list_is_checked_again_when_the_job_runs(api, hook, loopback, settings):
    job = http_job(api, hook)
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = ["hooks.local"]

    job = run(job)

    assert (job.status, job.error_code) == ("failed", "host_not_allowed")
    assert job.error == "Host '127.0.0.1' is not allowed"
    assert hook.received == []


def test_a_port_removed_from_the_allow_list_is_refused_at_run_time(api, hook, settings):
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = [f"127.0.0.1:{hook.port}"]
    job = http_job(api, hook)
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = [f"127.0.0.1:{hook.port + 1}"]

    assert run(job).error_code == "host_not_allowed"


def test_http_delivery_publishes_job_progress_events(api, hook, loopback, recorder):
    job = run(http_job(api, hook))

    events = job_events(recorder.events())

    assert [(event["kind"], event["status"]) for event in events] == [
        ("delivery", "running"),
        ("delivery", "succeeded"),
    ]
    assert {event["job_id"] for event in events} == {str(job.pk)}
    assert events[0]["result"] is None
    assert events[1]["result"] == job.result
    assert events[1]["progress"] == 1.0


def test_failed_delivery_event_carries_the_error(api, hook, loopback, recorder):
    hook.status = 500

    run(http_job(api, hook))

    last = job_events(recorder.events())[-1]
    assert (last["status"], last["error"]) == ("failed", "HTTP delivery failed with status 500")


def test_a_job_cancelled_before_it_runs_is_not_delivered(api, hook, loopback, recorder):
    job = http_job(api, hook)
    api.post(f"/api/v1/deliveries/{job.pk}/cancel")
    recorder.events()

    job = run(job)

    assert job.status == "cancelled"
    assert hook.received == []
    assert job_events(recorder.events()) == []


def test_a_finished_job_is_not_delivered_twice(api, hook, loopback):
    job = run(http_job(api, hook))

    run(job)

    assert len(hook.received) == 1


def test_the_celery_task_runs_the_delivery(api, hook, loopback):
    job = http_job(api, hook)

    run_delivery.apply(args=[str(job.pk)])

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert len(hook.received) == 1


@pytest.mark.django_db(transaction=True)
def test_cancel_while_the_request_runs_keeps_the_job_cancelled(api, hook, loopback, recorder):
    answers: list[int] = []

    def cancel_from_a_client(received: Received) -> None:
        try:
            answers.append(api.post(f"/api/v1/deliveries/{received.body['job_id']}/cancel").status_code)
        finally:
            connection.close()

    hook.on_request = cancel_from_a_client
    job = http_job(api, hook)

    job = run(job)

    assert answers == [200]
    assert len(hook.received) == 1  # the request completed, its outcome is discarded:
    assert (job.status, job.error, job.result) == ("cancelled", "Cancelled by user", None)
    statuses = [event["status"] for event in job_events(recorder.events())]
    assert "succeeded" not in statuses
    assert statuses[-1] == "cancelled"


# --- cli ------------------------------------------------------------------------------------


def cli_file(data_dir: Path, job: DeliveryJob) -> Path:
    return data_dir / "deliveries" / "cli" / f"{job.pk}.txt"


def test_cli_delivery_writes_the_template_with_the_prompt(api, data_dir):
    job = run(create(api, "cli", {"template": "prompt: {prompt}\nagain: {prompt}"}, prompt="a cat ✓"))

    assert cli_file(data_dir, job).read_text(encoding="utf-8") == "prompt: a cat ✓\nagain: a cat ✓"
    assert job.status == "succeeded"
    assert job.result == {
        "status": "ok",
        "detail": f"Prompt written to deliveries/cli/{job.pk}.txt",
        "file_path": f"deliveries/cli/{job.pk}.txt",
    }


def test_cli_replacement_is_plain_text_not_a_format_string(api, data_dir):
    template = "{other} {0} {prompt!r} {{prompt}} {prompt}"

    job = run(create(api, "cli", {"template": template}, prompt="{0} x"))

    assert cli_file(data_dir, job).read_text(encoding="utf-8") == "{other} {0} {prompt!r} {{0} x} {0} x"


def test_cli_without_a_template_writes_the_prompt_alone(api, data_dir):
    job = run(create(api, "cli", {}))

    assert cli_file(data_dir, job).read_text(encoding="utf-8") == "a cat <lora:x:1>"


def test_cli_write_error_fails_the_job(api, data_dir):
    (data_dir / "deliveries").mkdir()
    (data_dir / "deliveries" / "cli").write_text("not a folder")

    job = run(create(api, "cli", {}))

    assert (job.status, job.error_code) == ("failed", "cli_write_error")
    assert job.error.startswith("Could not write the prompt file: ")


def test_cli_leaves_no_partial_files(api, data_dir):
    job = run(create(api, "cli", {}))

    assert [path.name for path in (data_dir / "deliveries" / "cli").iterdir()] == [f"{job.pk}.txt"]


def test_cli_delivery_publishes_job_progress_events(api, data_dir, recorder):
    job = run(create(api, "cli", {}))

    events = job_events(recorder.events())

    assert [(event["job_id"], event["kind"], event["status"]) for event in events] == [
        (str(job.pk), "delivery", "running"),
        (str(job.pk), "delivery", "succeeded"),
    ]
