"""Rows of the dashboard page beyond the API bodies: recent and running deliveries in one query, backend health."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.page_data import backend_health, cut_prompt, dashboard_jobs
from tests.generation.factories import GenerationJobFactory


@pytest.mark.django_db
def test_recent_jobs_are_the_ten_newest_and_active_ones_running_first_then_pending_oldest_first(
    django_assert_num_queries,
):
    now = timezone.now()
    old_pending = GenerationJobFactory(status="pending", created_at=now - timedelta(days=3))
    old_running = GenerationJobFactory(status="running", created_at=now - timedelta(days=2))
    older_running = GenerationJobFactory(status="running", created_at=now - timedelta(days=4))
    newest = [GenerationJobFactory(status="succeeded", created_at=now - timedelta(minutes=i)) for i in range(12)]

    with django_assert_num_queries(1):
        recent, running = dashboard_jobs()

    assert [row.id for row in recent] == [str(job.pk) for job in newest[:10]]
    assert [row.id for row in running] == [str(older_running.pk), str(old_running.pk), str(old_pending.pk)]


@pytest.mark.django_db
def test_running_jobs_are_capped_at_twenty():
    for _ in range(25):
        GenerationJobFactory(status="pending")

    recent, running = dashboard_jobs()

    assert (len(recent), len(running)) == (10, 20)


def test_a_prompt_is_cut_to_sixty_characters():
    assert cut_prompt("x" * 60) == "x" * 60
    assert cut_prompt("x" * 61) == "x" * 60 + "…"


def test_backend_health_names_each_state():
    entries = [
        {"name": name, "url": "http://sd", "enabled": enabled, "healthy": healthy, "last_error": None}
        for name, enabled, healthy in [("a", True, True), ("b", True, False), ("c", True, None), ("d", False, True)]
    ]

    assert [row.health for row in backend_health(entries)] == ["healthy", "unhealthy", "unknown", "disabled"]
