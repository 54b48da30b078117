"""The generation backends admin as a staff user sees it (SPEC 9.1)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import GenerationBackend
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/generation/generationbackend/"
ADD = CHANGELIST + "add/"
SECRET = "admin-s3cret"


def change_url(backend: GenerationBackend) -> str:
    return f"{CHANGELIST}{backend.pk}/change/"


def form_data(backend: GenerationBackend | None = None, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": backend.name if backend else "gpu-1",
        "url": backend.url if backend else "http://sdnext-1:7860",
        "username": (backend.username or "") if backend else "",
        "enabled": "on",
        "timeout_seconds": "",
        "new_password": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_changelist_shows_health_and_busy_columns(admin_client):
    GenerationBackendFactory(name="up", healthy=True, version_info={"app": "sd.next", "commit": "abc1234"})
    GenerationBackendFactory(
        name="working", lease_job=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    content = response.content.decode()
    assert "healthy" in content
    assert "unknown" in content
    assert "sd.next abc1234" in content
    assert "overwritten from the environment" in content


def test_change_form_renders_without_the_password(admin_client):
    backend = GenerationBackendFactory(username="forge", password=SECRET)
    response = admin_client.get(change_url(backend))
    assert response.status_code == 200
    content = response.content.decode()
    assert SECRET not in content
    assert "clear_password" in content
    assert "SDNEXT_URL" in content


def test_add_creates_a_backend_with_a_password(admin_client):
    response = admin_client.post(ADD, form_data(url="http://sdnext-1:7860/", new_password=SECRET))
    assert response.status_code == 302, response.context["adminform"].form.errors
    backend = GenerationBackend.objects.get(name="gpu-1")
    assert (backend.url, backend.password) == ("http://sdnext-1:7860", SECRET)


def test_add_validates_like_the_api(admin_client):
    response = admin_client.post(ADD, form_data(name="auto", url="ftp://x"))
    errors = response.context["adminform"].form.errors
    assert errors["name"] == ["name 'auto' is reserved"]
    assert errors["url"] == ["url must be an http(s) URL without credentials, query or fragment"]


def test_add_rejects_a_taken_name(admin_client):
    GenerationBackendFactory(name="gpu-1")
    response = admin_client.post(ADD, form_data())
    assert response.context["adminform"].form.errors["name"] == ["a backend with this name already exists"]


def test_blank_password_keeps_the_stored_one(admin_client):
    backend = GenerationBackendFactory(password=SECRET)
    response = admin_client.post(change_url(backend), form_data(backend, enabled=None))
    assert response.status_code == 302
    backend.refresh_from_db()
    assert (backend.password, backend.enabled) == (SECRET, False)


def test_a_new_password_replaces_the_stored_one(admin_client):
    backend = GenerationBackendFactory(password=SECRET)
    admin_client.post(change_url(backend), form_data(backend, new_password="other"))
    backend.refresh_from_db()
    assert backend.password == "other"


def test_clear_password_checkbox_clears_it(admin_client):
    backend = GenerationBackendFactory(password=SECRET)
    admin_client.post(change_url(backend), form_data(backend, clear_password="on"))
    backend.refresh_from_db()
    assert backend.password is None


def test_a_busy_backend_cannot_be_deleted(admin_client):
    backend = GenerationBackendFactory(lease_job=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(minutes=5))
    response = admin_client.post(f"{CHANGELIST}{backend.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert GenerationBackend.objects.filter(pk=backend.pk).exists()


def test_an_idle_backend_is_deleted(admin_client):
    backend = GenerationBackendFactory()
    response = admin_client.post(f"{CHANGELIST}{backend.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not GenerationBackend.objects.filter(pk=backend.pk).exists()


def test_bulk_delete_with_a_busy_backend_deletes_nothing(admin_client):
    GenerationBackendFactory()
    busy = GenerationBackendFactory(lease_job=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(minutes=5))
    pks = list(GenerationBackend.objects.values_list("pk", flat=True))
    response = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": pks, "post": "yes"})
    assert response.status_code == 403
    assert GenerationBackend.objects.count() == 2
    assert busy.pk in pks


def test_check_health_action_checks_live(admin_client, fake_sdnext):
    backend = GenerationBackendFactory(url=fake_sdnext.url)
    response = admin_client.post(CHANGELIST, {"action": "check_health", "_selected_action": [backend.pk]}, follow=True)
    assert [str(message) for message in response.context["messages"]] == [f"{backend.name}: healthy (sd.next f4ke5d1)"]
    backend.refresh_from_db()
    assert backend.healthy is True
