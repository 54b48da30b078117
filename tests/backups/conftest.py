"""Fixtures of the backup tests: a private backups folder, completed backups written by the real service."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def backup_dir(tmp_path: Path, settings) -> Path:
    folder = tmp_path / "backups"
    settings.LORAFORGE_BACKUP_DIR = folder
    return folder


@pytest.fixture
def fast_cancel(monkeypatch) -> None:
    """The job reporter re-reads the row's status at every check (not at most every 0.5 s)."""
    monkeypatch.setattr("loraforge.jobs.reporters.CANCEL_CHECK_INTERVAL", 0.0)
