"""Fixtures of the deliveries tests: the broker boundary, the HTTP delivery allow-list, jobs in any state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from deliveries.models import DeliveryJob, DeliveryKind
from deliveries.services import RUN_TASK
from loraforge.models.jobs import JobStatus
from tests.factories import link_adapters

ALLOWED = ["hooks.local", "api.internal:8080", "*.example.com", "127.0.0.1"]


@dataclass
class SentTask:
    name: str
    args: list[Any]
    options: dict[str, Any]


@dataclass
class Broker:
    """Stands in for ``loraforge.celery.app.send_task`` (the broker boundary): records, or refuses."""

    sent: list[SentTask] = field(default_factory=list)
    down: bool = False

    def __call__(self, name: str, args: list[Any] | None = None, **options: Any) -> SimpleNamespace:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.sent.append(SentTask(name, list(args or []), options))
        return SimpleNamespace(id=uuid.uuid4().hex)

    @property
    def job_ids(self) -> list[str]:
        return [task.args[0] for task in self.sent if task.name == RUN_TASK]


@pytest.fixture
def broker(monkeypatch) -> Broker:
    recorder = Broker()
    monkeypatch.setattr("loraforge.celery.app.send_task", recorder)
    return recorder


@pytest.fixture
def allowed_hosts(settings) -> list[str]:
    settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS = list(ALLOWED)
    return settings.LORAFORGE_DELIVERY_ALLOWED_HOSTS


def post(client, url: str, body: Any):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def assert_invalid(response, key: str, message: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:loraforge:problem:validation-error"
    assert body["errors"][key] == [message], body["errors"]


def assert_problem(response, status: int, detail: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["detail"] == detail, body
    return body


def make_job(
    *,
    status: str = JobStatus.PENDING,
    mode: str = "cli",
    prompt: str = "a prompt",
    age: float = 0,
    links: Sequence[tuple[Any, float]] = (),
    **fields: Any,
) -> DeliveryJob:
    """A job row in any state, created ``age`` seconds ago (no task is queued)."""
    created = fields.pop("created_at", None) or timezone.now() - timedelta(seconds=age)
    kind = DeliveryKind.GENERATION if mode == "sdnext" else DeliveryKind.DELIVERY
    defaults: dict[str, Any] = {"params": {"template": None} if mode == "cli" else {}}
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        defaults.update(started_at=created, finished_at=created + timedelta(seconds=2), attempts=1)
    job = DeliveryJob.objects.create(
        kind=kind, mode=mode, prompt=prompt, status=status, created_at=created, **{**defaults, **fields}
    )
    link_adapters(job, links)
    return job
