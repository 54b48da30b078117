"""Co-usage (SPEC 6.7.2) counted from the links and the analytics rollups equals a count of the jobs themselves,
whatever the history: statuses, kinds, ages on both sides of the window's first day, an adapter linked twice in one
job, links whose adapter was deleted, jobs whose age or status changes afterwards."""

from __future__ import annotations

import math
import random
import time as time_module
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import AdapterDayRollup
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from recommendations import cousage, cousage_query, usage_history
from recommendations.cousage import (
    CoUsage,
    co_usage_of,
    co_usage_with,
    history_current,
    usage_version,
    window_start,
)
from recommendations.index import index_current, index_is_current, index_reset
from recommendations.models import UsageState
from recommendations.scoring import CO_USAGE_DAYS
from recommendations.services.recommend import recommend_by_trigger
from recommendations.services.usage_changes import usage_changes_prune
from recommendations.usage_triggers import install, uninstall, usage_suspended
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


AGES = [-3 * 86400, -60, 0, 60, 86399, 86400, 40 * 86400]  # seconds after the window's first instant


def random_writes(rng: random.Random, adapters: list[Any], jobs: list[Any], count: int) -> None:
    """``count`` jobs of every kind, status and age around the window's first day, some linking an adapter twice,
    then five later changes to jobs made before: a job succeeds, fails, moves in time, loses or gains a link, or is
    deleted."""
    start = first_instant()
    for _ in range(count):
        chosen = rng.sample(adapters, rng.randint(1, min(4, len(adapters))))
        if rng.random() < 0.2:
            chosen.append(chosen[0])  # the same adapter twice in one job: the job counts once
        jobs.append(
            job(
                chosen,
                status=rng.choice(["succeeded"] * 4 + ["failed", "cancelled", "running"]),
                kind=rng.choice(["generation"] * 5 + ["delivery"]),
                created_at=min(start + timedelta(seconds=rng.choice(AGES)), timezone.now()),
            )
        )
    for row in rng.sample(jobs, 5):
        change = rng.choice(["succeeded", "failed", "older", "newer", "unlinked", "linked", "deleted"])
        if change in ("succeeded", "failed"):
            DeliveryJob.objects.filter(pk=row.pk).update(status=change)
        elif change in ("older", "newer"):
            moved = start - timedelta(days=2) if change == "older" else start + timedelta(days=2)
            DeliveryJob.objects.filter(pk=row.pk).update(created_at=moved)
        elif change == "unlinked":
            DeliveryJobAdapter.objects.filter(
                pk__in=DeliveryJobAdapter.objects.filter(job=row).values("pk")[:1]
            ).delete()
        elif change == "linked":
            extra = rng.choice(adapters)
            position = 1 + max(DeliveryJobAdapter.objects.filter(job=row).values_list("position", flat=True), default=0)
            DeliveryJobAdapter.objects.create(
                job=row, adapter=extra, adapter_name=extra.name, sdnext_name=extra.sdnext_name, weight=1.0,
                position=position,
            )  # fmt: skip
        else:
            DeliveryJob.objects.filter(pk=row.pk).delete()
            jobs.remove(row)


def random_history(seed: int) -> list[Any]:
    """Seven adapters (the last one deleted afterwards) in 40 jobs and their later changes."""
    rng = random.Random(seed)
    adapters: list[Any] = [AdapterFactory() for _ in range(7)]
    random_writes(rng, adapters, [], 40)
    adapters[-1].delete()  # its links stay, without an adapter
    return adapters[:-1]


def assert_counted(together: Mapping[str, Mapping[str, CoUsage]], adapters: list[Any]) -> None:
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


def current_key() -> tuple[Any, ...]:
    return (usage_version(), window_start(timezone.now()))


def no_query_nor_load(monkeypatch) -> None:
    def refused(*args: Any) -> None:
        raise AssertionError("the kept history catches up without a query or a load")

    monkeypatch.setattr(cousage, "_query", refused)
    monkeypatch.setattr(cousage, "_load_in_background", refused)


