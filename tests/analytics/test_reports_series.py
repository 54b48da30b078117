"""Time series, errors and adapter usage of the analytics reports (SPEC 5.7, 6.8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import ResourceSample
from analytics.selectors.reports import analytics_errors, analytics_lora_usage, analytics_timeseries
from tests.analytics.report_jobs import NOW, make_job
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def sample(at: datetime, cpu: float, gpu: float | None = None) -> None:
    ResourceSample.objects.create(recorded_at=at, host="h", cpu_percent=cpu, memory_percent=cpu / 2,
                                  memory_used_mb=1, gpu_percent=gpu)  # fmt: skip


def test_buckets_are_zero_filled_ascending_and_start_at_the_bucket():
    series = analytics_timeseries(time_range="24h", now=NOW)
    volume = series["generation_volume"]
    assert [point["timestamp"] for point in volume] == [
        datetime(2026, 3, 9, 13, tzinfo=UTC) + HOUR * i for i in range(24)
    ]
    assert {(p["count"], p["succeeded"], p["failed"]) for p in volume} == {(0, 0, 0)}
    assert {(p["avg_time"], p["success_rate"]) for p in series["performance"]} == {(None, None)}
    assert series["lora_usage"] == []
    assert {(p["cpu_percent"], p["memory_percent"], p["gpu_percent"]) for p in series["resource_usage"]} == {
        (None, None, None)
    }


def test_jobs_fall_in_the_bucket_of_their_hour():
    make_job(datetime(2026, 3, 10, 12, tzinfo=UTC), "succeeded", seconds=2)
    make_job(datetime(2026, 3, 10, 11, 59, 59, tzinfo=UTC), "failed")
    make_job(datetime(2026, 3, 10, 11, 0, tzinfo=UTC), "succeeded", seconds=4)
    series = analytics_timeseries(time_range="24h", now=NOW)
    assert series["generation_volume"][-1] | {"timestamp": None} == {"timestamp": None, "count": 1, "succeeded": 1,
                                                                      "failed": 0}  # fmt: skip
    assert series["generation_volume"][-2]["count"] == 2
    assert series["performance"][-2] == {"timestamp": datetime(2026, 3, 10, 11, tzinfo=UTC), "avg_time": 4.0,
                                         "success_rate": 50.0}  # fmt: skip


def test_daily_buckets_hold_whole_days():
    make_job(datetime(2026, 3, 4, 0, 0, tzinfo=UTC), "succeeded")
    make_job(datetime(2026, 3, 4, 23, 59, tzinfo=UTC), "failed")
    make_job(NOW, "failed")
    volume = analytics_timeseries(time_range="7d", now=NOW)["generation_volume"]
    assert [point["count"] for point in volume] == [2, 0, 0, 0, 0, 0, 1]
    assert volume[0]["timestamp"] == datetime(2026, 3, 4, tzinfo=UTC)


def test_resource_usage_is_the_mean_of_the_samples_per_bucket():
    sample(NOW - timedelta(minutes=10), 10.0)
    sample(NOW - timedelta(minutes=20), 21.0, gpu=50.0)
    point = analytics_timeseries(time_range="24h", now=NOW)["resource_usage"][-1]
    assert point == {"timestamp": datetime(2026, 3, 10, 12, tzinfo=UTC), "cpu_percent": 15.5,
                     "memory_percent": 7.75, "gpu_percent": 50.0}  # fmt: skip


def test_lora_usage_series_is_the_top_ten_with_success_rates():
    adapters = AdapterFactory.create_batch(12)
    for index, adapter in enumerate(adapters):
        for _ in range(index + 1):
            make_job(NOW - HOUR, "succeeded", adapters=[adapter])
    make_job(NOW - 2 * HOUR, "failed", adapters=[adapters[-1]])
    usage = analytics_timeseries(time_range="24h", now=NOW)["lora_usage"]
    assert [row["adapter_id"] for row in usage] == [adapter.pk for adapter in reversed(adapters)][:10]
    assert usage[0] == {"adapter_id": adapters[-1].pk, "name": adapters[-1].name, "count": 13,
                        "success_rate": round(100 * 12 / 13, 2)}  # fmt: skip


def test_lora_usage_endpoint_orders_by_count_then_name_and_limits():
    first, second, third = AdapterFactory.create_batch(3)
    make_job(NOW - HOUR, "succeeded", adapters=[third, second])
    make_job(NOW - 26 * HOUR, "failed", adapters=[third])  # 7d only
    make_job(NOW, "failed", adapters=[first, first])  # one job, counted once
    rows = analytics_lora_usage(time_range="24h", now=NOW)
    assert [(row["name"], row["count"], row["succeeded"], row["failed"]) for row in rows] == [
        (first.name, 1, 0, 1), (second.name, 1, 1, 0), (third.name, 1, 1, 0),
    ]  # fmt: skip
    assert [row["name"] for row in analytics_lora_usage(time_range="7d", limit=1, now=NOW)] == [third.name]
    assert set(rows[0]) == {"adapter_id", "name", "count", "succeeded", "failed", "last_used_at"}


def test_deleted_adapters_leave_the_usage():
    adapter = AdapterFactory.create()
    make_job(NOW - HOUR, "succeeded", adapters=[adapter])
    adapter.delete()
    assert analytics_lora_usage(time_range="24h", now=NOW) == []


def test_errors_group_by_code_with_the_most_frequent_text():
    make_job(NOW - HOUR, "failed", error_code="backend_unreachable", error="refused")
    make_job(NOW - 2 * HOUR, "failed", error_code="backend_unreachable", error="refused")
    make_job(NOW - 3 * HOUR, "failed", error_code="backend_unreachable", error="timeout")
    make_job(NOW - 3 * HOUR, "failed", error_code=None, error="weird")
    make_job(NOW - 3 * HOUR, "failed", error_code="a_error", error="a")
    make_job(NOW - 3 * HOUR, "cancelled", error_code="cancelled", error="Cancelled by user")
    assert analytics_errors(time_range="24h", now=NOW) == [
        {"type": "backend_unreachable", "count": 3, "percentage": 60.0, "description": "refused"},
        {"type": "a_error", "count": 1, "percentage": 20.0, "description": "a"},
        {"type": "unknown", "count": 1, "percentage": 20.0, "description": "weird"},
    ]


def test_error_text_ties_go_to_the_most_recent():
    make_job(NOW - 5 * HOUR, "failed", error_code="x", error="older")
    make_job(NOW - 2 * HOUR, "failed", error_code="x", error="newer")
    make_job(NOW - timedelta(minutes=1), "failed", error_code="y", error="old edge")
    make_job(NOW - 3 * HOUR, "failed", error_code="y", error="rollup")
    errors = {row["type"]: row["description"] for row in analytics_errors(time_range="24h", now=NOW)}
    assert errors == {"x": "newer", "y": "old edge"}


def test_percentages_have_two_decimals():
    for code in ("a", "b", "c"):
        make_job(NOW - HOUR, "failed", error_code=code)
    assert [row["percentage"] for row in analytics_errors(time_range="24h", now=NOW)] == [33.33, 33.33, 33.33]


def test_lora_usage_with_no_room_is_empty():
    make_job(NOW - HOUR, "succeeded", adapters=AdapterFactory.create_batch(2))
    assert analytics_lora_usage(time_range="24h", limit=0, now=NOW) == []


def test_error_counts_add_up_to_the_failed_jobs():
    from analytics.selectors.reports import analytics_stats

    for index in range(7):
        make_job(NOW - timedelta(minutes=41 * index), "failed", error_code=["a", None, "b"][index % 3])
    failed = analytics_stats(time_range="24h", now=NOW)["total_failed"]
    assert sum(row["count"] for row in analytics_errors(time_range="24h", now=NOW)) == failed == 7
