"""Delivery jobs and generation results in the admin, driven in headless Chromium (SPEC 9.1): a curator cancels a
queued job with the list action, and rates and favourites a result inline."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from deliveries.models import DeliveryJob
from generation.models import GenerationResult
from tests.e2e.test_admin_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, USERNAME, log_in
from tests.e2e.test_admin_browser import pytestmark as browser_marks
from tests.generation.factories import GenerationJobFactory, GenerationResultFactory

pytestmark = browser_marks


def in_browser(base_url: str, next_path: str, steps: Any) -> list[str]:
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            log_in(page, base_url, next_path)
            steps(page)
        finally:
            browser.close()
    return errors


def row_of(page: Page, text: str) -> Any:
    return page.locator("#result_list tbody tr").filter(has_text=text)


def test_a_curator_cancels_a_queued_job_from_the_list(live_server, transactional_db, django_user_model, settings):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    queued = GenerationJobFactory(status="pending", prompt="a queued lighthouse")
    done = GenerationJobFactory(status="succeeded", prompt="a finished lighthouse")

    def cancel(page: Page) -> None:
        row_of(page, str(queued.pk)[:8]).locator('input[name="_selected_action"]').check()
        page.select_option('select[name="action"]', "cancel_selected")
        page.locator('button[name="index"]').click()
        expect(page.locator(".messagelist")).to_contain_text("ancel")

    errors = in_browser(live_server.url, "/admin/deliveries/deliveryjob/", cancel)
    assert errors == []
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == ("cancelled", "cancelled")
    assert DeliveryJob.objects.get(pk=done.pk).status == "succeeded"


def test_a_curator_rates_and_favourites_a_result_inline(live_server, transactional_db, django_user_model, settings):
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    settings.MEDIA_ROOT = settings.DATA_DIR / "media-e2e"
    result = GenerationResultFactory()
    label = f"{str(result.job_id)[:8]}/000"

    def rate(page: Page) -> None:
        row = row_of(page, label)
        row.locator('input[name$="-rating"]').fill("4")
        row.locator('input[name$="-is_favorite"]').check()
        page.locator('input[name="_save"]').click()
        expect(page.locator(".messagelist .success")).to_be_visible()

    errors = in_browser(live_server.url, "/admin/generation/generationresult/", rate)
    assert errors == []
    result = GenerationResult.objects.get(pk=result.pk)
    assert (result.rating, result.is_favorite) == (4, True)
    assert result.rating_updated_at is not None
    assert result.favorite_updated_at is not None
