"""The admin looks like LoRAForge (SPEC 9.1, issue 12), in headless Chromium at 1366 px: the header says LoRAForge and
links the dashboard, the adapter changelist does not scroll sideways with many tags, the adapter page's read-only
sections start collapsed. Screenshots as in ``test_dashboard_browser``."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.test_admin_browser import PASSWORD, USERNAME
from tests.e2e.test_admin_browser import pytestmark as browser_marks
from tests.e2e.test_dashboard_browser import browser_page, shoot
from tests.factories import AdapterFactory

pytestmark = browser_marks


def test_the_admin_says_loraforge_fits_the_screen_and_folds_read_only_sections(
    live_server, transactional_db, django_user_model, tmp_path
):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    tags = ["anime", "landscape", "night sky", "cinematic lighting", "watercolor", "portrait", "film grain", "neon"]
    adapters = [
        AdapterFactory(
            name=f"A rather long adapter name number {index} for the changelist",
            sdnext_name=f"a_rather_long_sdnext_name_number_{index}",
            tags=tags[: 3 + index % 6],
            base_model="SDXL 1.0",
        )
        for index in range(30)
    ]
    errors: list[str] = []
    foreign: list[str] = []

    with browser_page(live_server.url, errors, foreign, start="/admin/") as page:
        expect(page.locator("#site-name")).to_contain_text("LoRAForge")
        assert page.title().endswith("LoRAForge admin")
        expect(page.locator("#site-name a#lf-dashboard-link")).to_have_attribute("href", "/")
        expect(page.locator("#user-tools a", has_text="Dashboard")).to_have_attribute("href", "/")
        expect(page.locator("#user-tools")).not_to_contain_text("View site")

        page.goto(f"{live_server.url}/admin/adapters/adapter/")
        expect(page.locator("#result_list tbody tr")).to_have_count(30)
        expect(page.locator("#result_list .lf-chip-more").first).to_be_visible()
        expect(page.locator("#result_list .lf-badge-ok").first).to_be_visible()
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth,"
            " document.querySelector('#changelist .results').scrollWidth,"
            " document.querySelector('#changelist .results').clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        assert widths[2] <= widths[3], widths
        shoot(page, tmp_path / "admin-adapters-1366.png")

        page.goto(f"{live_server.url}/admin/adapters/adapter/{adapters[0].pk}/change/")
        expect(page.locator("#id_name")).to_be_visible()
        folded = page.locator("fieldset.collapse details")
        expect(folded).to_have_count(6)
        assert (
            page.evaluate("Array.from(document.querySelectorAll('fieldset.collapse details')).some(d => d.open)")
            is False
        )
        for heading in ("File", "Hash", "Header", "Sidecars", "Civitai", "Usage"):
            expect(page.locator("fieldset.collapse summary", has_text=heading)).to_be_visible()
        expect(page.locator(".field-sha256").first).to_be_hidden()
        shoot(page, tmp_path / "admin-adapter-change-1366.png")

    assert errors == []
    assert foreign == []
