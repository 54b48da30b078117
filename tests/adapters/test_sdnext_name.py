"""One ``sdnext_name`` rule (SPEC 5.2, 6.1): the API refuses exactly the names composition cannot print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.composition import prompt_compose
from adapters.models import Adapter
from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

pytestmark = pytest.mark.django_db
URL = "/api/v1/adapters"
SDNEXT_NAME_ERROR = "sdnext_name must not contain ':', '<', '>', line breaks or start with '/'"
# Everything composition skips inside a name: the tag delimiters and every line break str.splitlines knows.
UNPRINTABLE = [":", "<", ">", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
UNICODE_SPACES = [0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000, 0xFEFF]
CANDIDATES = [chr(code) for code in (*range(0x100), *UNICODE_SPACES, 0x2028, 0x2029)]


def post(api, body):
    return api.post(URL, data=json.dumps(body), content_type="application/json")


def patch(api, adapter, body):
    return api.patch(f"{URL}/{adapter.pk}", data=json.dumps(body), content_type="application/json")


def composed_tokens(adapter):
    result = prompt_compose(adapter_ids=[adapter.pk])
    return result.tokens, result.warnings


@pytest.mark.parametrize("character", UNPRINTABLE, ids=ascii)
def test_create_refuses_a_name_composition_cannot_print(api, lora_dir: Path, character):
    path = write_safetensors(lora_dir / "a.safetensors")
    response = post(api, {"name": "A", "file_path": str(path), "sdnext_name": f"a{character}b"})
    assert response.status_code == 400, response.json()
    assert response.json()["errors"]["sdnext_name"] == [SDNEXT_NAME_ERROR]
    assert not Adapter.objects.exists()


@pytest.mark.parametrize("character", UNPRINTABLE, ids=ascii)
def test_patch_refuses_a_name_composition_cannot_print(api, character):
    adapter = AdapterFactory(sdnext_name="kept")
    response = patch(api, adapter, {"sdnext_name": f"a{character}b"})
    assert response.status_code == 400, response.json()
    assert response.json()["errors"]["sdnext_name"] == [SDNEXT_NAME_ERROR]
    adapter.refresh_from_db()
    assert adapter.sdnext_name == "kept"


def test_every_name_the_api_accepts_composes(api):
    adapter = AdapterFactory(sdnext_name="start", weight=1.0)
    accepted = 0
    for character in CANDIDATES:
        for name in (f"a{character}b", f"{character}b"):
            response = patch(api, adapter, {"sdnext_name": name})
            if response.status_code != 200:
                continue
            accepted += 1
            stored = response.json()["adapter"]["sdnext_name"]
            assert composed_tokens(adapter) == ([f"<lora:{stored}:1>"], []), ascii(name)
    assert accepted > len(CANDIDATES)


def test_an_imported_name_with_a_leading_slash_is_skipped_at_compose_time():
    adapter = AdapterFactory(name="Absolute", sdnext_name="/abs/name")
    tokens, warnings = composed_tokens(adapter)
    assert tokens == []
    assert warnings == [
        "No adapters found for composition",
        "Skipped adapters whose sdnext_name contains reserved characters: Absolute",
    ]
