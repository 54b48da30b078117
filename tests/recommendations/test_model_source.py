"""``model_source``: where the embedding model is loaded from, resolved without importing anything heavy, and reused
for ``SOURCE_SECONDS`` (every adapter write asks for it), so a model folder that appears later is seen without a
restart."""

from __future__ import annotations

import pytest

from recommendations import encoder as encoder_module
from recommendations.encoder import DISABLED, model_source


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(encoder_module.time, "monotonic", lambda: now[0])
    return now


def test_a_local_folder_is_used_as_it_is(settings, tmp_path, clock):
    settings.LORAFORGE_EMBEDDING_MODEL = str(tmp_path)
    assert model_source() == (str(tmp_path), None)


def test_off_disables(settings, clock):
    settings.LORAFORGE_EMBEDDING_MODEL = "off"
    assert model_source() == (None, DISABLED)


def test_a_folder_that_appears_is_seen_once_the_answer_expires(settings, tmp_path, clock):
    folder = tmp_path / "model"
    settings.LORAFORGE_EMBEDDING_MODEL = str(folder)
    assert model_source() == (None, f"Model folder not found: {folder}")
    folder.mkdir()
    clock[0] += encoder_module.SOURCE_SECONDS - 1
    assert model_source()[0] is None  # reused: no lookup
    clock[0] += 2
    assert model_source() == (str(folder), None)


def test_the_answer_is_reused_without_searching_again(settings, tmp_path, clock, monkeypatch):
    settings.LORAFORGE_EMBEDDING_MODEL = str(tmp_path)
    model_source()
    lookups: list[str] = []
    monkeypatch.setattr(encoder_module, "_resolve_source", lambda name: lookups.append(name) or (None, "x"))
    assert model_source() == (str(tmp_path), None)
    assert lookups == []
    encoder_module.encoder_reset()  # a changed setting forgets it
    assert model_source() == (None, "x")
    assert lookups == [str(tmp_path)]