@pytest.mark.parametrize("seed", range(4))
def test_a_kept_history_catches_up_with_every_change_and_answers_as_a_count_of_the_jobs(seed: int, monkeypatch):
    rng = random.Random(seed)
    adapters: list[Any] = [AdapterFactory() for _ in range(7)]
    jobs: list[Any] = []
    random_writes(rng, adapters, jobs, 25)
    loaded = history_current()
    assert loaded is not None
    no_query_nor_load(monkeypatch)
    for step in range(2):  # caught up twice: the changes of a caught-up history change again
        newcomer = AdapterFactory()  # an adapter the loaded history never saw
        adapters.append(newcomer)
        random_writes(rng, adapters, jobs, 15)
        if step == 1:
            adapters.pop(rng.randrange(len(adapters))).delete()  # its links lose their adapter
        together = co_usage_of([str(adapter.pk) for adapter in adapters])
        kept = cousage._state.history
        assert kept is not None
        assert kept.key == current_key()
        assert kept.loaded is loaded.loaded  # caught up, not loaded again
        assert len(kept.changes) > 0
        assert_counted(together, adapters)


def test_a_write_is_caught_up_at_once():
    target, partner, newcomer = AdapterFactory(), AdapterFactory(), AdapterFactory()
    first = DeliveryJob.objects.create(  # an id that ends in zero bytes: found among the loaded jobs anyway
        id=uuid.UUID(int=0xA1 << 64), kind="generation", mode="sdnext", prompt="p", status="succeeded"
    )
    link_adapters(first, [(target, 1.0), (partner, 1.0)])
    history_current()
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}
    job([target, newcomer])
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk), str(newcomer.pk)}
    DeliveryJob.objects.filter(pk=first.pk).update(status="failed")
    assert set(co_usage_with(str(target.pk))) == {str(newcomer.pk)}
    assert cousage._state.history.key == current_key()
    assert usage_changes_prune(keep=0) > 0  # nothing left to catch up from: the next change is answered by a query
    job([target, partner])
    assert co_usage_with(str(target.pk)) == co_usage_rows_scored(target)


def co_usage_rows_scored(target: Any) -> Mapping[str, CoUsage]:
    return cousage._scored(cousage_query.co_usage_rows([str(target.pk)], window_start(timezone.now()))).get(
        str(target.pk), {}
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reason", ["pruned", "too many changes", "restored"])
def test_a_history_that_cannot_catch_up_is_not_used_and_is_loaded_again(reason: str, monkeypatch):
    adapters: list[Any] = [AdapterFactory() for _ in range(3)]
    target, partner, later = adapters
    job([target, partner])
    kept = history_current()
    assert kept is not None
    job([target, later])
    job([later, partner])
    if reason == "pruned":
        usage_changes_prune(keep=1)
    elif reason == "too many changes":
        monkeypatch.setattr(usage_history, "CATCH_UP_MAX_ROWS", 2)  # three rows logged since
    else:
        with transaction.atomic(), usage_suspended():  # a restore's bulk load logs no job
            job([partner, later])
    expected = {str(partner.pk), str(later.pk)}
    assert set(co_usage_with(str(target.pk))) == expected  # from the query, at once
    wait_for_history(current_key())
    loaded = cousage._state.history
    assert loaded is not None
    assert loaded.loaded is not kept.loaded
    assert set(co_usage_with(str(target.pk))) == expected  # from memory


@pytest.mark.django_db(transaction=True)
def test_a_version_that_went_back_is_not_trusted_and_the_history_is_loaded_again():
    """A database restored beneath a running process (a dump of yesterday): its version is lower than the kept
    history's, and its jobs are not those the history holds."""
    adapters: list[Any] = [AdapterFactory() for _ in range(3)]
    target, partner, later = adapters
    job([target, partner])
    kept = history_current()
    assert kept is not None
    uninstall(connection)  # the restored database's writes: none of them logged
    try:
        job([target, later])
    finally:
        install(connection)
    UsageState.objects.update(version=kept.version - 1)
    expected = {str(partner.pk), str(later.pk)}
    assert set(co_usage_with(str(target.pk))) == expected  # from the query, at once
    wait_for_history(current_key())
    assert set(co_usage_with(str(target.pk))) == expected  # from memory


@pytest.mark.django_db(transaction=True)
def test_a_history_with_many_changes_is_loaded_again_in_the_background(monkeypatch):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    loaded = history_current()
    monkeypatch.setattr(cousage, "COMPACT_MIN_CHANGES", 1)
    monkeypatch.setattr(cousage, "COMPACT_SHARE", 10**9)
    job([target, partner])
    assert co_usage_with(str(target.pk))[str(partner.pk)].jobs == 2  # caught up: one change
    job([target, partner])
    assert co_usage_with(str(target.pk))[str(partner.pk)].jobs == 3  # two changes: a load starts
    wait_for_history(current_key())
    assert cousage._state.history.loaded is not loaded.loaded
    assert len(cousage._state.history.changes) == 0
    assert co_usage_with(str(target.pk))[str(partner.pk)].jobs == 3


@pytest.mark.django_db(transaction=True)
def test_a_history_is_loaded_again_at_most_every_reload_interval(monkeypatch):
    target, partner, later, last = AdapterFactory(), AdapterFactory(), AdapterFactory(), AdapterFactory()
    job([target, partner])
    co_usage_with(str(target.pk))
    history_current()
    job([target, later])
    usage_changes_prune(keep=0)
    co_usage_with(str(target.pk))  # cannot catch up: a load starts
    wait_for_history(current_key())
    loaded = cousage._state.history
    job([target, last])
    usage_changes_prune(keep=0)
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk), str(later.pk), str(last.pk)}  # the query
    assert not cousage._state.loading  # within the interval: no second load
    assert cousage._state.history is loaded
    monkeypatch.setattr(cousage, "RELOAD_MIN_SECONDS", 0.0)
    co_usage_with(str(target.pk))
    wait_for_history(current_key())


