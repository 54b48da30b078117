"""Lifting exclusions when an adapter is created (SPEC 6.6.6): the row of its path and every row of its content hash,
nothing else; without a hash, the path's row only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from adapters.models import ScannedFile
from adapters.scanner.cache import clear_exclusions

pytestmark = pytest.mark.django_db
HASH = "ab" * 32


@pytest.fixture
def rows() -> dict[str, ScannedFile]:
    now = timezone.now()
    specs = {
        "same path": ("/srv/loras/new.safetensors", None, True),
        "same hash": ("/srv/loras/copy.safetensors", HASH, True),
        "other": ("/srv/loras/other.safetensors", "cd" * 32, True),
        "kept in": ("/srv/loras/in.safetensors", HASH, False),
    }
    return {
        label: ScannedFile.objects.create(path=path, sha256=sha, excluded=out, size=1, mtime_ns=1, last_seen_at=now)
        for label, (path, sha, out) in specs.items()
    }


def excluded(rows: dict[str, ScannedFile]) -> set[str]:
    return {label for label, row in rows.items() if ScannedFile.objects.get(pk=row.pk).excluded}


def test_the_path_and_every_copy_of_the_content_are_lifted(rows):
    clear_exclusions(path="/srv/loras/new.safetensors", sha256=HASH)
    assert excluded(rows) == {"other"}


def test_without_a_hash_only_the_path_is_lifted(rows):
    clear_exclusions(path="/srv/loras/new.safetensors", sha256=None)
    assert excluded(rows) == {"same hash", "other"}


def test_a_path_never_seen_lifts_nothing_but_its_hash(rows):
    clear_exclusions(path="/srv/loras/unknown.safetensors", sha256="cd" * 32)
    assert excluded(rows) == {"same path", "same hash"}
