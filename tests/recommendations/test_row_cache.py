"""The lexical rows ``similar`` computed are kept with the index that computed them (``LexicalIndex.row_similarity``):
asked again, a target costs no product; a kept row is exactly what the product gives; a write makes a new index, so a
row kept before it is never served after it; the cache holds the rows used last, within ``ROW_CACHE_BYTES``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recommendations import index as index_module
from recommendations import lexical as lexical_module
from recommendations.index import index_current
from recommendations.lexical import RowBlock, _RowCache
from tests.factories import AdapterFactory

BASE = "/api/v1/recommendations"
WORDS = ["harbour", "castle", "forest", "knight", "garden", "robot", "lantern", "meadow"]


def catalogue(count: int = 12) -> list[Any]:
    return [
        AdapterFactory(
            name=f"{WORDS[n % len(WORDS)].title()} Study {n}",
            description=f"A quiet {WORDS[n % len(WORDS)]} beside a {WORDS[(n + 3) % len(WORDS)]}.",
            tags=[WORDS[n % len(WORDS)]],
        )
        for n in range(count)
    ]


def product(index: Any, row: int) -> np.ndarray:
    lexical = index.lexical
    return lexical.block_similarity(RowBlock(lexical.word, lexical.char), row, lexical.scratch())


def lexical_of(api: Any, target: Any) -> dict[str, float]:
    response = api.get(f"{BASE}/similar/{target.pk}?limit=50&similarity_threshold=0&diversify_results=false")
    assert response.status_code == 200, response.content
    return {item["lora_id"]: item["lexical_similarity"] for item in response.json()["recommendations"]}


@pytest.mark.django_db
def test_a_row_asked_again_is_the_kept_one_and_equals_the_product():
    catalogue()
    index = index_current()
    first = index.lexical.row_similarity(3)
    again = index.lexical.row_similarity(3)
    assert again is first  # no second product
    assert np.array_equal(first, product(index, 3))
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 0.5  # callers share it: read-only


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["refit", "follow"])
def test_similar_asked_again_after_a_write_sees_the_write(api, monkeypatch, mode):
    if mode == "follow":  # the index follows the write instead of refitting
        monkeypatch.setattr(index_module, "EXACT_REFIT_MAX_ADAPTERS", 0)
        monkeypatch.setattr(index_module, "INLINE_REFIT_SHARE", 1.0)
        monkeypatch.setattr(index_module, "_refit_in_background", lambda: None)
    adapters = catalogue()
    target, other = adapters[0], adapters[5]
    before = lexical_of(api, target)
    other.description = target.description  # the same words as the target now
    other.save()
    after = lexical_of(api, target)
    assert after[str(other.pk)] > before[str(other.pk)]
    index = index_current()
    fresh = product(index, index.catalogue.position[str(target.pk)])
    assert after[str(other.pk)] == round(float(fresh[index.catalogue.position[str(other.pk)]]), 4)


def test_the_cache_keeps_the_rows_used_last():
    cache = _RowCache(2)
    rows = {row: np.full(3, float(row)) for row in range(4)}
    cache.put((1, None), rows[1])
    cache.put((2, None), rows[2])
    assert cache.get((1, None)) is rows[1]  # 1 is now the row used last
    cache.put((3, None), rows[3])
    assert cache.get((2, None)) is None
    assert cache.get((1, None)) is rows[1]
    assert cache.get((3, None)) is rows[3]
    assert cache.get((4, None), (3, None)) is rows[3]  # the first key that has values


@pytest.mark.django_db
def test_the_cache_holds_what_its_bytes_allow(monkeypatch):
    catalogue(12)
    monkeypatch.setattr(lexical_module, "ROW_CACHE_BYTES", 3 * 8 * 12)  # three rows of 12 float64
    index = index_current(force=True)
    kept = [index.lexical.row_similarity(row) for row in range(4)]
    assert index.lexical.row_similarity(0) is not kept[0]  # the oldest of four was dropped
    assert index.lexical.row_similarity(3) is kept[3]
