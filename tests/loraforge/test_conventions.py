"""API conventions every endpoint shares: problem details, paths, bodies, limits (SPEC 4.1, 4.3-4.6, 7)."""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.test import Client
from rest_framework.test import APIClient

from loraforge.errors import PayloadTooLarge
from loraforge.parsers import StrictJSONParser
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
LIMIT = 2 * 1024 * 1024
TOO_LARGE = "Request body too large (limit 2 MB)"
REFERENCE = re.compile(r"^An unexpected error occurred \(reference [0-9a-f]{12}\)\.$")


def post(client, url: str, body) -> object:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def patch(client, url: str, body) -> object:
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


# --- problem details ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1"])
def test_problem_has_exactly_the_rfc_9457_members(api, prefix):
    path = f"{prefix}/adapters/{uuid.uuid4()}"
    body = problem(api.get(path), 404)
    assert body == {
        "type": "urn:loraforge:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": "Adapter not found",
        "instance": path,
    }


def test_instance_is_the_path_without_the_query_string(api):
    body = problem(api.get("/api/v1/adapters?sort=foo&page=2"), 400)
    assert body["instance"] == "/api/v1/adapters"


def test_validation_error_carries_errors_and_first_message_as_detail(api):
    adapter = AdapterFactory()
    body = problem(patch(api, f"/api/v1/adapters/{adapter.pk}", {"weight": "high"}), 400)
    assert set(body) == PROBLEM_KEYS | {"errors"}
    assert body["type"] == "urn:loraforge:problem:validation-error"
    assert body["title"] == "Validation failed"
    assert list(body["errors"]) == ["weight"]
    assert body["detail"] == body["errors"]["weight"][0]


def test_validation_error_paths_index_list_items(api):
    body = problem(post(api, "/api/v1/adapters/bulk", {"action": "delete", "lora_ids": [str(uuid.uuid4()), "x"]}), 400)
    assert body["errors"] == {"lora_ids.1": ["Must be a valid UUID."]}
    assert body["detail"] == "Must be a valid UUID."


def test_query_validation_errors_are_keyed_by_the_parameter(api):
    body = problem(api.get("/api/v1/adapters?active=maybe"), 400)
    assert list(body["errors"]) == ["active"]
    assert body["detail"] == body["errors"]["active"][0]


def test_null_on_a_non_nullable_field(api):
    adapter = AdapterFactory()
    body = problem(patch(api, f"/api/v1/adapters/{adapter.pk}", {"name": None}), 400)
    assert body["errors"] == {"name": ["This field may not be null."]}
    assert body["detail"] == "This field may not be null."


def test_null_on_a_non_nullable_action_field(api):
    body = problem(post(api, "/api/v1/adapters/bulk", {"action": None, "lora_ids": []}), 400)
    assert body["errors"]["action"] == ["This field may not be null."]


def test_success_is_plain_json(api):
    response = api.get("/api/v1/adapters/tags")
    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] == "application/json"


@pytest.mark.parametrize("url", ["/api/v1/adapters/tags", "/api/v1/adapters"])
def test_success_content_type_declares_utf_8(api, url):
    assert api.get(url)["Content-Type"] == "application/json; charset=utf-8"
    assert api.get(url)["Content-Type"] == "application/json; charset=utf-8"  # served from the cache


@pytest.mark.parametrize("accept", ["text/html", "text/html,application/xhtml+xml,*/*;q=0.8", "*/*"])
def test_problems_are_json_whatever_the_client_accepts(api, anon, accept):
    assert problem(anon.get("/api/v1/adapters", HTTP_ACCEPT=accept), 401)["status"] == 401
    assert problem(api.get("/api/v1/adapters?sort=foo", HTTP_ACCEPT=accept), 400)["errors"]["sort"]
    assert problem(api.get(f"/api/v1/adapters/{uuid.uuid4()}", HTTP_ACCEPT=accept), 404)["detail"]


def test_unacceptable_accept_header_is_a_406_problem(api):
    body = problem(api.get("/api/v1/adapters", HTTP_ACCEPT="application/xml"), 406)
    assert body["type"] == "urn:loraforge:problem:not-acceptable"
    assert body["title"] == "Not acceptable"


def test_too_many_query_parameters_is_400_not_500(api):
    query = "&".join(f"p{n}=1" for n in range(1001))
    body = problem(api.get(f"/api/v1/adapters?{query}"), 400)
    assert body["type"] == "urn:loraforge:problem:malformed-request"
    assert body["detail"] == "Too many parameters (limit 1000)"


