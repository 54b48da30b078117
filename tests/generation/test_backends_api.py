"""The generation backends API as a client sees it (SPEC 5.5.1, 4.2-4.4)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import GenerationBackend
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/generation/backends"
ITEM_KEYS = {
    "id", "name", "kind", "url", "username", "has_password", "enabled", "is_default", "timeout_seconds", "healthy",
    "last_checked_at", "last_error", "version", "busy", "current_job_id", "last_used_at", "created_at", "updated_at",
}  # fmt: skip
SECRET = "s3cret-pa55word"


def detail_url(backend: GenerationBackend | str) -> str:
    return f"{URL}/{backend.pk if isinstance(backend, GenerationBackend) else backend}"


def leased(backend: GenerationBackend, *, minutes: int = 10) -> GenerationBackend:
    backend.lease_job = uuid.uuid4()
    backend.lease_expires_at = timezone.now() + timedelta(minutes=minutes)
    backend.save()
    return backend


def create(api, **body):
    return api.post(URL, {"name": "gpu-1", "url": "http://sdnext-1:7860", **body}, format="json")


def field_error(response, field: str) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "urn:loraforge:problem:validation-error"
    return body["errors"][field][0]


# --- list ---------------------------------------------------------------------------------------


def test_list_is_empty_without_backends(api):
    assert api.get(URL).json() == {"sdnext": False, "backends": []}


def test_list_item_has_the_documented_shape(api):
    checked = timezone.now()
    backend = GenerationBackendFactory(
        name="default",
        url="http://sdnext-1:7860",
        is_default=True,
        healthy=True,
        last_checked_at=checked,
        version_info={"app": "sd.next", "commit": "058a7f0"},
    )
    body = api.get(URL).json()
    assert body["sdnext"] is True
    [item] = body["backends"]
    assert set(item) == ITEM_KEYS
    assert item | {"created_at": None, "updated_at": None, "last_checked_at": None} == {
        "id": str(backend.pk),
        "name": "default",
        "kind": "sdnext",
        "url": "http://sdnext-1:7860",
        "username": None,
        "has_password": False,
        "enabled": True,
        "is_default": True,
        "timeout_seconds": None,
        "healthy": True,
        "last_checked_at": None,
        "last_error": None,
        "version": {"app": "sd.next", "commit": "058a7f0"},
        "busy": False,
        "current_job_id": None,
        "last_used_at": None,
        "created_at": None,
        "updated_at": None,
    }
    assert item["last_checked_at"].endswith("Z")


def test_list_sdnext_is_false_when_every_backend_is_disabled(api):
    GenerationBackendFactory(enabled=False)
    assert api.get(URL).json()["sdnext"] is False


def test_list_is_ordered_by_name(api):
    for name in ("zeta", "alpha", "mid"):
        GenerationBackendFactory(name=name)
    assert [item["name"] for item in api.get(URL).json()["backends"]] == ["alpha", "mid", "zeta"]


def test_list_query_count_does_not_grow_with_rows(api, django_assert_max_num_queries):
    GenerationBackendFactory.create_batch(20)
    with django_assert_max_num_queries(3):
        response = api.get(URL)
    assert len(response.json()["backends"]) == 20


def test_busy_and_current_job_id_show_a_live_lease(api):
    backend = leased(GenerationBackendFactory())
    item = api.get(detail_url(backend)).json()["backend"]
    assert item["busy"] is True
    assert item["current_job_id"] == str(backend.lease_job)


def test_an_expired_lease_is_not_busy(api):
    backend = leased(GenerationBackendFactory(), minutes=-1)
    item = api.get(detail_url(backend)).json()["backend"]
    assert (item["busy"], item["current_job_id"]) == (False, None)


# --- create -------------------------------------------------------------------------------------


def test_create_returns_201_with_the_backend_envelope(api):
    response = create(api, username="user", password=SECRET, timeout_seconds=900, enabled=False)
    assert response.status_code == 201
    backend = response.json()["backend"]
    assert set(backend) == ITEM_KEYS
    assert backend["name"] == "gpu-1"
    assert backend["username"] == "user"
    assert backend["has_password"] is True
    assert backend["timeout_seconds"] == 900
    assert backend["enabled"] is False
    assert backend["is_default"] is False
    assert backend["healthy"] is None
    assert GenerationBackend.objects.get(pk=backend["id"]).password == SECRET


def test_create_defaults(api):
    backend = create(api).json()["backend"]
    assert (backend["enabled"], backend["username"], backend["has_password"]) == (True, None, False)
    assert backend["kind"] == "sdnext"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("http://sdnext:7860/", "http://sdnext:7860"),
        ("HTTPS://Example.COM/sd/", "https://example.com/sd"),
        ("http://10.0.0.2:7860/sub/path//", "http://10.0.0.2:7860/sub/path"),
    ],
)
def test_create_normalises_the_url(api, given, stored):
    assert create(api, url=given).json()["backend"]["url"] == stored


@pytest.mark.parametrize("name", ["Upper", "-dash-first", "has space", "a" * 65, "", "ünï"])
def test_create_rejects_a_name_off_the_pattern(api, name):
    assert field_error(create(api, name=name), "name") == "name must match ^[a-z0-9][a-z0-9_-]{0,63}$"


@pytest.mark.parametrize("name", ["sdnext", "auto", "any"])
def test_create_rejects_a_reserved_name(api, name):
    assert field_error(create(api, name=name), "name") == f"name '{name}' is reserved"


def test_create_rejects_a_taken_name(api):
    GenerationBackendFactory(name="gpu-1")
    assert field_error(create(api), "name") == "a backend with this name already exists"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://sdnext:7860",
        "sdnext:7860",
        "http://user:pw@sdnext:7860",
        "http://sdnext:7860/?a=1",
        "http://sdnext:7860/#top",
        "http://",
        "http://sdnext:notaport",
        "",
    ],
)
def test_create_rejects_a_bad_url(api, url):
    message = field_error(create(api, url=url), "url")
    assert message == "url must be an http(s) URL without credentials, query or fragment"


@pytest.mark.parametrize("timeout", [0, 7201, -5])
def test_create_rejects_a_timeout_out_of_range(api, timeout):
    assert field_error(create(api, timeout_seconds=timeout), "timeout_seconds")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled", "true"),
        ("enabled", 1),
        ("timeout_seconds", "60"),
        ("timeout_seconds", 60.5),
        ("timeout_seconds", True),
        ("name", 5),
        ("url", ["http://x"]),
        ("username", 1),
        ("password", 123),
    ],
)
def test_create_is_strictly_typed(api, field, value):
    assert field_error(create(api, **{field: value}), field)


def test_create_requires_name_and_url(api):
    response = api.post(URL, {}, format="json")
    assert set(response.json()["errors"]) == {"name", "url"}


def test_create_rejects_unknown_keys(api):
    assert field_error(create(api, colour="red"), "colour") == "Unknown field."


def test_create_rejects_read_only_keys(api):
    assert field_error(create(api, is_default=True), "is_default") == "This field cannot be changed."


def test_create_rejects_null_enabled(api):
    assert field_error(create(api, enabled=None), "enabled") == "This field may not be null."


# --- get / patch --------------------------------------------------------------------------------


def test_get_returns_the_backend_envelope(api):
    backend = GenerationBackendFactory()
    assert api.get(detail_url(backend)).json()["backend"]["id"] == str(backend.pk)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("pk", ["3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c11", "not-a-uuid"])
def test_unknown_backend_is_404(api, method, pk):
    response = getattr(api, method)(detail_url(pk), {"enabled": False} if method == "patch" else None, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "Backend not found"


def test_check_of_an_unknown_backend_is_404(api):
    response = api.post(f"{URL}/3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c11/check")
    assert (response.status_code, response.json()["detail"]) == (404, "Backend not found")


def test_trailing_slash_is_optional(api):
    backend = GenerationBackendFactory()
    assert api.get(URL + "/").status_code == 200
    assert api.get(detail_url(backend) + "/").status_code == 200


def test_put_is_not_allowed(api):
    backend = GenerationBackendFactory()
    response = api.put(detail_url(backend), {"name": "x", "url": "http://x"}, format="json")
    assert response.status_code == 405


def test_patch_changes_fields(api):
    backend = GenerationBackendFactory(enabled=True)
    response = api.patch(
        detail_url(backend), {"enabled": False, "timeout_seconds": None, "url": "http://new:7860/"}, format="json"
    )
    assert response.status_code == 200
    item = response.json()["backend"]
    assert (item["enabled"], item["url"]) == (False, "http://new:7860")


def test_patch_keeps_its_own_name(api):
    backend = GenerationBackendFactory(name="gpu-1")
    assert api.patch(detail_url(backend), {"name": "gpu-1"}, format="json").status_code == 200


def test_patch_rejects_another_backends_name(api):
    GenerationBackendFactory(name="gpu-1")
    backend = GenerationBackendFactory(name="gpu-2")
    response = api.patch(detail_url(backend), {"name": "gpu-1"}, format="json")
    assert field_error(response, "name") == "a backend with this name already exists"


def test_patch_password_null_clears_it(api):
    backend = GenerationBackendFactory(password=SECRET)
    item = api.patch(detail_url(backend), {"password": None}, format="json").json()["backend"]
    assert item["has_password"] is False
    backend.refresh_from_db()
    assert backend.password is None


def test_patch_without_password_keeps_it(api):
    backend = GenerationBackendFactory(password=SECRET)
    api.patch(detail_url(backend), {"enabled": False}, format="json")
    backend.refresh_from_db()
    assert backend.password == SECRET


def test_patch_rejects_unknown_keys(api):
    backend = GenerationBackendFactory()
    assert field_error(api.patch(detail_url(backend), {"nope": 1}, format="json"), "nope") == "Unknown field."


def test_patch_rejects_an_empty_body(api):
    backend = GenerationBackendFactory()
    response = api.patch(detail_url(backend), {}, format="json")
    assert field_error(response, "non_field_errors") == "No valid fields provided for update"


def test_patch_of_the_url_forgets_the_last_health(api):
    backend = GenerationBackendFactory(healthy=True, last_checked_at=timezone.now(), version_info={"app": "sd.next"})
    item = api.patch(detail_url(backend), {"url": "http://elsewhere:7860"}, format="json").json()["backend"]
    assert (item["healthy"], item["last_checked_at"], item["version"]) == (None, None, None)


# --- delete -------------------------------------------------------------------------------------


def test_delete_returns_204(api):
    backend = GenerationBackendFactory()
    assert api.delete(detail_url(backend)).status_code == 204
    assert not GenerationBackend.objects.filter(pk=backend.pk).exists()


def test_delete_of_a_busy_backend_is_409(api):
    backend = leased(GenerationBackendFactory())
    response = api.delete(detail_url(backend))
    assert response.status_code == 409
    assert response.json()["type"] == "urn:loraforge:problem:conflict"
    assert response.json()["detail"] == "Backend is running a job"
    assert GenerationBackend.objects.filter(pk=backend.pk).exists()


def test_delete_with_an_expired_lease_succeeds(api):
    backend = leased(GenerationBackendFactory(), minutes=-1)
    assert api.delete(detail_url(backend)).status_code == 204


# --- secrets and auth ---------------------------------------------------------------------------


def test_password_never_appears_in_any_response(api):
    created = create(api, username="u", password=SECRET)
    pk = created.json()["backend"]["id"]
    responses = [
        created,
        api.get(URL),
        api.get(detail_url(pk)),
        api.patch(detail_url(pk), {"password": SECRET + "2"}, format="json"),
    ]
    for response in responses:
        assert SECRET not in response.content.decode()
        assert "password" not in json.dumps(response.json()).replace("has_password", "")


def test_password_is_not_logged(api, caplog):
    caplog.set_level("DEBUG")
    pk = create(api, password=SECRET).json()["backend"]["id"]
    api.patch(detail_url(pk), {"password": SECRET + "2"}, format="json")
    assert SECRET not in caplog.text


ROUTES = [
    ("get", ""),
    ("post", ""),
    ("get", "/{id}"),
    ("patch", "/{id}"),
    ("delete", "/{id}"),
    ("post", "/{id}/check"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_requires_authentication(anon, method, path):
    backend = GenerationBackendFactory()
    response = getattr(anon, method)(URL + path.format(id=backend.pk), {}, format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"


@pytest.mark.parametrize(("method", "path"), [route for route in ROUTES if route[0] != "get"])
def test_read_only_key_cannot_write(read_only_key, method, path):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    backend = GenerationBackendFactory()
    response = getattr(client, method)(URL + path.format(id=backend.pk), {}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "This API key is read-only"


@pytest.mark.parametrize("path", ["", "/{id}"])
def test_read_only_key_can_read(read_only_key, path):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    backend = GenerationBackendFactory()
    assert client.get(URL + path.format(id=backend.pk)).status_code == 200


def test_served_under_the_v1_prefix_too(api):
    assert api.get("/v1/generation/backends").json() == {"sdnext": False, "backends": []}
