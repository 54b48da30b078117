"""Fixtures of the generation tests: an empty health cache per test."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_health_cache() -> None:
    """The locmem cache outlives a test's rolled-back rows; health entries are keyed by backend id."""
    cache.clear()
