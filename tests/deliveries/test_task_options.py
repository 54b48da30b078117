"""How ``deliveries.run_delivery`` is sent (SPEC 6.2.2, 6.2.5): queue per mode, ids only, time limits per runner."""

from __future__ import annotations

import pytest

from deliveries.services import delivery_job_create
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_generation_runs_on_the_generation_queue_with_the_longest_read_timeout(broker, settings):
    settings.SDNEXT_TIMEOUT = 600
    GenerationBackendFactory(name="slow", timeout_seconds=1800)
    GenerationBackendFactory(name="off", timeout_seconds=7000, enabled=False)
    job = delivery_job_create(mode="sdnext", prompt="a cat", params={}, created_via="deliveries")
    [task] = broker.sent
    assert (task.name, task.args, task.options["queue"]) == ("deliveries.run_delivery", [str(job.pk)], "generation")
    assert task.options["soft_time_limit"] == 1800 + 120


def test_a_pinned_generation_uses_its_backend_timeout(broker, settings):
    settings.SDNEXT_TIMEOUT = 600
    GenerationBackendFactory(name="slow", timeout_seconds=1800)
    GenerationBackendFactory(name="fast")
    delivery_job_create(mode="sdnext", prompt="a cat", params={}, created_via="deliveries", requested_backend="fast")
    assert broker.sent[0].options["soft_time_limit"] == 600 + 120


def test_http_and_cli_deliveries_run_on_the_default_queue_for_an_hour(broker):
    delivery_job_create(mode="cli", prompt="a cat", params={"template": None}, created_via="deliveries")
    [task] = broker.sent
    assert (task.options["queue"], task.options["soft_time_limit"]) == ("default", 3600)