def test_disallowed_host_is_a_problem_400_under_the_api():
    response = Client(raise_request_exception=False).get("/api/v1/adapters", HTTP_HOST="evil.example")
    body = problem(response, 400)
    assert body["type"] == "urn:loraforge:problem:malformed-request"
    assert body["instance"] == "/api/v1/adapters"


def test_drf_not_authenticated_reads_authentication_required():
    from rest_framework.exceptions import NotAuthenticated
    from rest_framework.test import APIRequestFactory

    from loraforge.errors import problem_exception_handler

    request = APIRequestFactory().get("/api/v1/x")
    response = problem_exception_handler(NotAuthenticated(), {"request": request})
    assert response is not None
    assert response.data["detail"] == "Authentication required"
    assert response["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'


# --- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here",
        "/v1/nothing-here",
        "/api/v1/adapters/3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c11/unknown-action",
        "/api/v1/adapters/x/y/z",
        "/api/v2/adapters",
        "/api/other",
        "/api/v1",
        "/api/v1/",
        "/v1",
        "/api",
        "/api/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_unknown_api_path_is_a_problem_404_for_every_method(api_key, path, method, with_key):
    # A client that enforces CSRF like a real server does: an unknown path must never answer a CSRF page.
    client = APIClient(enforce_csrf_checks=True)
    if with_key:
        client.credentials(HTTP_X_API_KEY=api_key)
    body = problem(getattr(client, method)(path), 404)
    assert body["type"] == "urn:loraforge:problem:not-found"
    assert body["instance"] == path


def test_unknown_path_is_404_even_without_credentials(anon):
    assert problem(anon.get("/api/v1/nothing-here"), 404)["detail"] == "Not found"


@pytest.mark.parametrize("path", ["/api/health", "/health"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_to_health_are_a_problem_405_not_a_csrf_page(path, method):
    response = getattr(APIClient(enforce_csrf_checks=True), method)(path)
    assert problem(response, 405)["type"] == "urn:loraforge:problem:method-not-allowed"
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "adapter_id",
    [
        "not-a-uuid",
        "123",
        "3f2b6c1e8d4a4f0b9c2e5a7d1e9b0c11",  # not hyphenated
        "3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c1",  # one digit short
        "{3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c11}",
        "%00",
    ],
)
@pytest.mark.parametrize(
    ("method", "suffix"), [("get", ""), ("patch", ""), ("delete", ""), ("post", "/activate"), ("post", "/deactivate")]
)
def test_non_uuid_id_is_adapter_not_found(api, adapter_id, method, suffix):
    url = f"/api/v1/adapters/{adapter_id}{suffix}"
    kwargs = {"data": json.dumps({"notes": "x"}), "content_type": "application/json"} if method == "patch" else {}
    body = problem(getattr(api, method)(url, **kwargs), 404)
    assert body["detail"] == "Adapter not found"


def test_unknown_uuid_is_adapter_not_found(api):
    assert problem(api.delete(f"/v1/adapters/{uuid.uuid4()}"), 404)["detail"] == "Adapter not found"


def test_ids_are_case_insensitive(api):
    adapter = AdapterFactory()
    response = api.get(f"/api/v1/adapters/{str(adapter.pk).upper()}")
    assert response.status_code == 200
    assert response.json()["adapter"]["id"] == str(adapter.pk)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/adapters", {"GET", "POST"}),
        ("put", "/api/v1/adapters/{id}", {"GET", "PATCH", "DELETE"}),
        ("get", "/api/v1/adapters/bulk", {"POST"}),
        ("post", "/api/v1/adapters/tags", {"GET"}),
        ("get", "/api/v1/adapters/{id}/activate", {"POST"}),
        ("get", "/v1/compose", {"POST"}),
    ],
)
def test_unsupported_method_is_405_with_allow(api, method, path, allowed):
    adapter = AdapterFactory()
    url = path.replace("{id}", str(adapter.pk))
    kwargs = {"data": "{}", "content_type": "application/json"} if method in ("post", "put") else {}
    response = getattr(api, method)(url, **kwargs)
    body = problem(response, 405)
    assert body["type"] == "urn:loraforge:problem:method-not-allowed"
    assert body["title"] == "Method not allowed"
    assert body["detail"] == f"Method {method.upper()} not allowed"
    listed = {name.strip() for name in response["Allow"].split(",")}
    assert allowed <= listed
    assert method.upper() not in listed


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/adapters",
        "/api/v1/adapters/",
        "/v1/adapters",
        "/v1/adapters/",
        "/api/v1/adapters/tags",
        "/api/v1/adapters/tags/",
        "/api/v1/adapters/{id}",
        "/api/v1/adapters/{id}/",
        "/api/health",
        "/api/health/",
        "/api/schema",
        "/api/schema/",
        "/api/docs",
        "/api/docs/",
    ],
)
def test_trailing_slash_is_optional_and_never_redirects(api, path):
    adapter = AdapterFactory()
    response = api.get(path.replace("{id}", str(adapter.pk)))
    assert response.status_code == 200
    assert "Location" not in response


