"""The dashboard page at ``/`` (SPEC 9.2) rendered by the test client: access, range, queries, the JSON block and the
figures it shows, which must equal the API's."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any, cast

import pytest
import time_machine
from django.utils import timezone

from adapters.models import Adapter
from analytics.pages import dashboard_page, kpi_cards, percent, seconds
from tests.factories import AdapterFactory, link_adapters
from tests.generation.factories import GenerationBackendFactory, GenerationJobFactory

pytestmark = pytest.mark.django_db

DATA_BLOCK = re.compile(r'<script id="dashboard-data" type="application/json">(.*?)</script>', re.S)
KPI = re.compile(r'data-kpi="(\w+)">\s*<h3 class="kpi-label">[^<]*</h3>\s*<p class="kpi-value">([^<]*)</p>')


def page_data(content: str) -> dict[str, Any]:
    [block] = DATA_BLOCK.findall(content)
    return dict(json.loads(block))


def without_host(stats: dict[str, Any]) -> dict[str, Any]:
    """The stats body less the disk reading of the data folder, which other processes move between two requests."""
    return {**stats, "system_health": {k: v for k, v in stats["system_health"].items() if k != "storage_usage"}}


def kpi_values(content: str) -> dict[str, str]:
    return {key: unescape(value) for key, value in KPI.findall(content)}


@pytest.fixture
def activity(db) -> None:
    """Some adapters, jobs of every status (one linked to an adapter, one with a long prompt) and two backends."""
    ink = cast(Adapter, AdapterFactory(name="Ink Landscape", active=True))
    AdapterFactory(name="Neon Skyline")
    started = timezone.now() - timedelta(minutes=30)
    done = GenerationJobFactory(status="succeeded", started_at=started, finished_at=started + timedelta(seconds=12))
    link_adapters(done, [(ink, 0.8)])
    GenerationJobFactory(status="failed", error_code="backend_unreachable", error="connection refused")
    GenerationJobFactory(status="running", progress=0.4, prompt="a lighthouse at dusk " * 6)
    GenerationJobFactory(status="pending")
    GenerationBackendFactory(name="default", healthy=True)
    GenerationBackendFactory(name="spare", healthy=False, last_error="connection refused")


# --- access --------------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/"


def test_a_logged_in_user_without_staff_is_sent_to_the_admin_login(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-12345678")
    client.force_login(user)

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/")


def test_auth_off_opens_the_page(client, settings):
    settings.LORAFORGE_AUTH = False

    response = client.get("/")

    assert response.status_code == 200


def test_a_staff_session_sees_the_page(admin_client):
    response = admin_client.get("/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "<title>LoRAForge dashboard</title>" in content
    assert "<h1>LoRAForge</h1>" in content
    assert 'href="/admin/"' in content
    assert 'href="/api/docs/"' in content


# --- range ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [("", "24h"), ("?range=7d", "7d"), ("?range=30d", "30d")])
def test_the_range_selects_the_window(admin_client, query, expected):
    content = admin_client.get(f"/{query}").content.decode()

    assert f'data-range="{expected}" title="' in content
    assert re.search(rf'data-range="{expected}"[^>]*aria-current="page"', content)
    assert content.count('aria-current="page"') == 1
    assert page_data(content)["summary"]["time_range"] == expected


@pytest.mark.parametrize("bad", ["1y", "24H", "", "7d%00"])
def test_an_unknown_range_falls_back_to_24h(admin_client, bad):
    content = admin_client.get(f"/?range={bad}").content.decode()

    assert re.search(r'data-range="24h"[^>]*aria-current="page"', content)
    assert page_data(content)["summary"]["time_range"] == "24h"


# --- what it shows -------------------------------------------------------------------------------


@pytest.mark.parametrize("time_range", ["24h", "7d", "30d"])
def test_the_data_block_equals_the_api_bodies(admin_client, activity, time_range):
    with time_machine.travel(timezone.now(), tick=False):
        content = admin_client.get(f"/?range={time_range}").content.decode()
        summary = admin_client.get(f"/api/v1/analytics/summary?time_range={time_range}").json()
        stats = admin_client.get("/api/v1/dashboard/stats").json()

    shown = page_data(content)
    assert shown["summary"] == summary
    assert without_host(shown["stats"]) == without_host(stats)


def test_the_kpi_cards_show_the_api_figures_in_their_formats(admin_client, activity):
    with time_machine.travel(timezone.now(), tick=False):
        content = admin_client.get("/").content.decode()
        kpis = admin_client.get("/api/v1/analytics/summary").json()["kpis"]
        stats = admin_client.get("/api/v1/dashboard/stats").json()["stats"]

    assert kpi_values(content) == {
        "total_generations": str(kpis["total_generations"]),
        "success_rate": percent(kpis["success_rate"]),
        "avg_generation_time": seconds(kpis["avg_generation_time"]),
        "total_failed": str(kpis["total_failed"]),
        "active_loras": f"{kpis['active_loras']} / {kpis['total_loras']}",
        "active_jobs": str(stats["active_jobs"]),
        "embeddings_coverage": f"{stats['embeddings_coverage']}%",
    }
    assert kpis["total_generations"] == 4


def test_the_charts_have_a_bar_per_bucket_and_the_top_lora(admin_client, activity):
    content = admin_client.get("/?range=7d").content.decode()

    data = page_data(content)["summary"]["chart_data"]
    assert content.count('<rect class="bar"') == len(data["generation_volume"]) + len(data["lora_usage"])
    assert len(data["generation_volume"]) == 7
    assert 'aria-label="Generation volume"' in content
    assert 'aria-label="Success rate"' in content
    assert '<text class="bar-label"' in content
    assert ">Ink Landscape</text>" in content
    assert "No generations in this period" not in content


def test_without_generations_the_top_loras_chart_says_so(admin_client):
    content = admin_client.get("/").content.decode()

    assert '<p class="empty-state">No generations in this period</p>' in content


def test_recent_jobs_and_running_now_list_the_deliveries(admin_client, activity):
    content = admin_client.get("/").content.decode()

    assert 'id="recent-jobs"' in content
    assert content.count("<tr data-job-id=") == 4
    assert "a lighthouse at dusk a lighthouse at dusk a lighthouse at dusk a lighthouse at…" not in content
    assert ("a lighthouse at dusk " * 6)[:60] + "…" in content
    assert content.count('<li class="job-live"') == 2  # the running and the pending job
    assert '<progress max="100" value="40"' in content


def test_system_health_shows_the_overall_status_and_every_backend(admin_client, activity):
    content = admin_client.get("/").content.decode()

    status = admin_client.get("/api/v1/dashboard/stats").json()["system_health"]["status"]
    assert f'id="system-health" class="card" data-status="{status}"' in content
    assert 'data-backend="default" data-health="healthy"' in content
    assert 'data-backend="spare" data-health="unhealthy"' in content


@pytest.mark.parametrize("time_range", ["24h", "7d", "30d"])
def test_the_page_renders_in_a_bounded_number_of_queries(
    rf, admin_user, activity, time_range, django_assert_max_num_queries
):
    """SPEC 9.2's budget is for rendering; the session and user lookups of the request come on top (two more)."""
    AdapterFactory.create_batch(20)
    for _ in range(15):
        GenerationJobFactory(status="succeeded")
    request = rf.get(f"/?range={time_range}")
    request.user = admin_user

    with django_assert_max_num_queries(20):
        response = dashboard_page(request)

    assert response.status_code == 200


