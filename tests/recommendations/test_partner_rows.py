"""works-well-with computes content for the target's partners only (``recommend._partner_scores``): the lexical side
from those rows (``LexicalIndex.rows_similarity``) and the semantic side from the blocks that hold them
(``SemanticMatrix.similarity_at``), each value exactly as over every row, so it answers exactly as before; a target
used with no adapter costs no product."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recommendations.index import index_current
from recommendations.lexical import LexicalIndex
from recommendations.services import recommend
from recommendations.vectors import SIMILARITY_BLOCK, SemanticMatrix
from tests.recommendations.test_algorithms import job
from tests.recommendations.test_family_runs import mixed_catalogue, product
from tests.recommendations.test_index_follow import store_vectors


def test_similarity_at_rows_is_the_whole_product_at_those_rows():
    rng = np.random.default_rng(7)
    size = 2 * SIMILARITY_BLOCK + 500
    matrix = rng.standard_normal((size, 24)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    semantic = SemanticMatrix(matrix=matrix, has=np.ones(size, dtype=bool), dim=24)
    rows = np.sort(rng.choice(size, size=300, replace=False))
    for target in (0, 77, size - 1):
        whole = semantic.similarity(matrix[target])
        assert np.array_equal(semantic.similarity_at(matrix[target], rows), whole[rows])  # bit for bit
        few = rows[rows < SIMILARITY_BLOCK][:5]  # within one block: only that block is computed
        assert np.array_equal(semantic.similarity_at(matrix[target], few), whole[few])


@pytest.mark.django_db
def test_rows_similarity_is_the_whole_row_at_those_rows(monkeypatch):
    mixed_catalogue(60)
    index = index_current(semantic=False)
    lexical = index.lexical
    rows = np.array([1, 4, 9, 30, 59])
    whole = product(index, 3)
    computed: list[int] = []  # the rows of each product
    original = LexicalIndex.blocks_similarity

    def spy(self: LexicalIndex, blocks: Any, row: int, scratch: Any) -> Any:
        computed.append(sum(block.word.shape[0] for block in blocks))
        return original(self, blocks, row, scratch)

    monkeypatch.setattr(LexicalIndex, "blocks_similarity", spy)
    assert np.array_equal(lexical.rows_similarity(3, rows), whole[rows])  # bit for bit, from the five rows
    assert computed == [5]
    kept = lexical.row_similarity(3)
    assert np.array_equal(lexical.rows_similarity(3, rows), whole[rows])  # from the kept row
    assert computed == [5, 60]  # the whole row once, for row_similarity
    many = np.arange(0, 60, 2)  # more than a quarter of the rows: the whole row, kept
    assert np.array_equal(lexical.rows_similarity(7, many), product(index, 7)[many])
    assert lexical.row_similarity(7) is not kept


@pytest.fixture
def used_catalogue() -> list[Any]:
    adapters = mixed_catalogue(40)
    store_vectors(adapters[:34])
    for first in range(0, 30, 2):  # each of the first 30 is used
        job(adapters[first], adapters[first + 1])
    rng = np.random.default_rng(11)
    for _ in range(60):
        job(*[adapters[int(i)] for i in rng.choice(30, size=int(rng.integers(2, 5)), replace=False)])
    return adapters


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [3, 50])
def test_works_well_with_answers_as_with_every_row_computed(monkeypatch, used_catalogue, limit):
    ours = [recommend.recommend_works_well_with(adapter=a, limit=limit, record=False) for a in used_catalogue]
    monkeypatch.setattr(recommend, "_partner_scores", recommend._target_scores)  # before: every row computed
    index_current(force=True)  # no row kept from the asks above
    theirs = [recommend.recommend_works_well_with(adapter=a, limit=limit, record=False) for a in used_catalogue]
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine["recommendations"] == reference["recommendations"]
        assert mine["total_candidates"] == reference["total_candidates"]
        assert mine["recommendation_config"] == reference["recommendation_config"]
    assert sum(bool(answer["recommendations"]) for answer in ours) == 30  # the 30 used adapters
    assert any(item["similarity_score"] > 0 for answer in ours for item in answer["recommendations"])


@pytest.mark.django_db
def test_a_target_used_with_no_adapter_costs_no_product(monkeypatch, used_catalogue):
    index_current()

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no product for a target without partners")

    for name in ("row_similarity", "rows_similarity", "block_similarity"):
        monkeypatch.setattr(LexicalIndex, name, refused)
    monkeypatch.setattr(SemanticMatrix, "similarity_at", refused)
    monkeypatch.setattr(SemanticMatrix, "similarity", refused)
    answer = recommend.recommend_works_well_with(adapter=used_catalogue[35], record=False)
    assert answer["recommendations"] == []
