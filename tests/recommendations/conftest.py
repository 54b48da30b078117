"""Fixtures of the recommendations tests: each test starts without a per-process index, without a held sweep
debounce key and without a remembered model failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from recommendations.encoder import encoder_loaded, encoder_reset
from recommendations.index import index_reset
from recommendations.services.embeddings import _SWEEP_KEY


def _reset() -> None:
    # A loaded model of the configured name is kept (loading it costs a second); a failure or another name is not.
    if encoder_loaded() is None:
        encoder_reset()
    index_reset()
    cache.delete(_SWEEP_KEY)


@pytest.fixture(autouse=True)
def _fresh_recommendation_state() -> Iterator[None]:
    _reset()
    yield
    _reset()


@pytest.fixture
def unavailable_model(settings, tmp_path) -> Iterator[str]:
    """The embedding model set to a folder that does not exist: semantic embeddings are unavailable."""
    missing = str(tmp_path / "no-such-model")
    settings.LORAFORGE_EMBEDDING_MODEL = missing
    encoder_reset()
    yield missing
    encoder_reset()  # the settings fixture restores the model afterwards
