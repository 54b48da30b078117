"""The adapter changelist's "Export selected" action (SPEC 9.1): a ZIP of the selected adapters' records and
metadata, without model files."""

from __future__ import annotations

import json
import re

from backups.archive import format as fmt
from tests.backups import library as fixtures
from tests.backups.library import Library, read_archive, verify_members

library, media = fixtures.library, fixtures.media
CHANGELIST = "/admin/adapters/adapter/"


def test_action_is_offered(admin_client, library: Library):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert b'value="export_selected"' in response.content


def test_export_selected_downloads_the_selected_adapters(admin_client, library: Library):
    first, second, _third = library.adapters
    selected = [str(first.pk), str(second.pk)]
    response = admin_client.post(CHANGELIST, {"action": "export_selected", "_selected_action": selected})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert re.fullmatch(r'attachment; filename="loraforge_export_\d{8}_\d{6}\.zip"', response["Content-Disposition"])
    archive, manifest = read_archive(b"".join(response.streaming_content))
    verify_members(archive, manifest)
    exported = {name.split("/")[1] for name in archive.namelist() if name.startswith("adapters/")}
    assert exported == set(selected)
    assert not [name for name in archive.namelist() if "/files/" in name]
    record = json.loads(archive.read(fmt.adapter_record_member(first.pk)))
    assert record["file_member"] is None
    assert record["sidecar_members"]
    assert record["preview_member"]
    assert manifest["counts"]["adapters"] == 2


def test_export_selected_across_every_adapter(admin_client, library: Library):
    response = admin_client.post(
        CHANGELIST,
        {"action": "export_selected", "_selected_action": [str(library.adapters[0].pk)], "select_across": "1"},
    )
    _archive, manifest = read_archive(b"".join(response.streaming_content))
    assert manifest["counts"]["adapters"] == 3
    assert manifest["options"]["adapter_ids"] is None