@pytest.mark.parametrize("path", ["/api/v1/adapters/{id}/activate", "/api/v1/adapters/{id}/activate/"])
def test_post_with_or_without_trailing_slash(api, path):
    adapter = AdapterFactory()
    assert api.post(path.replace("{id}", str(adapter.pk))).status_code == 200


def test_unknown_path_with_trailing_slash_is_not_redirected(api):
    response = api.get("/api/v1/nothing/")
    assert response.status_code == 404
    assert "Location" not in response


# --- request bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x"],
)
def test_other_content_type_is_415(api, content_type):
    response = api.post(
        "/api/v1/adapters/bulk", data=b'{"action": "delete", "lora_ids": []}', content_type=content_type
    )
    body = problem(response, 415)
    assert body["type"] == "urn:loraforge:problem:unsupported-media-type"
    assert body["title"] == "Unsupported media type"
    assert body["detail"] == "Content-Type must be application/json"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_or_without_charset(api, content_type):
    body = b'{"action": "delete", "lora_ids": []}'
    response = api.post("/api/v1/adapters/bulk", data=body, content_type=content_type)
    assert response.status_code == 200, response.content


def test_post_without_a_body_needs_no_content_type(api):
    adapter = AdapterFactory()
    assert api.post(f"/api/v1/adapters/{adapter.pk}/activate").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"{nope",
        b'{"action": "delete"',
        b'{"weight": NaN}',
        b'{"weight": Infinity}',
        b'{"weight": -Infinity}',
        b"NaN",
        b'{"action": "\xff\xfe"}',
        b"[" * 100_000,
        b'{"a": 1} trailing',
        b"",
    ],
    ids=[
        "broken",
        "truncated",
        "nan",
        "infinity",
        "minus-infinity",
        "bare-nan",
        "bad-utf8",
        "deep",
        "trailing",
        "empty",
    ],
)
def test_invalid_json_is_a_malformed_request(api, raw):
    response = api.generic("POST", "/api/v1/adapters/bulk", raw, content_type="application/json")
    if raw == b"":  # no body at all: the serializer reports the missing fields instead
        assert problem(response, 400)["type"] == "urn:loraforge:problem:validation-error"
        return
    body = problem(response, 400)
    assert body["type"] == "urn:loraforge:problem:malformed-request"
    assert body["title"] == "Malformed request"
    assert body["detail"] == "Request body is not valid JSON."
    assert "errors" not in body


@pytest.mark.parametrize("raw", [b"[1, 2]", b"3", b'"text"', b"null", b"true"])
def test_json_that_is_not_an_object_is_malformed(api, raw):
    body = problem(api.generic("POST", "/api/v1/adapters/bulk", raw, content_type="application/json"), 400)
    assert body["type"] == "urn:loraforge:problem:malformed-request"
    assert body["detail"] == "Request body must be a JSON object."


# --- body limit ---------------------------------------------------------------------------


def _body_of(size: int) -> bytes:
    prefix, suffix = b'{"action": "', b'", "lora_ids": []}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


def test_body_over_the_default_limit_is_413(api):
    body = _body_of(LIMIT + 1)
    response = api.generic("POST", "/api/v1/adapters/bulk", body, content_type="application/json")
    problem_body = problem(response, 413)
    assert problem_body == {
        "type": "urn:loraforge:problem:payload-too-large",
        "title": "Payload too large",
        "status": 413,
        "detail": TOO_LARGE,
        "instance": "/api/v1/adapters/bulk",
    }


def test_body_at_the_limit_is_read(api):
    response = api.generic("POST", "/api/v1/adapters/bulk", _body_of(LIMIT), content_type="application/json")
    body = problem(response, 400)
    assert body["type"] == "urn:loraforge:problem:validation-error"
    assert list(body["errors"]) == ["action"]


