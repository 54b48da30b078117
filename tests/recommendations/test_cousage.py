"""Co-usage (SPEC 6.7.2) counted from the links and the analytics rollups equals a count of the jobs themselves,
whatever the history: statuses, kinds, ages on both sides of the window's first day, an adapter linked twice in one
job, links whose adapter was deleted, jobs whose age or status changes afterwards."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from deliveries.models import DeliveryJob, DeliveryJobAdapter
from recommendations.cousage import co_usage_of, co_usage_with, window_start
from recommendations.scoring import CO_USAGE_DAYS
from tests.factories import AdapterFactory, link_adapters

pytestmark = pytest.mark.django_db


def first_instant() -> datetime:
    return datetime.combine(window_start(timezone.now()), time(0), tzinfo=UTC)


def job(adapters, *, status: str = "succeeded", kind: str = "generation", created_at: datetime | None = None):
    row = DeliveryJob.objects.create(kind=kind, mode="sdnext", prompt="p", status=status)
    if created_at is not None:
        DeliveryJob.objects.filter(pk=row.pk).update(created_at=created_at)
    link_adapters(row, [(adapter, 1.0) for adapter in adapters])
    return row


def counted(adapter_id: str) -> dict[str, tuple[float, int]]:
    """The same figures from the rows: each job that counts once per adapter, the links with an adapter."""
    start = first_instant()
    used: dict[str, set[str]] = {}
    for link in DeliveryJobAdapter.objects.filter(
        adapter__isnull=False, job__kind="generation", job__status="succeeded", job__created_at__gte=start
    ):
        used.setdefault(str(link.adapter_id), set()).add(str(link.job_id))
    mine = used.get(adapter_id, set())
    expected = {}
    for other, jobs in used.items():
        both = len(mine & jobs)
        if other != adapter_id and both:
            expected[other] = (both / math.sqrt(len(mine) * len(jobs)), both)
    return expected


def answered(adapter_id: str) -> dict[str, tuple[float, int]]:
    return {other: (usage.score, usage.jobs) for other, usage in co_usage_with(adapter_id).items()}


def test_the_window_starts_on_the_utc_day_180_days_ago():
    now = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    assert window_start(now) == (now - timedelta(days=CO_USAGE_DAYS)).date()
    assert window_start(datetime(2026, 12, 7, 1, 0, tzinfo=timezone.get_fixed_timezone(180))).isoformat() == (
        "2026-06-09"  # 22:00 UTC the day before
    )


def test_jobs_on_the_first_day_count_and_the_day_before_does_not():
    target, inside, outside = AdapterFactory(), AdapterFactory(), AdapterFactory()
    start = first_instant()
    job([target, inside], created_at=start)
    job([inside], created_at=start + timedelta(hours=23))
    job([target, outside], created_at=start - timedelta(seconds=1))
    job([outside], created_at=start + timedelta(days=1))
    result = co_usage_with(str(target.pk))
    assert set(result) == {str(inside.pk)}
    assert result[str(inside.pk)].jobs == 1
    assert result[str(inside.pk)].score == pytest.approx(1 / math.sqrt(1 * 2))


@pytest.mark.parametrize("seed", range(6))
def test_random_histories_match_a_count_of_the_jobs(seed: int):
    rng = random.Random(seed)
    adapters: list[Any] = [AdapterFactory() for _ in range(7)]
    start = first_instant()
    ages = [-3 * 86400, -60, 0, 60, 86399, 86400, 40 * 86400]  # seconds after the window's first instant
    jobs = []
    for _ in range(40):
        chosen = rng.sample(adapters, rng.randint(1, 4))
        if rng.random() < 0.2:
            chosen.append(chosen[0])  # the same adapter twice in one job: the job counts once
        jobs.append(
            job(
                chosen,
                status=rng.choice(["succeeded"] * 4 + ["failed", "cancelled", "running"]),
                kind=rng.choice(["generation"] * 5 + ["delivery"]),
                created_at=min(start + timedelta(seconds=rng.choice(ages)), timezone.now()),
            )
        )
    for row in rng.sample(jobs, 5):  # later changes: a job succeeds, fails or moves in time
        change = rng.choice(["succeeded", "failed", "older", "newer"])
        if change in ("succeeded", "failed"):
            DeliveryJob.objects.filter(pk=row.pk).update(status=change)
        else:
            moved = start - timedelta(days=2) if change == "older" else start + timedelta(days=2)
            DeliveryJob.objects.filter(pk=row.pk).update(created_at=moved)
    adapters[-1].delete()  # its links stay, without an adapter
    together = co_usage_of([str(adapter.pk) for adapter in adapters[:-1]])  # for-prompt's active adapters
    for adapter in adapters[:-1]:
        expected = counted(str(adapter.pk))
        result = answered(str(adapter.pk))
        assert result.keys() == expected.keys()
        for other, (score, both) in expected.items():
            assert result[other] == (pytest.approx(score), both)
        batched = {other: (usage.score, usage.jobs) for other, usage in together.get(str(adapter.pk), {}).items()}
        assert batched == result
    assert any(together.values())  # the history is not empty
