"""``GET /adapters/{id}/preview`` (SPEC 5.2): the image bytes, never a file outside the LoRA folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def preview_url(adapter) -> str:
    return f"/api/v1/adapters/{adapter.pk}/preview"


def write(path: Path, data: bytes = PNG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_no_preview(response) -> None:
    assert response.status_code == 404, response
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "Adapter has no preview"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("ink.preview.png", "image/png"),
        ("ink.jpg", "image/jpeg"),
        ("ink.jpeg", "image/jpeg"),
        ("ink.webp", "image/webp"),
    ],
)
def test_preview_is_served_with_its_content_type(api, lora_dir, name, content_type):
    adapter = AdapterFactory(preview_path=str(write(lora_dir / "anime" / name)))
    response = api.get(preview_url(adapter))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Cache-Control"] == "private, max-age=300"
    assert content(response) == PNG


def test_preview_answers_an_image_accept_header(api, lora_dir):
    adapter = AdapterFactory(preview_path=str(write(lora_dir / "ink.png")))
    response = api.get(preview_url(adapter), HTTP_ACCEPT="image/avif,image/webp,image/*,*/*;q=0.8")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert api.get(preview_url(adapter), HTTP_ACCEPT="image/png").status_code == 200


def test_adapter_without_preview_is_404(api, lora_dir):
    assert_no_preview(api.get(preview_url(AdapterFactory(preview_path=None))))


def test_vanished_preview_is_404(api, lora_dir):
    path = write(lora_dir / "ink.png")
    adapter = AdapterFactory(preview_path=str(path))
    path.unlink()
    assert_no_preview(api.get(preview_url(adapter)))


def test_preview_outside_the_lora_folders_is_never_served(api, lora_dir, tmp_path):
    outside = write(tmp_path / "secret.png")
    assert_no_preview(api.get(preview_url(AdapterFactory(preview_path=str(outside)))))
    traversal = f"{lora_dir}/../secret.png"
    assert_no_preview(api.get(preview_url(AdapterFactory(preview_path=traversal))))


def test_symlink_escaping_the_lora_folder_is_not_served(api, lora_dir, tmp_path):
    outside = write(tmp_path / "secret.png")
    (lora_dir / "link.png").symlink_to(outside)
    assert_no_preview(api.get(preview_url(AdapterFactory(preview_path=str(lora_dir / "link.png")))))


def test_a_preview_path_naming_a_non_image_is_not_served(api, lora_dir):
    sidecar = write(lora_dir / "ink.civitai.info", b'{"secret": true}')
    assert_no_preview(api.get(preview_url(AdapterFactory(preview_path=str(sidecar)))))


def test_a_folder_is_not_a_preview(api, lora_dir):
    (lora_dir / "folder.png").mkdir()
    assert_no_preview(api.get(preview_url(AdapterFactory(preview_path=str(lora_dir / "folder.png")))))


@pytest.mark.parametrize("adapter_id", ["00000000-0000-4000-8000-000000000000", "nope"])
def test_unknown_adapter_is_404(api, adapter_id):
    response = api.get(f"/api/v1/adapters/{adapter_id}/preview")
    assert response.status_code == 404
    assert response.json()["detail"] == "Adapter not found"


def test_preview_needs_authentication_but_a_read_only_key_may_read(lora_dir, read_only_key):
    adapter = AdapterFactory(preview_path=str(write(lora_dir / "ink.png")))
    response = APIClient().get(preview_url(adapter))
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=read_only_key)
    assert reader.get(preview_url(adapter)).status_code == 200


def test_staff_session_may_load_the_preview(lora_dir, django_user_model):
    adapter = AdapterFactory(preview_path=str(write(lora_dir / "ink.png")))
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("curator", password="pw", is_staff=True))
    assert client.get(preview_url(adapter)).status_code == 200  # the admin's thumbnails
