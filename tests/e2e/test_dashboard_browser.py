"""The dashboard page (SPEC 9.2) and the LoRAForge admin look (9.1) in headless Chromium.

- every range: the DOM contract, the figures equal the API's (fetched with the same session), no console error,
  no request leaving the server's origin; screenshots at 1366x900 and 390x844;
- the 30 s refresh through the API, and a failing refresh that throws nothing;
- a generation queued against a slowed fake SDNext moves its bar in "Running now" over the progress WebSocket
  (a real uvicorn server with its embedded worker), then shows in the recent jobs.

Screenshots go to the test's ``tmp_path`` and, when ``LORAFORGE_TEST_SHOTS`` names a folder, there too.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from adapters.models import Adapter
from loraforge.api_keys import api_key_create
from tests.analytics.test_dashboard_page import without_host
from tests.e2e.test_admin_browser import PASSWORD, USERNAME, log_in, open_browser
from tests.e2e.test_admin_browser import pytestmark as browser_marks
from tests.factories import AdapterFactory, link_adapters
from tests.fakes.sdnext import FakeSDNext
from tests.generation.factories import GenerationBackendFactory, GenerationJobFactory
from tests.processes import ProcessSet, server_env

pytestmark = browser_marks


RANGES = ("24h", "7d", "30d")
LAPTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# What the API and the page compute from the clock: they differ by the time between the two requests.
CLOCK_FIELDS = ("generated_at",)
CLOCK_KPIS = ("window_end",)

DOM_CONTRACT = """() => {
  const all = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const attr = (node, name) => node.getAttribute(name);
  const kpis = {};
  for (const card of all("[data-kpi]")) {
    kpis[attr(card, "data-kpi")] = {
      label: card.querySelector(".kpi-label") !== null,
      value: (card.querySelector(".kpi-value") || {}).textContent,
    };
  }
  const figure = (id) => document.getElementById(id);
  const svgOf = (id) => figure(id).querySelector("svg");
  return {
    title: document.title,
    h1: (document.querySelector("h1") || {}).textContent,
    links: all("a").map((a) => attr(a, "href")),
    ranges: all("nav#range-selector a[data-range]").map((a) => [attr(a, "data-range"), attr(a, "aria-current")]),
    kpis,
    figcaptions: all("figure").map((node) => node.querySelector("figcaption") !== null),
    volumeSvg: [attr(svgOf("chart-generation-volume"), "role"), attr(svgOf("chart-generation-volume"), "aria-label")],
    volume: all("#chart-generation-volume rect.bar").map((bar) => ({
      bucket: attr(bar, "data-bucket"), count: Number(attr(bar, "data-count")), height: Number(attr(bar, "height")),
    })),
    successSvg: [attr(svgOf("chart-success-rate"), "role"), attr(svgOf("chart-success-rate"), "aria-label")],
    polylines: all("#chart-success-rate polyline").length,
    points: all("#chart-success-rate circle.point").map((n) => [attr(n, "data-bucket"), attr(n, "data-value")]),
    topSvg: [attr(svgOf("chart-top-loras"), "role"), attr(svgOf("chart-top-loras"), "aria-label")],
    topBars: all("#chart-top-loras rect.bar").map((n) => [attr(n, "data-adapter-id"), Number(attr(n, "data-count"))]),
    topLabels: all("#chart-top-loras text.bar-label").map((text) => text.textContent),
    topEmpty: (document.querySelector("#chart-top-loras p.empty-state") || {}).textContent || null,
    recentRows: all("table#recent-jobs tbody tr[data-job-id]").length,
    health: attr(document.querySelector("section#system-health"), "data-status"),
    backends: all("#system-health [data-backend]").map((n) => [attr(n, "data-backend"), attr(n, "data-health")]),
    data: JSON.parse(document.getElementById("dashboard-data").textContent),
    dataType: attr(document.getElementById("dashboard-data"), "type"),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
}"""


def without_clock(summary: dict[str, Any]) -> dict[str, Any]:
    kpis = {key: value for key, value in summary["kpis"].items() if key not in CLOCK_KPIS}
    return {**{key: value for key, value in summary.items() if key not in CLOCK_FIELDS}, "kpis": kpis}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def expected_kpis(summary: dict[str, Any], stats: dict[str, Any]) -> dict[str, str]:
    kpis, counts = summary["kpis"], stats["stats"]
    time = kpis["avg_generation_time"]
    return {
        "total_generations": str(kpis["total_generations"]),
        "success_rate": percent(kpis["success_rate"]),
        "avg_generation_time": "—" if time is None else f"{time:.1f} s",
        "total_failed": str(kpis["total_failed"]),
        "active_loras": f"{kpis['active_loras']} / {kpis['total_loras']}",
        "active_jobs": str(counts["active_jobs"]),
        "embeddings_coverage": f"{counts['embeddings_coverage']}%",
    }


def assert_contract(dom: dict[str, Any], time_range: str, summary: dict[str, Any], stats: dict[str, Any]) -> None:
    assert (dom["title"], dom["h1"]) == ("LoRAForge dashboard", "LoRAForge")
    assert "/admin/" in dom["links"]
    assert "/api/docs/" in dom["links"]
    assert dom["ranges"] == [[value, "page" if value == time_range else None] for value in RANGES]
    assert all(card["label"] for card in dom["kpis"].values())
    assert {key: card["value"] for key, card in dom["kpis"].items()} == expected_kpis(summary, stats)
    assert dom["figcaptions"] == [True, True, True]
    # Generation volume: one bar per bucket, heights proportional to the counts.
    volume = summary["chart_data"]["generation_volume"]
    assert [(bar["bucket"], bar["count"]) for bar in dom["volume"]] == [(b["timestamp"], b["count"]) for b in volume]
    assert dom["volumeSvg"] == ["img", "Generation volume"]
    for bar in dom["volume"]:
        assert bar["height"] == (0 if bar["count"] == 0 else pytest.approx(dom["volume_unit"] * bar["count"], rel=0.02))
    # Success rate: a line and a point per bucket with finished jobs.
    performance = summary["chart_data"]["performance"]
    assert dom["successSvg"] == ["img", "Success rate"]
    assert dom["polylines"] == 1
    assert dom["points"] == [
        [b["timestamp"], f"{b['success_rate']:.2f}"] for b in performance if b["success_rate"] is not None
    ]
    # Top LoRAs, or the empty state.
    usage = summary["chart_data"]["lora_usage"][:10]
    assert dom["topSvg"] == ["img", "Top LoRAs"]
    assert dom["topBars"] == [[row["adapter_id"], row["count"]] for row in usage]
    assert dom["topLabels"] == [row["name"] for row in usage]
    assert dom["topEmpty"] == (None if usage else "No generations in this period")
    # Health, and the JSON block equal to the API bodies (up to the clock).
    assert dom["health"] == stats["system_health"]["status"]
    assert len(dom["backends"]) == stats["system_health"]["backends_total"]
    assert dom["dataType"] == "application/json"
    assert without_clock(dom["data"]["summary"]) == without_clock(summary)
    assert without_host(dom["data"]["stats"]) == without_host(stats)


def read_dom(page: Page) -> dict[str, Any]:
    dom: dict[str, Any] = page.evaluate(DOM_CONTRACT)
    counted = [bar for bar in dom["volume"] if bar["count"]]
    dom["volume_unit"] = max((bar["height"] / bar["count"] for bar in counted), default=0)
    return dom


def api_bodies(page: Page, base_url: str, time_range: str) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = page.request.get(f"{base_url}/api/v1/analytics/summary?time_range={time_range}")
    stats = page.request.get(f"{base_url}/api/v1/dashboard/stats")
    assert (summary.status, stats.status) == (200, 200)
    return summary.json(), stats.json()


def keep_shot(source: Path) -> None:
    folder = os.environ.get("LORAFORGE_TEST_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, Path(folder) / source.name)


def shoot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    keep_shot(path)


@contextmanager
def browser_page(base_url: str, errors: list[str], foreign: list[str], start: str = "/") -> Iterator[Page]:
    """A page logged in at ``start``, 1366x900, that records console errors and requests leaving ``base_url``."""
    with sync_playwright() as playwright:
        browser, page = open_browser(playwright, errors)
        try:
            page.set_viewport_size(LAPTOP)
            page.on(
                "request",
                lambda request: None if request.url.startswith((base_url, "data:")) else foreign.append(request.url),
            )
            log_in(page, base_url, start)
            yield page
        finally:
            browser.close()


def seed_activity() -> None:
    """A library, a week of jobs of every status (some linked to adapters) and two backends."""
    names = ["Ink Landscape", "Neon Skyline", "Detail Tweaker XL", "Watercolor Dreams", "Film Grain"]
    adapters = [cast(Adapter, AdapterFactory(name=name, active=index % 2 == 0)) for index, name in enumerate(names)]
    now = timezone.now()
    for index in range(24):
        created = now - timedelta(hours=index * 6 + 1)
        status = ("succeeded", "succeeded", "succeeded", "failed")[index % 4]
        started = created + timedelta(seconds=2)
        job = GenerationJobFactory(
            status=status, created_at=created, started_at=started,
            finished_at=started + timedelta(seconds=8 + index % 5),
            prompt=f"a lighthouse at dusk, number {index}, dramatic clouds, volumetric light, highly detailed",
            error_code="backend_unreachable" if status == "failed" else None,
        )  # fmt: skip
        link_adapters(job, [(adapters[index % 3 if index % 2 else 0], 0.8)])
    GenerationJobFactory(status="running", progress=0.45, prompt="a harbour at night, long exposure")
    GenerationJobFactory(status="pending", prompt="a forest in fog")
    GenerationBackendFactory(name="default", healthy=True)
    GenerationBackendFactory(name="gpu-box-2", healthy=False, last_error="connection refused")


def test_the_dashboard_shows_the_api_figures_for_every_range(
    live_server, transactional_db, django_user_model, tmp_path
):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    seed_activity()
    errors: list[str] = []
    foreign: list[str] = []

    with browser_page(live_server.url, errors, foreign) as page:
        for time_range in RANGES:
            page.goto(f"{live_server.url}/?range={time_range}")
            dom = read_dom(page)
            summary, stats = api_bodies(page, live_server.url, time_range)
            assert_contract(dom, time_range, summary, stats)
            assert dom["recentRows"] == 10
            assert dom["scrollWidth"] <= dom["innerWidth"]
            shoot(page, tmp_path / f"dashboard-{time_range}-1366.png")
            page.set_viewport_size(PHONE)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            shoot(page, tmp_path / f"dashboard-{time_range}-390.png")
            page.set_viewport_size(LAPTOP)

    assert errors == []
    assert foreign == []


def test_an_empty_library_shows_the_empty_states(live_server, transactional_db, django_user_model, tmp_path):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    errors: list[str] = []
    foreign: list[str] = []

    with browser_page(live_server.url, errors, foreign) as page:
        dom = read_dom(page)
        summary, stats = api_bodies(page, live_server.url, "24h")
        assert_contract(dom, "24h", summary, stats)
        assert dom["topEmpty"] == "No generations in this period"
        assert dom["kpis"]["total_generations"]["value"] == "0"
        assert dom["kpis"]["success_rate"]["value"] == "—"
        assert {bar["height"] for bar in dom["volume"]} == {0}
        expect(page.locator("#running-empty")).to_be_visible()
        shoot(page, tmp_path / "dashboard-empty-1366.png")

    assert errors == []
    assert foreign == []


def in_thread(work: Callable[[], Any]) -> None:
    """Run ``work`` on a thread of its own, whose database connection is closed after it (left open, it stayed
    checked out of PostgreSQL's pool until the teardown)."""

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()


def test_the_figures_refresh_through_the_api_every_30_seconds(
    live_server, transactional_db, django_user_model, tmp_path
):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    GenerationJobFactory(status="succeeded")
    errors: list[str] = []
    foreign: list[str] = []

    with browser_page(live_server.url, errors, foreign) as page:
        page.clock.install()
        page.goto(live_server.url + "/")
        total = page.locator('[data-kpi="total_generations"] .kpi-value')
        expect(total).to_have_text("1")
        in_thread(lambda: GenerationJobFactory(status="failed"))  # Playwright's loop runs in this thread
        page.clock.fast_forward("00:31")
        expect(total).to_have_text("2")
        expect(page.locator('[data-kpi="total_failed"] .kpi-value')).to_have_text("1")
        expect(page.locator('[data-kpi="success_rate"] .kpi-value')).to_have_text("50.0%")
        assert (
            page.evaluate("JSON.parse(document.getElementById('dashboard-data').textContent)")["summary"]["kpis"][
                "total_generations"
            ]
            == 2
        )

    assert errors == []
    assert foreign == []


def test_a_failing_refresh_keeps_the_figures_and_throws_nothing(
    live_server, transactional_db, django_user_model, tmp_path
):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    GenerationJobFactory(status="succeeded")
    uncaught: list[str] = []

    with sync_playwright() as playwright:
        browser, page = open_browser(playwright, [])
        try:
            page.on("pageerror", lambda error: uncaught.append(str(error)))
            log_in(page, live_server.url, "/")
            page.clock.install()
            page.route("**/api/v1/**", lambda route: route.fulfill(status=503, body="down"))
            page.goto(live_server.url + "/")
            page.clock.fast_forward("01:01")  # two refreshes
            page.wait_for_timeout(300)
            expect(page.locator('[data-kpi="total_generations"] .kpi-value')).to_have_text("1")
        finally:
            browser.close()

    assert uncaught == []


# --- live progress over the WebSocket (a real ASGI server) ------------------------------------------


def queue_generation(base_url: str, key: str) -> str:
    body = {"prompt": "a lighthouse at dusk, watched live", "steps": 20, "width": 64, "height": 64}
    response = requests.post(
        f"{base_url}/api/v1/generation/queue-generation", json=body, headers={"X-API-Key": key}, timeout=30
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def progress_value(bar: Any) -> int:
    return int(bar.get_attribute("value") or 0)


def poll(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_running_generation_moves_its_bar_live(transactional_db, django_user_model, tmp_path):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    key = api_key_create(name="dashboard-e2e").plain_key
    fake = FakeSDNext(steps_delay=0.25)  # 20 steps: about five seconds
    fake.start()
    errors: list[str] = []
    foreign: list[str] = []
    try:
        with ProcessSet(tmp_path / "logs") as procs:
            env = server_env(tmp_path, SDNEXT_URL=fake.url, SDNEXT_POLL_INTERVAL="0.2")
            _web, base_url = procs.start_web(env)
            with browser_page(base_url, errors, foreign) as page:
                expect(page.locator("#running-now .live-dot")).to_be_visible(timeout=15000)  # the socket is open
                job_id = queue_generation(base_url, key)
                bar = page.locator(f'#running-now progress[data-job-id="{job_id}"]')
                expect(bar).to_have_count(1, timeout=30000)
                first = progress_value(bar)
                moved = poll(lambda: progress_value(bar) > first and progress_value(bar), timeout=30, what="a move")
                shoot(page, tmp_path / "dashboard-running-1366.png")
                row = page.locator(f'#running-now li[data-job-id="{job_id}"]')
                expect(row).to_have_attribute("data-status", "succeeded", timeout=30000)
                recent = page.locator(f'#recent-jobs tr[data-job-id="{job_id}"] [data-job-status]')
                expect(recent).to_have_text("succeeded")  # added live, then marked finished
                page.reload()
                expect(recent).to_have_text("succeeded")  # and drawn by the server
    finally:
        fake.stop()

    assert moved > first
    assert errors == []
    assert foreign == []
