"""Each recommendations test starts with no index and no loaded model in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_recommender() -> Iterator[None]:
    from recommendations.encoder import encoder_reset
    from recommendations.index import index_reset

    index_reset()
    encoder_reset()
    yield
    index_reset()
    encoder_reset()
