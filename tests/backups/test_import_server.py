"""``POST /import`` through the real server (uvicorn, as deployed): the upload limit from ``Content-Length`` before
reading and, for a chunked body without one, while streaming; nothing of a refused upload stays on disk."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from loraforge.api_keys import api_key_create
from tests.processes import ProcessSet, server_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
LIMIT_MB = 1


def multipart(file_data: bytes, *, name: str = "a.zip") -> tuple[bytes, bytes, str]:
    """(head, tail, content type) of a one-file multipart body; the file's bytes go between."""
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, f"multipart/form-data; boundary={boundary}"


def chunked(head: bytes, data: bytes, tail: bytes) -> Iterator[bytes]:
    """A generator body: requests sends it with ``Transfer-Encoding: chunked`` and no ``Content-Length``."""
    yield head
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]
    yield tail


def stored_uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "data" / "uploads"
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


@pytest.fixture
def server(tmp_path):
    key = api_key_create(name="import-server").plain_key
    env = server_env(tmp_path, LORAFORGE_MAX_UPLOAD_MB=str(LIMIT_MB), LORAFORGE_EMBEDDED_WORKER="off")
    with ProcessSet(tmp_path / "logs") as procs:
        _web, base_url = procs.start_web(env)
        yield base_url, {"X-API-Key": key}


def test_through_the_real_server(server, tmp_path):
    base_url, headers = server
    url = f"{base_url}/api/v1/import"

    # A chunked body within the limit is streamed to disk and imported (here: refused as not a ZIP).
    head, tail, content_type = multipart(b"not a zip archive")
    response = requests.post(
        url, data=chunked(head, b"not a zip archive", tail), headers={**headers, "Content-Type": content_type},
        timeout=60,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"file": "a.zip", "status": "error", "detail": "Not a ZIP archive", "errors": ["Not a ZIP archive"]}
    ]

    # A chunked body past the limit: 413 while streaming, what was stored removed.
    big = b"\0" * (LIMIT_MB * MiB + MiB // 2)
    head, tail, content_type = multipart(big)
    response = requests.post(
        url, data=chunked(head, big, tail), headers={**headers, "Content-Type": content_type}, timeout=60
    )
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == f"Upload too large (limit {LIMIT_MB} MB)"
    assert stored_uploads(tmp_path) == []

    # A declared Content-Length past the limit: 413 before reading.
    response = requests.post(url, data=head + big + tail, headers={**headers, "Content-Type": content_type}, timeout=60)
    assert response.status_code == 413
    assert response.json()["detail"] == f"Upload too large (limit {LIMIT_MB} MB)"
    assert stored_uploads(tmp_path) == []
