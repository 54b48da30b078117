"""Authentication and authorisation of the API as a client sees it (SPEC 4.1, 4.2)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.utils import timezone
from rest_framework.test import APIClient

from loraforge.api import router
from loraforge.api_keys import api_key_create, api_key_revoke
from loraforge.models import ApiKey
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db

PREFIXES = ("/api/v1", "/v1")
WWW_AUTHENTICATE = 'ApiKey header="X-API-Key"'
PROBLEM = "urn:loraforge:problem:"
ADAPTER_ID = "3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c11"

# Every route of the API today: (method, path under the prefix). ``{id}`` is an existing adapter.
ROUTES = [
    ("get", "/adapters"),
    ("post", "/adapters"),
    ("get", "/adapters/{id}"),
    ("patch", "/adapters/{id}"),
    ("delete", "/adapters/{id}"),
    ("post", "/adapters/{id}/activate"),
    ("post", "/adapters/{id}/deactivate"),
    ("post", "/adapters/bulk"),
    ("get", "/adapters/tags"),
    ("post", "/compose"),
]
SAFE_ROUTES = [(method, path) for method, path in ROUTES if method == "get"]
UNSAFE_ROUTES = [(method, path) for method, path in ROUTES if method != "get"]
# A request each unsafe route accepts with a full key, so "open" and "allowed" can be asserted as success.
VALID_BODIES = {
    ("post", "/adapters/bulk"): {"action": "activate", "lora_ids": []},
    ("patch", "/adapters/{id}"): {"notes": "edited"},
    ("post", "/compose"): {},
}
SUCCESS = {"get": 200, "post": 200, "patch": 200, "delete": 204}


def route_ids(routes):
    return [f"{method.upper()} {path}" for method, path in routes]


@pytest.fixture
def adapter():
    return AdapterFactory(id=uuid.UUID(ADAPTER_ID), tags=["anime"])


def call(client, method: str, prefix: str, path: str, body=None, **extra):
    url = prefix + path.replace("{id}", ADAPTER_ID)
    if method in ("post", "patch", "put"):
        return getattr(client, method)(url, data=json.dumps(body or {}), content_type="application/json", **extra)
    return getattr(client, method)(url, **extra)


def assert_problem(response, status: int, kind: str, title: str, detail: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body == {
        "type": PROBLEM + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": response.wsgi_request.path,
    }
    return body


def assert_authentication_required(response) -> None:
    assert_problem(response, 401, "authentication-required", "Authentication required", "Authentication required")
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def assert_invalid_key(response) -> None:
    assert_problem(response, 401, "invalid-api-key", "Invalid API key", "Invalid API key")
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def assert_forbidden(response, detail: str) -> None:
    assert_problem(response, 403, "permission-denied", "Permission denied", detail)


def keyed(key: str, **kwargs) -> APIClient:
    client = APIClient(**kwargs)
    client.credentials(HTTP_X_API_KEY=key)
    return client


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("curator", password="pw", is_staff=True)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    client = APIClient()
    client.force_login(staff_user)
    return client


# --- anonymous ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids(ROUTES))
def test_anonymous_request_is_401(anon, adapter, prefix, method, path):
    assert_authentication_required(call(anon, method, prefix, path))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_anonymous_request_with_trailing_slash_is_401(anon, adapter, prefix):
    assert_authentication_required(anon.get(f"{prefix}/adapters/"))


def test_anonymous_request_is_401_even_with_an_invalid_body(anon):
    response = anon.post("/api/v1/adapters", data="{not json", content_type="application/json")
    assert_authentication_required(response)


def test_anonymous_request_to_an_unknown_adapter_is_401_not_404(anon):
    assert_authentication_required(anon.get(f"/api/v1/adapters/{uuid.uuid4()}"))


def test_every_documented_operation_requires_authentication(anon, adapter):
    schema = anon.get("/api/schema/?format=json").json()
    operations = [
        (method, path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert operations
    for method, path in operations:
        url = re.sub(r"\{[^}]+\}", ADAPTER_ID, path)
        kwargs = {"data": "{}", "content_type": "application/json"} if method in ("post", "put", "patch") else {}
        response = getattr(anon, method)(url, **kwargs)
        assert response.status_code == 401, f"{method.upper()} {url}"


# --- invalid keys -------------------------------------------------------------------------


def _unknown_key() -> str:
    return "lf_zzzzzzzz_" + "A" * 43


@pytest.fixture(
    params=["garbage", "empty", "unknown_public_id", "wrong_secret", "revoked", "expired", "padded_prefix"],
)
def invalid_key(request, db) -> str:
    kind = request.param
    if kind == "garbage":
        return "not-a-key"
    if kind == "empty":
        return ""
    if kind == "unknown_public_id":
        return _unknown_key()
    created = api_key_create(name=kind)
    if kind == "wrong_secret":
        public_id = created.api_key.public_id
        secret = created.plain_key.split("_", 2)[2]
        return f"lf_{public_id}_{'B' if secret[0] != 'B' else 'C'}{secret[1:]}"
    if kind == "revoked":
        api_key_revoke(api_key=created.api_key)
    if kind == "expired":
        created.api_key.expires_at = timezone.now() - timedelta(seconds=1)
        created.api_key.save(update_fields=["expires_at"])
    if kind == "padded_prefix":
        return "x" + created.plain_key
    return created.plain_key


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids(ROUTES))
def test_unknown_key_is_401_invalid_api_key(adapter, prefix, method, path):
    assert_invalid_key(call(keyed(_unknown_key()), method, prefix, path))


def test_invalid_keys_are_401(invalid_key, adapter):
    assert_invalid_key(keyed(invalid_key).get("/api/v1/adapters"))


def test_invalid_key_with_a_valid_staff_session_is_still_401(staff_client):
    staff_client.credentials(HTTP_X_API_KEY=_unknown_key())
    assert_invalid_key(staff_client.get("/api/v1/adapters"))


def test_key_expiring_in_the_future_is_valid(db):
    created = api_key_create(name="soon", expires_at=timezone.now() + timedelta(hours=1))
    assert keyed(created.plain_key).get("/api/v1/adapters").status_code == 200


def test_revocation_takes_effect_on_the_next_request(api_key):
    client = keyed(api_key)
    assert client.get("/api/v1/adapters").status_code == 200
    ApiKey.objects.update(revoked_at=timezone.now())
    assert_invalid_key(client.get("/api/v1/adapters"))


# --- read-only keys -----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), UNSAFE_ROUTES, ids=route_ids(UNSAFE_ROUTES))
def test_read_only_key_is_403_on_unsafe_methods(read_only_key, adapter, prefix, method, path):
    response = call(keyed(read_only_key), method, prefix, path, VALID_BODIES.get((method, path)))
    assert_forbidden(response, "This API key is read-only")


def test_read_only_key_is_403_on_put(read_only_key, adapter):
    response = keyed(read_only_key).put(f"/api/v1/adapters/{ADAPTER_ID}", data="{}", content_type="application/json")
    assert_forbidden(response, "This API key is read-only")


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), SAFE_ROUTES, ids=route_ids(SAFE_ROUTES))
def test_read_only_key_may_read(read_only_key, adapter, prefix, method, path):
    assert call(keyed(read_only_key), method, prefix, path).status_code == 200


def test_read_only_key_changes_nothing(read_only_key, adapter):
    client = keyed(read_only_key)
    call(client, "delete", "/api/v1", "/adapters/{id}")
    call(client, "post", "/api/v1", "/adapters/{id}/activate")
    adapter.refresh_from_db()
    assert adapter.active is False


# --- full keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids(ROUTES))
def test_full_key_reaches_every_route(api, adapter, lora_dir, prefix, method, path):
    body = VALID_BODIES.get((method, path))
    if (method, path) == ("post", "/adapters"):
        body = {"name": "New", "file_path": str(write_safetensors(lora_dir / "new.safetensors"))}
    response = call(api, method, prefix, path, body)
    assert response.status_code == {**SUCCESS, "post": 201 if path == "/adapters" else 200}[method], response.content


def test_key_with_surrounding_whitespace_is_accepted(api_key):
    assert keyed(f"  {api_key} ").get("/api/v1/adapters").status_code == 200


def test_key_authenticated_post_needs_no_csrf_token(api_key, staff_user, adapter):
    client = keyed(api_key, enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = call(client, "post", "/api/v1", "/adapters/bulk", VALID_BODIES[("post", "/adapters/bulk")])
    assert response.status_code == 200, response.content


# --- static key ---------------------------------------------------------------------------


def test_static_key_is_accepted(settings, adapter):
    settings.LORAFORGE_API_KEY = "static-key-for-tests"
    client = keyed("static-key-for-tests")
    assert client.get("/api/v1/adapters").status_code == 200
    response = call(client, "post", "/api/v1", "/adapters/{id}/activate")
    assert response.status_code == 200


def test_static_key_must_match_exactly(settings):
    settings.LORAFORGE_API_KEY = "static-key-for-tests"
    assert_invalid_key(keyed("static-key-for-test").get("/api/v1/adapters"))
    assert_invalid_key(keyed("STATIC-KEY-FOR-TESTS").get("/api/v1/adapters"))


def test_database_keys_still_work_beside_the_static_key(settings, api_key):
    settings.LORAFORGE_API_KEY = "static-key-for-tests"
    assert keyed(api_key).get("/api/v1/adapters").status_code == 200


def test_without_a_static_key_an_empty_header_is_invalid(settings):
    settings.LORAFORGE_API_KEY = None
    assert_invalid_key(keyed("").get("/api/v1/adapters"))


# --- sessions -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), SAFE_ROUTES, ids=route_ids(SAFE_ROUTES))
def test_staff_session_may_read(staff_client, adapter, prefix, method, path):
    assert call(staff_client, method, prefix, path).status_code == 200


def test_superuser_admin_client_may_read(admin_client, adapter):
    response = admin_client.get("/api/v1/adapters")
    assert response.status_code == 200
    assert response.json()["total"] == 1


def test_non_staff_user_is_403(django_user_model, adapter):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))
    assert_forbidden(client.get("/api/v1/adapters"), "Staff access required")


def test_inactive_staff_user_is_anonymous(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])
    assert_authentication_required(client.get("/api/v1/adapters"))


def test_session_post_without_csrf_token_is_403(staff_user, adapter):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = call(client, "post", "/api/v1", "/adapters/{id}/activate")
    assert_forbidden(response, "CSRF token missing or incorrect")
    adapter.refresh_from_db()
    assert adapter.active is False


def test_session_post_with_a_wrong_csrf_token_is_403(staff_user, adapter, settings):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()
    response = call(client, "post", "/api/v1", "/adapters/{id}/activate", HTTP_X_CSRFTOKEN=_get_new_csrf_string())
    assert_forbidden(response, "CSRF token missing or incorrect")


def test_session_post_with_csrf_token_succeeds(staff_user, adapter, settings):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    token = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    response = call(client, "post", "/api/v1", "/adapters/{id}/activate", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert response.json()["adapter"]["active"] is True


def test_session_get_needs_no_csrf_token(staff_user, adapter):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get("/api/v1/adapters").status_code == 200


# --- LORAFORGE_AUTH=off -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=route_ids(ROUTES))
def test_auth_off_opens_every_route(anon, settings, adapter, prefix, method, path):
    settings.LORAFORGE_AUTH = False
    if (method, path) == ("post", "/adapters"):
        response = call(anon, method, prefix, path, {"name": "x"})
        assert response.status_code == 400  # reached validation, not auth
        return
    response = call(anon, method, prefix, path, VALID_BODIES.get((method, path)))
    assert response.status_code == SUCCESS[method], response.content


def test_auth_off_ignores_a_bad_key(settings, adapter):
    settings.LORAFORGE_AUTH = False
    assert keyed("not-a-key").get("/api/v1/adapters").status_code == 200


def test_auth_off_lets_a_read_only_key_write(settings, read_only_key, adapter):
    settings.LORAFORGE_AUTH = False
    assert call(keyed(read_only_key), "post", "/api/v1", "/adapters/{id}/activate").status_code == 200


# --- last_used_at -------------------------------------------------------------------------


def test_last_used_at_is_set_on_first_use(api, api_key):
    before = timezone.now()
    api.get("/api/v1/adapters")
    last_used = ApiKey.objects.get().last_used_at
    assert last_used is not None
    assert last_used >= before


def test_last_used_at_is_updated_at_most_once_per_minute(api):
    api.get("/api/v1/adapters")
    first = ApiKey.objects.get().last_used_at
    api.get("/api/v1/adapters")
    assert ApiKey.objects.get().last_used_at == first


def test_second_request_within_a_minute_writes_nothing(api, django_assert_num_queries):
    api.get("/api/v1/adapters/tags")
    with django_assert_num_queries(2):  # the key lookup and the tag query, no UPDATE
        api.get("/api/v1/adapters/tags")


def test_last_used_at_is_refreshed_after_a_minute(api):
    api.get("/api/v1/adapters")
    stale = timezone.now() - timedelta(seconds=61)
    ApiKey.objects.update(last_used_at=stale)
    api.get("/api/v1/adapters")
    assert ApiKey.objects.get().last_used_at > stale


def test_invalid_key_does_not_touch_last_used_at(api_key):
    ApiKey.objects.update(revoked_at=timezone.now())
    keyed(api_key).get("/api/v1/adapters")
    assert ApiKey.objects.get().last_used_at is None


# --- keys never leak ----------------------------------------------------------------------


def test_no_endpoint_returns_a_key(settings, adapter):
    settings.LORAFORGE_API_KEY = "static-key-for-tests"
    created = api_key_create(name="leak-check")
    client = keyed(created.plain_key)
    secrets_ = [created.plain_key, created.api_key.key_hash, "static-key-for-tests"]
    responses = [call(client, method, "/api/v1", path) for method, path in SAFE_ROUTES]
    responses += [client.get(f"/api/v1/adapters/{ADAPTER_ID}"), client.get("/api/schema/?format=json")]
    responses += [client.get("/api/schema/"), client.get("/api/docs/"), client.get("/api/health")]
    responses.append(call(client, "post", "/api/v1", "/adapters/{id}/activate"))
    responses.append(client.get("/api/v1/settings"))
    for response in responses:
        for secret in secrets_:
            assert secret not in response.content.decode(), response.wsgi_request.path


# --- open pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/health", "/health", "/api/health/", "/health/"])
def test_health_is_open_and_touches_no_database(anon, path, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = anon.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"].startswith("application/json")


def test_health_ignores_credentials(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = keyed("not-a-key").get("/api/health")
    assert response.status_code == 200


def test_health_answers_head(anon):
    assert anon.head("/api/health").status_code == 200


def test_health_rejects_post_with_a_problem_405(anon):
    response = anon.post("/api/health")
    assert_problem(response, 405, "method-not-allowed", "Method not allowed", "Method POST not allowed")
    assert {method.strip() for method in response["Allow"].split(",")} == {"GET", "HEAD"}


def test_schema_yaml_is_open(anon):
    response = anon.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")


def test_schema_json_is_open(anon):
    response = anon.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert response.json()["openapi"].startswith("3.")


def test_schema_without_trailing_slash(anon):
    assert anon.get("/api/schema?format=json").json()["openapi"].startswith("3.")


def test_schema_is_served_even_with_a_bad_key():
    assert keyed("not-a-key").get("/api/schema/?format=json").status_code == 200


def _canonical(path: str) -> str:
    return path.rstrip("/") or "/"


def test_schema_documents_every_route(anon):
    documented = {
        (_canonical(path), method)
        for path, item in anon.get("/api/schema/?format=json").json()["paths"].items()
        for method in item
    }
    for method, path in ROUTES:
        assert (f"/api/v1{path}", method) in documented, f"{method.upper()} {path}"


def test_schema_documents_every_registered_router_route(anon):
    documented = {_canonical(path) for path in anon.get("/api/schema/?format=json").json()["paths"]}
    for url in router.urls:
        pattern = str(url.pattern).lstrip("^").rstrip("$").replace("/?", "")
        if "\\." in pattern:  # format-suffix variants
            continue
        path = "/api/v1/" + re.sub(r"\(\?P<pk>[^)]*\)", "{id}", pattern)
        assert _canonical(path) in documented, path


def test_schema_declares_the_api_key_scheme(anon):
    schema = anon.get("/api/schema/?format=json").json()
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.assets.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.assets.append(values["href"] or "")


def test_docs_page_is_open_html_with_local_assets(anon):
    response = anon.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    parser = _AssetParser()
    parser.feed(response.content.decode())
    scripts = [asset for asset in parser.assets if asset.endswith(".js")]
    styles = [asset for asset in parser.assets if asset.endswith(".css")]
    assert scripts
    assert styles
    for asset in parser.assets:
        parts = urlsplit(asset)
        assert not parts.netloc, asset
        assert parts.path.startswith("/static/"), asset
    page = response.content.decode()
    for host in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "https://", "http://"):
        assert host not in page


def test_docs_assets_are_served(anon):
    parser = _AssetParser()
    parser.feed(anon.get("/api/docs/").content.decode())
    for asset in parser.assets:
        response = anon.get(asset)
        assert response.status_code == 200, asset
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body, asset


def test_docs_without_trailing_slash(anon):
    assert anon.get("/api/docs").status_code == 200
