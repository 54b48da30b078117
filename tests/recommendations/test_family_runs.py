"""``similar`` with ``same_base_only`` (the default) computes the lexical and semantic products over the target's base
family only:
the snapshot groups rows by family, so a family is one run of rows (plus the unknown/other families, never filtered
out), and each row in the runs is computed exactly as over every row. What it answers must not change."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recommendations import engine
from recommendations import index as index_module
from recommendations.catalogue import catalogue_load, catalogue_update
from recommendations.index import index_current
from recommendations.lexical import RowBlock
from recommendations.services.recommend import recommend_similar
from recommendations.vectors import SIMILARITY_BLOCK, SemanticMatrix
from tests.factories import AdapterFactory
from tests.recommendations.test_index_follow import store_vectors

FAMILIES = ["sdxl", "sd1", "flux1", "sdxl", "unknown", "sdxl", "other", "sd1"]
STYLES = ["watercolor", "ink", "neon", "pastel", "pixel", "oil", "sketch", "noir"]
SUBJECTS = ["harbour", "castle", "forest", "knight", "garden", "robot"]


def mixed_catalogue(count: int = 40) -> list[Any]:
    """Families interleaved (as ids fall) and texts that share words across families."""
    return [
        AdapterFactory(
            name=f"{STYLES[n % len(STYLES)].title()} {SUBJECTS[n % len(SUBJECTS)].title()} {n}",
            description=f"A {STYLES[n % len(STYLES)]} painting of a {SUBJECTS[(n // 2) % len(SUBJECTS)]}.",
            tags=[STYLES[n % len(STYLES)], SUBJECTS[n % len(SUBJECTS)]],
            base_family=FAMILIES[n % len(FAMILIES)],
        )
        for n in range(count)
    ]


def product(index: Any, row: int) -> np.ndarray:
    lexical = index.lexical
    return lexical.block_similarity(RowBlock(lexical.word, lexical.char), row, lexical.scratch())


def families_grouped(families: np.ndarray) -> bool:
    changes = int((families[1:] != families[:-1]).sum())
    return changes == len(set(families.tolist())) - 1


@pytest.mark.django_db
def test_the_snapshot_groups_rows_by_family_and_a_family_is_one_run():
    mixed_catalogue()
    catalogue = catalogue_load()
    assert families_grouped(catalogue.base_family)
    sdxl = catalogue.family_runs("sdxl", ())
    assert len(sdxl) == 1
    start, end = sdxl[0]
    assert set(catalogue.base_family[start:end].tolist()) == {"sdxl"}
    assert end - start == 15
    with_always = catalogue.family_runs("sdxl", engine.KNOWN_FAMILY_EXCLUDED)
    rows = [row for start, end in with_always for row in range(start, end)]
    assert rows == np.flatnonzero(catalogue.family_mask("sdxl", engine.KNOWN_FAMILY_EXCLUDED)).tolist()
    assert len(with_always) <= 3  # sdxl, other and unknown: each one run


@pytest.mark.django_db
def test_a_family_change_moves_the_row_and_the_followed_snapshot_equals_a_fresh_load():
    adapters = mixed_catalogue()
    before = catalogue_load()
    moved = adapters[1]  # sd1 -> sdxl
    moved.base_family = "sdxl"
    moved.save()
    update = catalogue_update(before)
    fresh = catalogue_load()
    assert update.catalogue.ids == fresh.ids
    assert update.catalogue.position == fresh.position
    assert list(update.catalogue.base_family) == list(fresh.base_family)
    assert families_grouped(update.catalogue.base_family)
    assert update.changed == 1
    for row in np.flatnonzero(update.unchanged >= 0):  # every other row copied from its adapter's old row
        assert before.ids[update.unchanged[row]] == update.catalogue.ids[row]


@pytest.mark.django_db
def test_a_followed_index_keeps_rows_and_vectors_together_after_a_family_change(monkeypatch):
    monkeypatch.setattr(index_module, "EXACT_REFIT_MAX_ADAPTERS", 0)  # the index follows the write, no fit
    monkeypatch.setattr(index_module, "INLINE_REFIT_SHARE", 1.0)
    monkeypatch.setattr(index_module, "_refit_in_background", lambda: None)
    adapters = mixed_catalogue()
    fitted = index_current(semantic=False)
    adapters[2].base_family = "sd1"  # flux1 -> sd1
    adapters[2].save()
    followed = index_current(semantic=False)
    assert followed.lexical.word_vectorizer is fitted.lexical.word_vectorizer  # followed, not fitted
    for adapter in adapters:  # each adapter's rows moved with it
        old, new = fitted.catalogue.position[str(adapter.pk)], followed.catalogue.position[str(adapter.pk)]
        assert np.array_equal(followed.lexical.char[new].toarray(), fitted.lexical.char[old].toarray())
        assert np.array_equal(followed.lexical.word[new].toarray(), fitted.lexical.word[old].toarray())


@pytest.mark.django_db
def test_a_row_over_runs_is_the_product_on_those_rows_and_zero_elsewhere():
    mixed_catalogue()
    index = index_current(semantic=False)
    catalogue = index.catalogue
    runs = catalogue.family_runs("sd1", engine.KNOWN_FAMILY_EXCLUDED)
    row = int(np.flatnonzero(catalogue.base_family == "sd1")[0])
    inside = catalogue.family_mask("sd1", engine.KNOWN_FAMILY_EXCLUDED)
    over_runs = index.lexical.row_similarity(row, runs)
    whole = product(index, row)
    assert np.array_equal(over_runs[inside], whole[inside])  # bit for bit
    assert not over_runs[~inside].any()
    assert whole[~inside].any()  # the rows left out would have had values
    assert index.lexical.row_similarity(row, runs) is over_runs  # kept
    kept_whole = index.lexical.row_similarity(row)
    assert kept_whole is not over_runs  # a row over runs never serves a question about every row
    assert np.array_equal(kept_whole, whole)
    other = int(np.flatnonzero(catalogue.base_family == "sdxl")[0])
    whole_other = index.lexical.row_similarity(other)
    assert index.lexical.row_similarity(other, runs) is whole_other  # a row kept whole serves any runs


def test_a_semantic_similarity_over_runs_is_the_product_on_those_rows_and_zero_elsewhere():
    """BLAS computes a slice's last rows with another kernel, so a product over the runs' slices alone would differ
    in the last bit from the product over every row (in a few rows of these runs)."""
    rng = np.random.default_rng(5)
    size = 2 * SIMILARITY_BLOCK + 300
    matrix = rng.standard_normal((size, 32)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    semantic = SemanticMatrix(matrix=matrix, has=np.ones(size, dtype=bool), dim=32)
    runs = ((20, 131), (SIMILARITY_BLOCK - 7, SIMILARITY_BLOCK + 61), (size - 99, size - 98), (size - 45, size))
    inside = np.zeros(size, dtype=bool)
    for start, end in runs:
        inside[start:end] = True
    for row in (0, 20, 130, SIMILARITY_BLOCK, size - 1):
        whole = semantic.similarity(matrix[row])
        over_runs = semantic.similarity(matrix[row], runs)
        assert over_runs.dtype == whole.dtype
        assert np.array_equal(over_runs[inside], whole[inside])  # bit for bit
        assert not over_runs[~inside].any()
        assert whole[~inside].any()  # the rows left out would have had values


@pytest.mark.django_db
@pytest.mark.parametrize("diversify", [True, False])
def test_similar_answers_as_it_would_over_every_row(monkeypatch, diversify):
    adapters = mixed_catalogue()
    store_vectors(adapters[:36])  # both sides, and rows without a vector
    options: dict[str, Any] = {"limit": 12, "similarity_threshold": 0.0, "diversify_results": diversify}
    used: list[Any] = []
    family_runs = engine.family_runs

    def spy(index: Any, family: str | None) -> Any:
        runs = family_runs(index, family)
        used.append(runs)
        return runs

    monkeypatch.setattr(engine, "family_runs", spy)
    restricted = [recommend_similar(adapter=adapter, record=False, **options) for adapter in adapters]
    assert sum(runs is not None for runs in used) == 30  # every target but the 10 of unknown and other
    monkeypatch.setattr(engine, "family_runs", lambda index, family: None)
    index_current(force=True)  # no row kept from the restricted asks
    whole = [recommend_similar(adapter=adapter, record=False, **options) for adapter in adapters]
    assert all(answer["recommendation_config"]["semantic_enabled"] for answer in restricted)
    for ours, theirs in zip(restricted, whole, strict=True):
        assert ours["total_candidates"] == theirs["total_candidates"]
        assert ours["recommendations"] == theirs["recommendations"]
        assert ours["recommendations"]  # something was compared


@pytest.mark.django_db
def test_equal_names_and_scores_are_ordered_by_id_whatever_the_rows_order():
    """Rows are grouped by family, so the row order no longer follows ids: a tie of score and name goes to the id."""
    # The same document for both twins: the factory's numbered SDNext names would make their scores differ.
    text = {"description": "A watercolor harbour at dawn.", "tags": ["watercolor"], "sdnext_name": "twin"}
    target = AdapterFactory(name="Target", base_family="unknown", **{**text, "sdnext_name": "target"})
    later = AdapterFactory(id="ffffffff-ffff-4fff-bfff-ffffffffffff", name="Twin", base_family="flux1", **text)
    earlier = AdapterFactory(id="00000000-0000-4000-8000-000000000001", name="twin", base_family="sdxl", **text)
    index = index_current(semantic=False)
    assert index.catalogue.position[str(later.pk)] < index.catalogue.position[str(earlier.pk)]  # flux1 rows first
    answer = recommend_similar(adapter=target, record=False, diversify_results=False, same_base_only=False)
    ids = [item["lora_id"] for item in answer["recommendations"]]
    assert ids == [str(earlier.pk), str(later.pk)]
    assert answer["recommendations"][0]["final_score"] == answer["recommendations"][1]["final_score"]