def test_limit_follows_the_setting(api, settings):
    settings.LORAFORGE_MAX_BODY_MB = 3
    response = api.generic("POST", "/v1/adapters/bulk", _body_of(3 * 1024 * 1024 + 1), content_type="application/json")
    assert problem(response, 413)["detail"] == "Request body too large (limit 3 MB)"


def test_declared_length_is_refused_before_authentication(anon):
    response = anon.generic("PATCH", f"/api/v1/adapters/{uuid.uuid4()}", _body_of(LIMIT + 1), "application/json")
    assert problem(response, 413)["detail"] == TOO_LARGE


def test_parser_enforces_the_limit_on_the_stream():
    with pytest.raises(PayloadTooLarge) as caught:
        StrictJSONParser().parse(io.BytesIO(_body_of(LIMIT + 1)), "application/json", {})
    assert str(caught.value.detail) == TOO_LARGE


def _asgi_post(path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, bytes]:
    """Drive Django's ASGI handler like a server relaying a chunked body (no Content-Length)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the response is sent
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(dict(message))

    async_to_sync(ASGIHandler())(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


STATIC_KEY_HEADERS = [(b"x-api-key", b"static-key-for-tests"), (b"content-type", b"application/json")]


@pytest.mark.django_db(transaction=True)
def test_chunked_body_over_the_limit_is_413(settings):
    settings.LORAFORGE_API_KEY = "static-key-for-tests"
    body = _body_of(LIMIT + 1)
    chunks = [body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024)]
    status, headers, content = _asgi_post("/api/v1/adapters/bulk", chunks, STATIC_KEY_HEADERS)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(content)["detail"] == TOO_LARGE


@pytest.mark.django_db(transaction=True)
def test_chunked_body_within_the_limit_is_parsed(settings):
    settings.LORAFORGE_API_KEY = "static-key-for-tests"
    chunks = [b'{"action": "expl', b'ode", "lora_ids": []}']
    status, _headers, content = _asgi_post("/api/v1/adapters/bulk", chunks, STATIC_KEY_HEADERS)
    assert status == 400
    assert json.loads(content)["errors"] == {"action": ["action must be one of: activate, deactivate, delete"]}


# --- unexpected errors --------------------------------------------------------------------


def test_unexpected_exception_is_a_500_problem_with_a_reference(api, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals: /srv/db password=hunter2")

    monkeypatch.setattr("adapters.views.adapters_for_list", explode)
    response = api.get("/api/v1/adapters")
    body = problem(response, 500)
    assert set(body) == PROBLEM_KEYS
    assert body["type"] == "urn:loraforge:problem:internal-error"
    assert body["title"] == "Internal server error"
    assert body["instance"] == "/api/v1/adapters"
    assert REFERENCE.match(body["detail"]), body["detail"]
    text = response.content.decode()
    assert "Traceback" not in text
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    reference = re.search(r"[0-9a-f]{12}", body["detail"]).group(0)
    logged = [record for record in caplog.records if reference in record.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


def test_each_500_gets_its_own_reference(api, monkeypatch):
    monkeypatch.setattr("adapters.views.tag_counts", lambda: 1 / 0)
    first = api.get("/api/v1/adapters/tags").json()["detail"]
    second = api.get("/api/v1/adapters/tags").json()["detail"]
    assert REFERENCE.match(first)
    assert first != second


def test_crash_outside_drf_is_a_500_problem_too(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("loraforge.views.JsonResponse", explode)
    response = Client(raise_request_exception=False).get("/api/health")
    body = problem(response, 500)
    assert body["instance"] == "/api/health"
    assert REFERENCE.match(body["detail"])
    assert b"Traceback" not in response.content


def _documented_paths() -> list[str]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    sample_id = "3f2b6c1e-8d4a-4f0b-9c2e-5a7d1e9b0c11"
    return sorted(path.replace("{id}", sample_id) for path in schema["paths"])


@pytest.mark.django_db
def test_options_answers_on_every_documented_path(api):
    """DRF's OPTIONS metadata asks each action for its object; a list action without an id must not 500."""
    paths = _documented_paths()
    assert "/api/v1/generation/results/bulk-favorite" in paths
    for path in paths:
        response = api.options(path)
        assert response.status_code in (200, 404), (path, response.status_code, response.content[:200])
        if response.status_code == 404:
            assert response["Content-Type"] == "application/problem+json", path
