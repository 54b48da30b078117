"""Co-usage (SPEC 6.7.2) counted from the links and the analytics rollups equals a count of the jobs themselves,
whatever the history: statuses, kinds, ages on both sides of the window's first day, an adapter linked twice in one
job, links whose adapter was deleted, jobs whose age or status changes afterwards."""

from __future__ import annotations

import math
import random
import time as time_module
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from analytics.models import AdapterDayRollup
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from recommendations import cousage, cousage_query
from recommendations.cousage import co_usage_of, co_usage_with, history_current, usage_version, window_start
from recommendations.models import UsageState
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
    assert CO_USAGE_DAYS == 180
    assert window_start(datetime(2026, 12, 7, 5, 30, tzinfo=UTC)).isoformat() == "2026-06-10"
    assert window_start(datetime(2026, 12, 7, 23, 59, tzinfo=UTC)).isoformat() == "2026-06-10"
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


def random_history(seed: int) -> list[Any]:
    """Seven adapters (the last one deleted afterwards) in 40 jobs of every kind, status and age around the
    window's first day, some linking an adapter twice, five changed afterwards."""
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
    return adapters[:-1]


def assert_counted(together: dict[str, dict[str, Any]], adapters: list[Any]) -> None:
    for adapter in adapters:
        expected = counted(str(adapter.pk))
        result = answered(str(adapter.pk))
        assert result.keys() == expected.keys()
        for other, (score, both) in expected.items():
            assert result[other] == (pytest.approx(score), both)
        batched = {other: (usage.score, usage.jobs) for other, usage in together.get(str(adapter.pk), {}).items()}
        assert batched == result
    assert any(together.values())  # the history is not empty


def test_analytics_registers_its_day_rollups_for_the_partners_counts():
    registered = cousage_query.day_counts_registered()
    assert registered is not None
    assert registered.table == AdapterDayRollup._meta.db_table


@pytest.mark.parametrize("day_counts", ["registered", "links"])
@pytest.mark.parametrize("seed", range(6))
def test_random_histories_match_a_count_of_the_jobs(seed: int, day_counts: str, monkeypatch):
    if day_counts == "links":  # no app registered per-day counts: n_b is counted from the links
        monkeypatch.setattr(cousage_query, "_day_counts", None)
    adapters = random_history(seed)
    together = co_usage_of([str(adapter.pk) for adapter in adapters])  # for-prompt's active adapters
    assert cousage._state.history is None  # answered by the query
    assert_counted(together, adapters)


# --- the history kept in memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_the_history_in_memory_answers_as_a_count_of_the_jobs(seed: int, monkeypatch):
    adapters = random_history(seed)
    history = history_current()
    assert history is not None
    assert history.key == (usage_version(), window_start(timezone.now()))

    def no_query(*args: Any) -> None:
        raise AssertionError("a current history answers without a query")

    monkeypatch.setattr(cousage, "_query", no_query)
    together = co_usage_of([str(adapter.pk) for adapter in adapters])
    assert_counted(together, adapters)


def wait_for_history(key: tuple[Any, ...]) -> None:
    deadline = time_module.monotonic() + 10
    while cousage._state.loading or cousage._state.history is None or cousage._state.history.key != key:
        assert time_module.monotonic() < deadline, "the history was not loaded again"
        time_module.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_write_makes_the_history_stale_and_it_is_loaded_again_in_the_background():
    target, partner, newcomer = AdapterFactory(), AdapterFactory(), AdapterFactory()
    job([target, partner])
    history_current()
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}
    kept = cousage._state.history
    job([target, newcomer])  # the version changes: the kept history is stale
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk), str(newcomer.pk)}  # from the query, at once
    wait_for_history((usage_version(), window_start(timezone.now())))
    assert cousage._state.history is not kept
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk), str(newcomer.pk)}  # from memory


@pytest.mark.django_db(transaction=True)
def test_a_history_is_loaded_again_at_most_every_reload_interval(monkeypatch):
    target, partner, later, last = AdapterFactory(), AdapterFactory(), AdapterFactory(), AdapterFactory()
    job([target, partner])
    co_usage_with(str(target.pk))
    history_current()
    job([target, later])
    co_usage_with(str(target.pk))  # stale: a load starts
    wait_for_history((usage_version(), window_start(timezone.now())))
    loaded = cousage._state.history
    job([target, last])
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk), str(later.pk), str(last.pk)}  # the query
    assert not cousage._state.loading  # within the interval: no second load
    assert cousage._state.history is loaded
    monkeypatch.setattr(cousage, "RELOAD_MIN_SECONDS", 0.0)
    co_usage_with(str(target.pk))
    wait_for_history((usage_version(), window_start(timezone.now())))


@pytest.mark.django_db(transaction=True)
def test_a_slow_query_starts_keeping_the_history(monkeypatch):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    monkeypatch.setattr(cousage, "KEEP_AFTER_SECONDS", 0.0)  # every query counts as slow
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}
    wait_for_history((usage_version(), window_start(timezone.now())))


def test_no_history_is_kept_without_a_version():
    UsageState.objects.all().delete()  # as ``flush`` leaves it: no trigger can be trusted
    assert history_current() is None
