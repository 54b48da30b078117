"""The insight rules of SPEC 6.8: each firing and not firing, in the table's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.selectors.reports import analytics_insights
from generation.models import GenerationBackend
from tests.analytics.report_jobs import NOW, make_job
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
PREVIOUS = datetime(2026, 3, 8, 14, tzinfo=UTC)  # inside the previous 24h window


def jobs(at: datetime, status: str, count: int, **options) -> None:
    for _ in range(count):
        make_job(at, status, **options)


def ids() -> list[str]:
    return [insight["id"] for insight in analytics_insights(time_range="24h", now=NOW)]


def insight(insight_id: str) -> dict:
    return next(item for item in analytics_insights(time_range="24h", now=NOW) if item["id"] == insight_id)


def test_an_empty_window_reports_no_activity_only():
    assert analytics_insights(time_range="24h", now=NOW) == [{
        "id": "insight-no-activity", "title": "No generations in this period",
        "description": "0 generation jobs were created in the last 24 hours.", "severity": "low",
        "recommendation": None,
    }]  # fmt: skip


def test_a_healthy_window_is_stable():
    jobs(NOW - HOUR, "succeeded", 3, seconds=2)
    assert analytics_insights(time_range="24h", now=NOW) == [{
        "id": "insight-stable", "title": "Stable performance",
        "description": "3 generation jobs in the last 24 hours, a 100.00% success rate.", "severity": "low",
        "recommendation": None,
    }]  # fmt: skip


def test_declining_success_rate_states_both_rates():
    jobs(PREVIOUS, "succeeded", 39)
    jobs(PREVIOUS, "failed", 1)
    jobs(NOW - HOUR, "succeeded", 4)
    jobs(NOW - HOUR, "failed", 1, error_code="a")
    found = insight("insight-declining-success-rate")
    assert found["description"] == "Success rate fell from 97.50% to 80.00% compared with the previous period."
    assert (found["title"], found["severity"], found["recommendation"]) == (
        "Declining success rate", "high", "review_failed_jobs",
    )  # fmt: skip
    assert "insight-low-success-rate" not in ids()  # the previous rule fired
    assert "insight-stable" not in ids()


def test_a_tiny_window_never_claims_a_decline():
    jobs(PREVIOUS, "succeeded", 10)
    jobs(NOW - HOUR, "failed", 4, error_code=None)
    assert "insight-declining-success-rate" not in ids()
    assert "insight-low-success-rate" not in ids()


def test_a_decline_of_ten_points_exactly_does_not_fire():
    jobs(PREVIOUS, "succeeded", 10)
    jobs(NOW - HOUR, "succeeded", 9)
    jobs(NOW - HOUR, "failed", 1)
    assert "insight-declining-success-rate" not in ids()


def test_low_success_rate_without_a_previous_window():
    jobs(NOW - HOUR, "succeeded", 8)
    jobs(NOW - HOUR, "failed", 2)
    found = insight("insight-low-success-rate")
    assert found["description"] == "Success rate is 80.00%: 2 of 10 finished generations failed."
    assert (found["severity"], found["recommendation"]) == ("medium", "review_failed_jobs")
    jobs(NOW - HOUR, "succeeded", 10)  # 90 %: not below 90
    assert "insight-low-success-rate" not in ids()


def test_time_regression_needs_five_succeeded_jobs_in_both_windows():
    jobs(PREVIOUS, "succeeded", 5, seconds=2)
    jobs(NOW - HOUR, "succeeded", 4, seconds=3)
    assert "insight-time-regression" not in ids()
    jobs(NOW - HOUR, "succeeded", 1, seconds=3)
    found = insight("insight-time-regression")
    assert found["description"] == (
        "Average generation time rose from 2.00 s to 3.00 s (50.00% slower) compared with the previous period."
    )
    assert (found["title"], found["severity"], found["recommendation"]) == (
        "Generation time regression", "medium", "investigate_performance",
    )  # fmt: skip


def test_frequent_error_names_the_top_type():
    jobs(NOW - HOUR, "succeeded", 20)
    jobs(NOW - HOUR, "failed", 2, error_code="backend_unreachable", error="refused")
    assert "insight-frequent-error" not in ids()  # fewer than 3 failures
    jobs(NOW - HOUR, "failed", 1, error_code="timeout", error="slow")
    found = insight("insight-frequent-error")
    assert found["title"] == "Frequent error: backend_unreachable"
    assert found["description"] == "2 of 3 failures (66.67%) were backend_unreachable: refused"
    assert (found["severity"], found["recommendation"]) == ("medium", "analyse_error_trends")


def test_frequent_error_needs_a_quarter_of_the_failures():
    jobs(NOW - HOUR, "succeeded", 100)
    for code in "abcde":
        jobs(NOW - HOUR, "failed", 1, error_code=code)
    assert "insight-frequent-error" not in ids()


def test_one_insight_per_unhealthy_enabled_backend():
    GenerationBackend.objects.create(name="zeta", url="http://z", healthy=False, last_error="connection refused")
    GenerationBackend.objects.create(name="alpha", url="http://a", healthy=False, last_error="timeout")
    GenerationBackend.objects.create(name="off", url="http://o", healthy=False, enabled=False)
    GenerationBackend.objects.create(name="fine", url="http://f", healthy=True)
    jobs(NOW - HOUR, "succeeded", 1)
    found = analytics_insights(time_range="24h", now=NOW)
    assert [item["id"] for item in found] == ["insight-backend-unavailable-alpha", "insight-backend-unavailable-zeta"]
    assert found[1] == {
        "id": "insight-backend-unavailable-zeta", "title": "Generation backend unavailable: zeta",
        "description": "Backend 'zeta' is unreachable: connection refused.", "severity": "high",
        "recommendation": "check_backend",
    }  # fmt: skip


def test_embeddings_incomplete_when_semantic_is_available(monkeypatch):
    monkeypatch.setattr("recommendations.encoder.semantic_available", lambda: True)
    monkeypatch.setattr("recommendations.selectors.embedding_coverage", lambda: (1, 4))
    AdapterFactory.create()
    assert ids() == ["insight-no-activity", "insight-embeddings-incomplete"]
    assert (
        insight("insight-embeddings-incomplete")["description"] == "1 of 4 adapters (25.00%) have a current embedding."
    )
    monkeypatch.setattr("recommendations.selectors.embedding_coverage", lambda: (2, 4))
    assert ids() == ["insight-no-activity"]
    monkeypatch.setattr("recommendations.encoder.semantic_available", lambda: False)
    monkeypatch.setattr("recommendations.selectors.embedding_coverage", lambda: (0, 4))
    assert ids() == ["insight-no-activity"]


def test_insights_keep_the_table_order(monkeypatch):
    monkeypatch.setattr("recommendations.encoder.semantic_available", lambda: True)
    monkeypatch.setattr("recommendations.selectors.embedding_coverage", lambda: (0, 3))
    GenerationBackend.objects.create(name="down", url="http://d", healthy=False)
    jobs(PREVIOUS, "succeeded", 10, seconds=1)
    jobs(NOW - HOUR, "succeeded", 5, seconds=2)
    jobs(NOW - HOUR, "failed", 5, error_code="boom")
    assert ids() == [
        "insight-declining-success-rate", "insight-time-regression", "insight-frequent-error",
        "insight-backend-unavailable-down", "insight-embeddings-incomplete",
    ]  # fmt: skip
