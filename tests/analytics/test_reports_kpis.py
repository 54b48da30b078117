"""KPIs of ``/analytics/stats`` (SPEC 5.7, 6.8) against jobs with known timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.selectors.reports import analytics_stats
from tests.analytics.report_jobs import NOW, make_job
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
START_24H = datetime(2026, 3, 9, 13, tzinfo=UTC)
PREVIOUS_24H = datetime(2026, 3, 8, 13, 30, tzinfo=UTC)


def test_an_empty_window_has_null_rates_not_zeros():
    stats = analytics_stats(time_range="24h", now=NOW)
    assert stats == {
        "time_range": "24h", "window_start": START_24H, "window_end": NOW, "total_generations": 0,
        "generation_growth": None, "avg_generation_time": None, "time_improvement": None, "success_rate": None,
        "total_succeeded": 0, "total_failed": 0, "total_cancelled": 0, "active_loras": 0, "total_loras": 0,
    }  # fmt: skip


def test_counts_rates_and_mean_duration_of_the_window():
    make_job(NOW - HOUR, "succeeded", seconds=2)
    make_job(NOW - 2 * HOUR, "succeeded", seconds=3.5)
    make_job(NOW - 3 * HOUR, "failed")
    make_job(NOW - 4 * HOUR, "cancelled")
    make_job(NOW - 5 * HOUR, "running")
    make_job(NOW - HOUR, "succeeded", seconds=100, kind="delivery")
    stats = analytics_stats(time_range="24h", now=NOW)
    assert stats["total_generations"] == 5
    assert (stats["total_succeeded"], stats["total_failed"], stats["total_cancelled"]) == (2, 1, 1)
    assert stats["success_rate"] == 66.67
    assert stats["avg_generation_time"] == 2.75


def test_window_edges_are_exact_to_the_microsecond():
    make_job(START_24H, "succeeded")  # first instant: in
    make_job(NOW, "succeeded")  # now: in
    make_job(NOW + timedelta(microseconds=1), "succeeded")  # after now: out
    make_job(START_24H - timedelta(microseconds=1), "failed")  # previous window
    make_job(PREVIOUS_24H, "failed")  # previous window's first instant
    make_job(PREVIOUS_24H - timedelta(microseconds=1), "failed")  # before both
    stats = analytics_stats(time_range="24h", now=NOW)
    assert stats["total_generations"] == 2
    assert stats["generation_growth"] == 0.0


def test_growth_and_time_improvement_compare_with_the_previous_window():
    for _ in range(4):
        make_job(PREVIOUS_24H + HOUR, "succeeded", seconds=4)
    for _ in range(5):
        make_job(NOW - HOUR, "succeeded", seconds=3)
    stats = analytics_stats(time_range="24h", now=NOW)
    assert stats["generation_growth"] == 25.0
    assert stats["time_improvement"] == 25.0  # 4 s → 3 s: 25 % faster


def test_growth_is_null_without_previous_jobs_and_time_improvement_without_previous_durations():
    make_job(PREVIOUS_24H + HOUR, "failed")
    make_job(NOW - HOUR, "succeeded", seconds=3)
    stats = analytics_stats(time_range="24h", now=NOW)
    assert stats["generation_growth"] == 0.0
    assert stats["time_improvement"] is None
    make_job(PREVIOUS_24H - HOUR, "failed")
    assert analytics_stats(time_range="7d", now=NOW)["generation_growth"] is None


def test_daily_ranges_count_whole_days_and_the_partial_current_one():
    make_job(datetime(2026, 3, 4, tzinfo=UTC), "succeeded")
    make_job(datetime(2026, 3, 3, 23, 59, 59, tzinfo=UTC), "succeeded")
    make_job(NOW - timedelta(minutes=1), "failed")
    assert analytics_stats(time_range="7d", now=NOW)["total_generations"] == 2
    assert analytics_stats(time_range="30d", now=NOW)["total_generations"] == 3


def test_adapter_counts_are_current():
    AdapterFactory.create_batch(2, active=True)
    AdapterFactory.create()
    stats = analytics_stats(time_range="24h", now=NOW)
    assert (stats["active_loras"], stats["total_loras"]) == (2, 3)


def test_the_previous_window_starts_mid_hour_exactly():
    previous_start = datetime(2026, 2, 25, 11, 30, tzinfo=UTC)  # 7d: window_start minus 6 d 12.5 h
    make_job(previous_start - timedelta(minutes=1), "succeeded")
    make_job(previous_start, "succeeded")
    make_job(previous_start + timedelta(minutes=29), "succeeded")
    make_job(datetime(2026, 3, 5, tzinfo=UTC), "succeeded")
    assert analytics_stats(time_range="7d", now=NOW)["generation_growth"] == -50.0


def test_partial_hours_count_durations_and_statuses_like_whole_hours():
    make_job(NOW - timedelta(minutes=10), "succeeded", seconds=5.25)  # current hour: read from the jobs
    make_job(NOW - timedelta(minutes=20), "cancelled")
    make_job(NOW - 2 * HOUR, "succeeded", seconds=1.75)  # a whole hour: read from the rollup
    make_job(PREVIOUS_24H + timedelta(minutes=5), "succeeded", seconds=7)  # previous window's partial first hour
    stats = analytics_stats(time_range="24h", now=NOW)
    assert stats["avg_generation_time"] == 3.5
    assert stats["total_cancelled"] == 1
    assert stats["time_improvement"] == 50.0
    assert stats["generation_growth"] == 200.0
