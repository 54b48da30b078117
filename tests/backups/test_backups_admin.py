"""The backups admin through Django's test client (SPEC 9.1): read-only rows, POST-only buttons, restore action,
a busy backup kept on delete. The browser test drives the buttons and "Verify" in Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from backups.models import Backup
from loraforge.models import BackgroundJob
from tests.backups.helpers import completed_backup, stored_file

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/backups/backup/"


@pytest.fixture
def staff(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "secret-password-1")
    client.force_login(user)
    return client


def test_the_list_shows_size_short_checksum_and_download_link(staff, backup_dir):
    backup = completed_backup()
    page = staff.get(CHANGELIST).content.decode()
    assert f'href="/api/v1/backups/{backup.pk}/download"' in page
    assert str(backup.sha256)[:12] in page
    assert "Create full backup" in page
    assert "Create metadata backup" in page


def test_no_add_and_no_edit_through_the_form(staff, backup_dir):
    backup = completed_backup()
    assert staff.get(f"{CHANGELIST}add/").status_code == 403
    response = staff.post(f"{CHANGELIST}{backup.pk}/change/", {"status": "failed"})
    assert response.status_code == 403
    assert Backup.objects.get(pk=backup.pk).status == "completed"


def test_the_create_buttons_only_answer_post(staff, backup_dir, sent_tasks):
    assert staff.get(f"{CHANGELIST}create/full/").status_code == 405
    assert not Backup.objects.exists()
    response = staff.post(f"{CHANGELIST}create/metadata/")
    assert response.status_code == 302
    assert Backup.objects.get().backup_type == "metadata_only"


def test_the_restore_action_queues_a_merge_restore_of_one_backup(staff, backup_dir, sent_tasks):
    backup = completed_backup()
    response = staff.post(CHANGELIST, {"action": "restore_merge", "_selected_action": [str(backup.pk)]}, follow=True)
    job = BackgroundJob.objects.get(kind="restore")
    assert (job.params["mode"], job.created_via) == ("merge", "admin")
    assert f"Restore of backup {backup.pk} queued (job {job.pk})" in response.content.decode()


def test_deleting_a_busy_backup_in_the_admin_keeps_it(staff, backup_dir):
    busy = Backup.objects.create(status="running")
    done = completed_backup()
    path = stored_file(done)
    selected = [str(busy.pk), str(done.pk)]
    response = staff.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}, follow=True
    )
    assert "Backup is in progress" in response.content.decode()
    assert list(Backup.objects.values_list("pk", flat=True)) == [busy.pk]
    assert not path.exists()
