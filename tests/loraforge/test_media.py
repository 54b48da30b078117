"""``GET /media/<path>`` (SPEC 5.12, 4.2, 4.4): authenticated, safe paths only, problem details."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NAME = "generations/2025/03/01/job/000.png"


@pytest.fixture
def media_root(tmp_path: Path, settings) -> Path:
    root = tmp_path / "media"
    (root / "generations/2025/03/01/job").mkdir(parents=True)
    (root / NAME).write_bytes(PNG)
    (root / "generations/2025/03/01/job/001.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 10)
    settings.MEDIA_ROOT = root
    return root


def problem(response, status: int) -> dict:
    assert response.status_code == status, response
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def test_serves_a_file_with_type_length_and_caching(api, media_root):
    response = api.get(f"/media/{NAME}")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(PNG))
    assert response["Cache-Control"] == "private, max-age=86400"
    assert b"".join(response.streaming_content) == PNG


def test_content_type_follows_the_extension(api, media_root):
    assert api.get("/media/generations/2025/03/01/job/001.jpg")["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("accept", ["image/png", "image/avif,image/webp,*/*;q=0.8", "text/html", "application/json"])
def test_any_accept_header_gets_the_file(api, media_root, accept):
    assert api.get(f"/media/{NAME}", HTTP_ACCEPT=accept).status_code == 200


def test_head_has_the_headers(api, media_root):
    response = api.head(f"/media/{NAME}")

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(PNG))


def test_anonymous_is_401_problem(anon, media_root):
    body = problem(anon.get(f"/media/{NAME}"), 401)

    assert body["detail"] == "Authentication required"
    assert body["instance"] == f"/media/{NAME}"


def test_invalid_key_is_401(media_root):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="not-a-key")

    assert problem(client.get(f"/media/{NAME}"), 401)["detail"] == "Invalid API key"


def test_read_only_key_and_staff_session_may_read(read_only_key, media_root, django_user_model):
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=read_only_key)
    staff = APIClient()
    staff.force_login(django_user_model.objects.create_user("curator", password="pw", is_staff=True))

    assert reader.get(f"/media/{NAME}").status_code == 200
    assert staff.get(f"/media/{NAME}").status_code == 200


def test_non_staff_session_is_403(media_root, django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))

    assert problem(client.get(f"/media/{NAME}"), 403)["detail"] == "Staff access required"


@pytest.mark.parametrize("setting", ["LORAFORGE_MEDIA_PUBLIC", "LORAFORGE_AUTH"])
def test_public_media_or_auth_off_opens_it(anon, media_root, settings, setting):
    setattr(settings, setting, setting == "LORAFORGE_MEDIA_PUBLIC")

    assert anon.get(f"/media/{NAME}").status_code == 200


def test_public_media_ignores_a_bad_key(media_root, settings):
    settings.LORAFORGE_MEDIA_PUBLIC = True
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="not-a-key")

    assert client.get(f"/media/{NAME}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "generations/missing.png",
        "generations",
        "",
        "../secret.txt",
        "generations/../../secret.txt",
        "generations/..%2F..%2Fsecret.txt",
        "%2e%2e/secret.txt",
        "generations%5C..%5C..%5Csecret.txt",
        "generations/a%00.png",
        "link/secret.txt",
        "escape.txt",
    ],
)
def test_unsafe_or_missing_paths_are_404_problems(api, media_root, path):
    (media_root.parent / "secret.txt").write_text("TOP-SECRET-CONTENT")
    (media_root / "link").symlink_to(media_root.parent)
    (media_root / "escape.txt").symlink_to(media_root.parent / "secret.txt")

    response = api.get(f"/media/{path}")

    body = problem(response, 404)
    assert body["type"] == "urn:loraforge:problem:not-found"
    assert b"TOP-SECRET-CONTENT" not in response.content


def test_a_symlink_inside_the_root_is_served(api, media_root):
    (media_root / "alias.png").symlink_to(media_root / NAME)

    assert api.get("/media/alias.png").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_405(api, media_root, method):
    response = getattr(api, method)(f"/media/{NAME}")

    assert problem(response, 405)["type"] == "urn:loraforge:problem:method-not-allowed"
    assert "GET" in response["Allow"]
    assert (media_root / NAME).exists()


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_file_is_streamed_in_chunks(api_key, tmp_path, settings, monkeypatch):
    """Django reads a synchronous iterator whole under ASGI; the media view streams chunk by chunk. The HTTP pool
    collects a response of up to ``BUFFER_MAX_BYTES`` and sends it in one message; past that, every chunk goes as
    its own message (``loraforge.wsgi_pool``), so a large file is never held whole."""
    from loraforge import media_views
    from loraforge.asgi import application
    from loraforge.wsgi_pool import BUFFER_MAX_BYTES

    monkeypatch.setattr(media_views, "CHUNK_SIZE", 64 * 1024)
    settings.MEDIA_ROOT = tmp_path
    data = os.urandom(BUFFER_MAX_BYTES + 10_000)  # 4 full chunks and one of 10,000 bytes
    (tmp_path / "big.png").write_bytes(data)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/media/big.png",
        "raw_path": b"/media/big.png",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"x-api-key", api_key.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def fetch() -> tuple[dict, list[bytes]]:
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(20)
        bodies = []
        while True:
            message = await communicator.receive_output(20)
            bodies.append(message.get("body", b""))
            if not message.get("more_body"):
                await communicator.wait(20)  # the application closes the response (and its connection)
                return start, bodies

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, bodies = async_to_sync(fetch)()

    assert start["status"] == 200, (start, bodies)
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    assert (headers["content-type"], headers["content-length"]) == ("image/png", str(len(data)))
    assert b"".join(bodies) == data
    assert [len(body) for body in bodies if body] == [64 * 1024] * 4 + [10_000]
    assert not [warning for warning in caught if "synchronous iterators" in str(warning.message)]