def test_a_history_of_an_earlier_window_is_not_used(monkeypatch):
    target, partner, before = AdapterFactory(), AdapterFactory(), AdapterFactory()
    job([target, partner])
    job([target, before], created_at=first_instant() - timedelta(hours=1))  # in yesterday's window only
    history_current(window_start(timezone.now()) - timedelta(days=1))
    loads: list[Any] = []
    monkeypatch.setattr(cousage, "_load_in_background", loads.append)
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}  # from the query
    assert loads == [window_start(timezone.now())]  # and today's window is loaded


@pytest.mark.django_db(transaction=True)
def test_a_slow_query_starts_keeping_the_history(monkeypatch):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    monkeypatch.setattr(cousage, "KEEP_AFTER_SECONDS", 0.0)  # every query counts as slow
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}
    wait_for_history(current_key())


def test_no_history_is_kept_without_a_version():
    UsageState.objects.all().delete()  # as ``flush`` leaves it: no trigger can be trusted
    assert history_current() is None


def first_index_built() -> None:
    index_reset()
    index_current()  # as a request that scores asks for it


def test_a_large_history_is_loaded_with_the_processes_first_index_in_its_request(monkeypatch):
    target, partner, other = AdapterFactory(), AdapterFactory(), AdapterFactory()
    job([target, partner])
    job([target, other], status="failed")  # stored links count, whatever their job: 4 here
    monkeypatch.setattr(cousage, "WARM_MIN_LINKS", 3)
    no_query_nor_load(monkeypatch)  # loaded in the request that builds the index, not in a thread
    first_index_built()
    assert cousage._state.history is not None
    assert cousage._state.history.key == current_key()
    assert not cousage._state.loading
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}  # answered from it: ``_query`` refuses


def test_a_history_of_at_most_the_threshold_is_not_loaded_with_the_first_index(monkeypatch):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    job([target, partner])
    monkeypatch.setattr(cousage, "WARM_MIN_LINKS", 4)  # exactly 4 links
    first_index_built()
    assert cousage._state.history is None


def test_only_the_first_index_loads_the_history(monkeypatch):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    first_index_built()  # the fixture's threshold: nothing loaded
    monkeypatch.setattr(cousage, "WARM_MIN_LINKS", 0)
    AdapterFactory()  # the catalogue changed: the index follows it
    index_current()
    assert cousage._state.history is None


@pytest.mark.parametrize("asked", ["by-trigger", "rebuild"])
def test_a_first_index_for_a_request_that_reads_no_co_usage_loads_no_history(asked: str, monkeypatch):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    monkeypatch.setattr(cousage, "WARM_MIN_LINKS", 0)
    index_reset()
    if asked == "by-trigger":
        recommend_by_trigger(trigger_query="anything", limit=5)
    else:  # the index rebuild endpoint, and an embeddings job without the model in a worker
        index_current(force=True, semantic=False)
    assert cousage._state.history is None


def test_a_history_that_fails_to_load_with_the_first_index_leaves_the_index_and_the_queries(monkeypatch, caplog):
    target, partner = AdapterFactory(), AdapterFactory()
    job([target, partner])
    monkeypatch.setattr(cousage, "WARM_MIN_LINKS", 0)

    def broken(first_day: Any) -> None:
        with connection.cursor() as cursor:  # on PostgreSQL this aborts the transaction the test runs in
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(cousage, "history_load", broken)
    first_index_built()
    assert index_is_current()
    assert cousage._state.history is None
    assert not cousage._state.loading
    assert "Loading the co-usage history failed" in caplog.text
    assert set(co_usage_with(str(target.pk))) == {str(partner.pk)}  # from the query
