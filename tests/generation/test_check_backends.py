"""``manage.py check_backends [--json]`` (SPEC 8): live health of every backend, exit 1 on an unhealthy one."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.models import GenerationBackend
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db

VERSION_PATH = "/sdapi/v1/version"


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def run(*args: str) -> tuple[str, int]:
    out = StringIO()
    try:
        call_command("check_backends", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


def test_no_backends(db):
    assert run() == ("No generation backends.\n", 0)


def test_table_of_healthy_backends_exits_0(fake_sdnext):
    GenerationBackendFactory(name="gpu-1", url=fake_sdnext.url)
    output, code = run()
    assert code == 0
    header, row = output.splitlines()
    assert header.split() == ["NAME", "URL", "ENABLED", "HEALTHY", "VERSION", "ERROR"]
    assert row.split() == ["gpu-1", fake_sdnext.url, "yes", "yes", "sd.next", "f4ke5d1", "-"]


def test_an_unhealthy_enabled_backend_exits_1(fake_sdnext):
    GenerationBackendFactory(name="gpu-1", url=fake_sdnext.url)
    GenerationBackendFactory(name="gpu-2", url=dead_url())
    output, code = run()
    assert code == 1
    assert "connection refused" in output


def test_an_unhealthy_disabled_backend_does_not_fail(db):
    GenerationBackendFactory(name="spare", url=dead_url(), enabled=False)
    output, code = run()
    assert code == 0
    assert "connection refused" in output


def test_json_report(fake_sdnext):
    backend = GenerationBackendFactory(name="gpu-1", url=fake_sdnext.url, password="hidden-pw")
    output, code = run("--json")
    assert code == 0
    assert json.loads(output) == [
        {
            "id": str(backend.pk),
            "name": "gpu-1",
            "url": fake_sdnext.url,
            "enabled": True,
            "healthy": True,
            "version": {"app": "sd.next", "commit": "f4ke5d1", "branch": "master", "updated": "2026-07-23"},
            "error": None,
        }
    ]
    assert "hidden-pw" not in output


def test_checks_live_even_with_a_cached_result(fake_sdnext, settings):
    settings.LORAFORGE_BACKEND_HEALTH_TTL = 60
    GenerationBackendFactory(url=fake_sdnext.url)
    run()
    run()
    assert sum(1 for request in fake_sdnext.requests if request.path == VERSION_PATH) == 2


def test_results_are_written_to_the_rows(fake_sdnext):
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    run()
    backend = GenerationBackend.objects.get(pk=backend.pk)
    assert backend.healthy is True
    assert backend.last_checked_at is not None
