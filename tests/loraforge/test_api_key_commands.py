"""``create_api_key``, ``list_api_keys`` and ``revoke_api_key`` (SPEC 8): streams, exit codes, ``--json``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from loraforge.api_keys import KEY_PATTERN, api_key_create, api_key_revoke, digest
from loraforge.models import ApiKey

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def manage(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The real command line, for exit codes of usage errors (they fail before touching the database)."""
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(data_dir), "LORAFORGE_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


# --- create_api_key -----------------------------------------------------------------------------


def test_create_prints_only_the_key_on_stdout():
    stdout, stderr = run("create_api_key", "--name", "ci")
    key = stdout.strip()
    assert KEY_PATTERN.match(key)
    assert stdout == key + "\n"
    api_key = ApiKey.objects.get()
    assert api_key.key_hash == digest(key)
    assert stderr.strip() == f"Created API key 'ci' ({api_key.prefix}). Store it now; it cannot be shown again."
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert client.get("/api/v1/adapters").status_code == 200


def test_create_read_only_key_with_expiry():
    run("create_api_key", "--name", "reader", "--read-only", "--expires-days", "7")
    api_key = ApiKey.objects.get()
    assert api_key.read_only is True
    assert api_key.expires_at is not None
    assert abs(api_key.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(seconds=5)


@pytest.mark.parametrize("days", ["0", "-3"])
def test_create_rejects_non_positive_expiry(days):
    with pytest.raises(CommandError) as raised:
        run("create_api_key", "--name", "ci", "--expires-days", days)
    assert raised.value.returncode == 1
    assert "--expires-days" in str(raised.value)
    assert not ApiKey.objects.exists()


def test_create_rejects_a_blank_name():
    with pytest.raises(CommandError):
        run("create_api_key", "--name", "  ")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "args",
    [("create_api_key",), ("create_api_key", "--name", "ci", "--expires-days", "soon"), ("revoke_api_key",)],
)
def test_usage_errors_exit_with_1(args, tmp_path):
    result = manage(*args, data_dir=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "error:" in result.stderr


# --- list_api_keys -----------------------------------------------------------------------------


def test_list_table_shows_status_and_never_the_key():
    active = api_key_create(name="active-key", read_only=True)
    expired = api_key_create(name="expired-key", expires_at=timezone.now() - timedelta(minutes=1))
    revoked = api_key_create(name="revoked-key")
    api_key_revoke(api_key=revoked.api_key)
    stdout, _ = run("list_api_keys")
    lines = stdout.splitlines()
    assert lines[0].split() == ["NAME", "PREFIX", "READ-ONLY", "CREATED", "LAST", "USED", "EXPIRES", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["active-key"].split()[-1] == "active"
    assert active.api_key.prefix in rows["active-key"]
    assert " yes " in rows["active-key"]
    assert rows["expired-key"].split()[-1] == "expired"
    assert rows["revoked-key"].split()[-1] == "revoked"
    for created in (active, expired, revoked):
        assert created.plain_key not in stdout
        assert created.api_key.key_hash not in stdout


def test_list_json():
    created = api_key_create(name="ci", expires_at=timezone.now() + timedelta(days=1))
    api_key_create(name="old", expires_at=timezone.now() - timedelta(days=1))
    stdout, _ = run("list_api_keys", "--json")
    records = json.loads(stdout)
    assert [record["name"] for record in records] == ["ci", "old"]
    first = records[0]
    assert set(first) == {
        "id",
        "name",
        "prefix",
        "read_only",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "status",
    }
    assert first["id"] == str(created.api_key.pk)
    assert first["prefix"] == created.api_key.prefix
    assert first["status"] == "active"
    assert first["created_at"].endswith("Z")
    assert first["last_used_at"] is None
    assert records[1]["status"] == "expired"
    assert created.plain_key not in stdout
    assert created.api_key.key_hash not in stdout


def test_list_when_empty():
    assert run("list_api_keys")[0].strip() == "No API keys."
    assert json.loads(run("list_api_keys", "--json")[0]) == []


# --- revoke_api_key ----------------------------------------------------------------------------


def test_revoke_by_prefix_makes_the_key_fail():
    created = api_key_create(name="ci")
    stdout, _ = run("revoke_api_key", created.api_key.prefix)
    assert stdout.strip() == "Revoked API key 'ci'"
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=created.plain_key)
    assert client.get("/api/v1/adapters").status_code == 401


def test_revoke_by_uuid():
    created = api_key_create(name="by-id")
    stdout, _ = run("revoke_api_key", str(created.api_key.pk))
    assert stdout.strip() == "Revoked API key 'by-id'"
    created.api_key.refresh_from_db()
    assert created.api_key.state() == "revoked"


@pytest.mark.parametrize("reference", ["lf_zzzzzzzz", "not-a-key", "8d3c1a52-0b2f-4d47-9a57-1f7a3c2b9e10"])
def test_revoke_unknown_exits_1(reference):
    api_key_create(name="other")
    with pytest.raises(CommandError) as raised:
        run("revoke_api_key", reference)
    assert raised.value.returncode == 1
    assert reference in str(raised.value)
    assert ApiKey.objects.get().revoked_at is None