def test_a_prompt_cannot_close_the_data_block(admin_client):
    GenerationJobFactory(status="pending", prompt="</script><script>alert(1)</script>")

    content = admin_client.get("/").content.decode()

    assert "<script>alert(1)" not in content


# --- formatting (no database) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(97.5, "97.5%"), (100, "100.0%"), (0.0, "0.0%"), (66.67, "66.7%"), (None, "—")]
)
def test_percent_has_one_decimal_or_a_dash(value, expected):
    assert percent(value) == expected


@pytest.mark.parametrize(("value", "expected"), [(12.34, "12.3 s"), (0.0, "0.0 s"), (None, "—")])
def test_seconds_has_one_decimal_or_a_dash(value, expected):
    assert seconds(value) == expected


def test_kpi_cards_format_an_empty_window():
    summary = {
        "kpis": {
            "total_generations": 0, "generation_growth": None, "avg_generation_time": None, "time_improvement": None,
            "success_rate": None, "total_succeeded": 0, "total_failed": 0, "total_cancelled": 0, "active_loras": 0,
            "total_loras": 3,
        }
    }  # fmt: skip
    stats = {
        "stats": {"active_jobs": 0, "embeddings_coverage": 0, "active_share": 0, "total_loras": 3},
        "system_health": {"queue_status": "idle"},
    }

    cards = {card.key: card.value for card in kpi_cards(summary, stats)}

    assert cards == {
        "total_generations": "0",
        "success_rate": "—",
        "avg_generation_time": "—",
        "total_failed": "0",
        "active_loras": "0 / 3",
        "active_jobs": "0",
        "embeddings_coverage": "0%",
    }
