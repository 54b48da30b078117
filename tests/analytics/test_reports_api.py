"""The HTTP contract of the analytics report endpoints (SPEC 4, 5.7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tests.analytics.report_jobs import NOW, make_job
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
ENDPOINTS = ("stats", "errors", "timeseries", "insights", "summary", "lora-usage")
RANGE_ERROR = "time_range must be one of: 24h, 7d, 30d"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("prefix", ["/api/v1", "/v1"])
@pytest.mark.parametrize("slash", ["", "/"])
def test_every_endpoint_answers_under_both_prefixes_with_or_without_slash(api, endpoint, prefix, slash):
    response = api.get(f"{prefix}/analytics/{endpoint}{slash}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_unknown_time_range_is_a_400_problem(api, endpoint):
    response = api.get(f"/api/v1/analytics/{endpoint}", {"time_range": "1y"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["errors"] == {"time_range": [RANGE_ERROR]}
    assert body["detail"] == RANGE_ERROR


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_requests_are_refused(anon, endpoint):
    response = anon.get(f"/api/v1/analytics/{endpoint}")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"


@pytest.mark.parametrize("limit", ["0", "101", "ten", "1.5"])
def test_lora_usage_limit_is_1_to_100(api, limit):
    response = api.get("/api/v1/analytics/lora-usage", {"limit": limit})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["limit"]


def test_an_empty_time_range_means_the_default(api):
    assert api.get("/api/v1/analytics/stats", {"time_range": ""}).json()["time_range"] == "24h"


def test_stats_renders_utc_timestamps_and_nulls(api):
    body = api.get("/api/v1/analytics/stats", {"time_range": "7d"}).json()
    assert body["window_start"] == "2026-03-04T00:00:00Z"
    assert body["window_end"] == "2026-03-10T12:30:00Z"
    assert body["success_rate"] is None
    assert body["generation_growth"] is None


def test_summary_holds_every_part(api):
    adapter = AdapterFactory.create()
    make_job(NOW - timedelta(hours=1), "failed", error_code="boom", error="it broke", adapters=[adapter])
    body = api.get("/api/v1/analytics/summary", {"time_range": "30d"}).json()
    assert set(body) == {"time_range", "generated_at", "kpis", "chart_data", "error_breakdown", "performance_insights"}
    assert body["generated_at"] == "2026-03-10T12:30:00Z"
    assert body["kpis"]["total_failed"] == 1
    assert len(body["chart_data"]["generation_volume"]) == 30
    assert body["chart_data"]["lora_usage"] == [
        {"adapter_id": str(adapter.pk), "name": adapter.name, "count": 1, "success_rate": 0.0}
    ]
    assert body["error_breakdown"] == [{"type": "boom", "count": 1, "percentage": 100.0, "description": "it broke"}]
    assert body["performance_insights"][-1]["id"] == "insight-stable"


def test_lora_usage_renders_ids_and_last_use(api):
    adapter = AdapterFactory.create(last_used_at=NOW)
    make_job(NOW - timedelta(hours=1), "succeeded", adapters=[adapter])
    assert api.get("/api/v1/analytics/lora-usage", {"limit": "5"}).json() == [{
        "adapter_id": str(adapter.pk), "name": adapter.name, "count": 1, "succeeded": 1, "failed": 0,
        "last_used_at": "2026-03-10T12:30:00Z",
    }]  # fmt: skip


@pytest.mark.parametrize("time_range", ["24h", "7d", "30d"])
def test_summary_query_count_does_not_grow_with_jobs(api, django_assert_max_num_queries, time_range):
    adapters = AdapterFactory.create_batch(3)
    for index in range(60):
        make_job(NOW - timedelta(hours=5 * index, minutes=7), ["succeeded", "failed"][index % 2], seconds=1,
                 error_code="e", adapters=adapters[: index % 3 + 1])  # fmt: skip
    with django_assert_max_num_queries(16):
        assert api.get("/api/v1/analytics/summary", {"time_range": time_range}).status_code == 200


def test_a_non_staff_session_is_forbidden(django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))
    response = client.get("/api/v1/analytics/summary")
    assert response.status_code == 403
    assert response.json()["detail"] == "Staff access required"


def test_summary_parts_equal_the_single_endpoints(api):
    adapter = AdapterFactory.create()
    make_job(NOW - timedelta(hours=2), "failed", error_code="x", error="e", adapters=[adapter])
    make_job(NOW - timedelta(days=2), "succeeded", seconds=3, adapters=[adapter])
    summary = api.get("/api/v1/analytics/summary", {"time_range": "7d"}).json()
    single = {name: api.get(f"/api/v1/analytics/{name}", {"time_range": "7d"}).json()
              for name in ("stats", "timeseries", "errors", "insights")}  # fmt: skip
    assert summary["kpis"] == single["stats"]
    assert summary["chart_data"] == single["timeseries"]
    assert summary["error_breakdown"] == single["errors"]
    assert summary["performance_insights"] == single["insights"]
