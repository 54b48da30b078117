"""Backups in the admin, driven in headless Chromium (SPEC 9.1): the "Create full backup" and "Create metadata
backup" buttons queue a backup; "Verify" reports a good backup and a tampered one; the list links the download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from backups.models import Backup
from tests.backups.helpers import completed_backup, first_member_data_offset, stored_file, tamper
from tests.e2e.test_admin_browser import PASSWORD, USERNAME
from tests.e2e.test_admin_browser import pytestmark as browser_marks
from tests.e2e.test_admin_jobs_browser import in_browser, row_of
from tests.factories import AdapterFactory

pytestmark = browser_marks

CHANGELIST = "/admin/backups/backup/"


def _folder(settings: Any, tmp_path: Path) -> Path:
    settings.LORAFORGE_BACKUP_DIR = tmp_path / "backups"
    return settings.LORAFORGE_BACKUP_DIR


def test_the_buttons_queue_a_full_and_a_metadata_backup(
    live_server, transactional_db, django_user_model, settings, tmp_path, sent_tasks
):
    _folder(settings, tmp_path)
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)

    def create(page: Page) -> None:
        page.get_by_role("button", name="Create full backup").click()
        expect(page.locator(".messagelist")).to_contain_text("Full backup")
        page.get_by_role("button", name="Create metadata backup").click()
        expect(page.locator(".messagelist")).to_contain_text("Metadata Only backup")
        expect(page.locator("#result_list tbody tr")).to_have_count(2)

    errors = in_browser(live_server.url, CHANGELIST, create)
    assert errors == []
    backups = list(Backup.objects.order_by("created_at"))
    assert [(b.backup_type, b.trigger, b.status) for b in backups] == [
        ("full", "admin", "pending"), ("metadata_only", "admin", "pending"),
    ]  # fmt: skip
    assert [name for name, _args, _options in sent_tasks] == ["backups.run_backup", "backups.run_backup"]


def test_verify_reports_a_good_and_a_tampered_backup(
    live_server, transactional_db, django_user_model, settings, tmp_path
):
    _folder(settings, tmp_path)
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    AdapterFactory.create_batch(2)
    good = completed_backup("full")
    bad = completed_backup("metadata_only")
    path = stored_file(bad)
    tamper(path, offset=first_member_data_offset(path))

    def verify(page: Page) -> None:
        expect(row_of(page, str(good.file_name)).locator("a", has_text=str(good.file_name))).to_have_attribute(
            "href", f"/api/v1/backups/{good.pk}/download"
        )
        for backup in (good, bad):
            row_of(page, str(backup.sha256)[:12]).locator('input[name="_selected_action"]').check()
        page.select_option('select[name="action"]', "verify_selected")
        page.locator('button[name="index"]').click()
        messages = page.locator(".messagelist")
        expect(messages.locator(".success")).to_contain_text(f"Backup {good.pk} verified")
        expect(messages.locator(".error")).to_contain_text(f"Backup {bad.pk}: Backup file does not match its recorded")

    errors = in_browser(live_server.url, CHANGELIST, verify)
    assert errors == []


def test_deleting_a_backup_in_the_admin_removes_its_file(
    live_server, transactional_db, django_user_model, settings, tmp_path
):
    _folder(settings, tmp_path)
    django_user_model.objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)
    backup = completed_backup("full")
    path = stored_file(backup)

    def delete(page: Page) -> None:
        row_of(page, str(backup.sha256)[:12]).locator('input[name="_selected_action"]').check()
        page.select_option('select[name="action"]', "delete_selected")
        page.locator('button[name="index"]').click()
        page.locator('input[type="submit"]').click()  # "Yes, I'm sure"
        expect(page.locator(".messagelist")).to_contain_text("Successfully deleted")

    errors = in_browser(live_server.url, CHANGELIST, delete)
    assert errors == []
    assert not Backup.objects.exists()
    assert not path.exists()
