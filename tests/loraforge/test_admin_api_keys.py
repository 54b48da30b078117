"""API keys and background jobs in the admin (SPEC 9.1): the key is shown once, the hash never."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from loraforge.api_keys import api_key_create, digest
from loraforge.models import ApiKey, BackgroundJob

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/loraforge/apikey/"
ADD = "/admin/loraforge/apikey/add/"
KEY = re.compile(r"lf_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


def adapters_status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client.get("/api/v1/adapters").status_code


def add_key(admin_client, **fields):
    data = {"name": "ci", "expires_at_0": "", "expires_at_1": "", "_save": "Save", **fields}
    return admin_client.post(ADD, data, follow=True)


def test_add_form_offers_only_name_read_only_and_expiry(admin_client):
    form = admin_client.get(ADD).context["adminform"].form
    assert list(form.fields) == ["name", "read_only", "expires_at"]


def test_added_key_is_shown_once_and_only_its_hash_is_stored(admin_client):
    response = add_key(admin_client, name="ci")
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"] if KEY.search(str(message))]
    assert len(shown) == 1
    plain = KEY.search(shown[0]).group(0)
    api_key = ApiKey.objects.get()
    assert api_key.name == "ci"
    assert api_key.key_hash == digest(plain)
    assert api_key.created_by is not None
    stored = [str(getattr(api_key, field.attname)) for field in ApiKey._meta.concrete_fields]
    assert plain not in stored
    assert adapters_status(plain) == 200
    again = admin_client.get(CHANGELIST).content.decode()
    assert plain not in again
    assert api_key.prefix in again


def test_added_key_can_be_read_only_and_expire(admin_client):
    expires = timezone.now() + timedelta(days=3)
    add_key(
        admin_client,
        name="reader",
        read_only="on",
        expires_at_0=expires.strftime("%Y-%m-%d"),
        expires_at_1=expires.strftime("%H:%M:%S"),
    )
    api_key = ApiKey.objects.get()
    assert api_key.read_only is True
    assert api_key.expires_at is not None
    assert abs((api_key.expires_at - expires).total_seconds()) < 1


def test_expiry_in_the_past_is_rejected(admin_client):
    past = timezone.now() - timedelta(days=1)
    response = add_key(admin_client, expires_at_0=past.strftime("%Y-%m-%d"), expires_at_1="00:00:00")
    assert "The expiry must be in the future." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_key_hash_is_never_displayed(admin_client):
    api_key = api_key_create(name="ci").api_key
    pages = [CHANGELIST, f"{CHANGELIST}{api_key.pk}/change/", f"{CHANGELIST}{api_key.pk}/history/"]
    for url in pages:
        content = admin_client.get(url).content.decode()
        assert api_key.key_hash not in content
        assert "key_hash" not in content


def test_changelist_shows_prefix_and_state(admin_client):
    active = api_key_create(name="active-key").api_key
    api_key_create(name="old-key", expires_at=timezone.now() - timedelta(seconds=1))
    content = admin_client.get(CHANGELIST).content.decode()
    assert active.prefix in content
    assert '<td class="field-key_state">expired</td>' in content
    assert '<td class="field-key_state">active</td>' in content


def test_revoke_action_makes_the_key_fail(admin_client):
    created = api_key_create(name="ci")
    assert adapters_status(created.plain_key) == 200
    response = admin_client.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [str(created.api_key.pk)]}
    )
    assert response.status_code == 302
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is not None
    assert adapters_status(created.plain_key) == 401


def test_existing_key_allows_renaming_only(admin_client):
    api_key = api_key_create(name="before").api_key
    url = f"{CHANGELIST}{api_key.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    assert list(form.fields) == ["name"]
    response = admin_client.post(url, {"name": "after", "read_only": "on", "_save": "Save"})
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.name, api_key.read_only) == ("after", False)


def test_keys_cannot_be_deleted_through_the_admin(admin_client):
    api_key = api_key_create(name="ci").api_key
    assert admin_client.get(f"{CHANGELIST}{api_key.pk}/delete/").status_code == 403


def test_background_jobs_are_listed_read_only(admin_client):
    job = BackgroundJob.objects.create(kind="scan", params={"paths": ["<b>x</b>"]})
    listing = admin_client.get("/admin/loraforge/backgroundjob/", {"status__exact": "pending"})
    assert listing.status_code == 200
    assert str(job.pk) in listing.content.decode()
    detail = admin_client.get(f"/admin/loraforge/backgroundjob/{job.pk}/change/")
    assert detail.status_code == 200
    assert "&lt;b&gt;x&lt;/b&gt;" in detail.content.decode()
    assert admin_client.get("/admin/loraforge/backgroundjob/add/").status_code == 403
    response = admin_client.post(f"/admin/loraforge/backgroundjob/{job.pk}/change/", {"status": "failed"})
    assert response.status_code == 403
