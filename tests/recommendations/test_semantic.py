"""Semantic content with the real packaged sentence-embedding model on the CPU (SPEC 6.7.1): current vectors
join the lexical similarity, paraphrases are found without shared words, stale vectors are ignored, and the model
switched off leaves lexical recommendations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recommendations.services.embeddings import embeddings_compute
from recommendations.weights import weights_in_force
from tests.factories import AdapterFactory

pytestmark = [pytest.mark.semantic, pytest.mark.django_db]
BASE = "/api/v1/recommendations"


@pytest.fixture(autouse=True)
def _on_the_cpu(settings) -> None:
    settings.LORAFORGE_EMBEDDING_DEVICE = "cpu"


@pytest.fixture
def library():
    """A target, its paraphrase (no word in common) and an unrelated adapter, with current vectors."""
    target = AdapterFactory(name="Feline Nap", sdnext_name="feline_nap", description="kitten dozing on couch")
    paraphrase = AdapterFactory(
        name="Sleepy Cat", sdnext_name="sleepy_cat", description="tired pet resting upon sofa"
    )  # fmt: skip
    unrelated = AdapterFactory(
        name="Steel Warship", sdnext_name="steel_warship", description="battle cruiser firing cannons"
    )  # fmt: skip
    report = embeddings_compute(adapter_ids=[target.pk, paraphrase.pk, unrelated.pk])
    assert (report.processed_count, report.error_count) == (3, 0)
    return target, paraphrase, unrelated


def similar(api, target, **query: Any) -> dict[str, Any]:
    response = api.get(f"{BASE}/similar/{target.pk}", {"similarity_threshold": 0, **query})
    assert response.status_code == 200, response.content
    return response.json()


def for_prompt(api, prompt: str) -> dict[str, Any]:
    response = api.post(f"{BASE}/for-prompt", data=json.dumps({"prompt": prompt}), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def item_of(body: dict[str, Any], adapter) -> dict[str, Any]:
    [found] = [item for item in body["recommendations"] if item["lora_id"] == str(adapter.pk)]
    return found


def test_current_vectors_give_a_semantic_similarity(api, library):
    target, paraphrase, _ = library
    body = similar(api, target)
    assert body["recommendation_config"]["semantic_enabled"] is True
    assert all(item["semantic_similarity"] is not None for item in body["recommendations"])
    assert 0 < item_of(body, paraphrase)["semantic_similarity"] <= 1


def test_content_is_the_weighted_mix_of_semantic_and_lexical(api, library):
    target, paraphrase, _ = library
    semantic, lexical = weights_in_force().content_pair()
    item = item_of(similar(api, target), paraphrase)
    expected = semantic * item["semantic_similarity"] + lexical * item["lexical_similarity"]
    assert item["similarity_score"] == pytest.approx(expected, abs=2e-4)


def test_the_reported_pair_is_the_weights_in_force(api, library):
    semantic, lexical = weights_in_force().content_pair()
    weights = similar(api, library[0])["recommendation_config"]["weights"]
    assert weights == {"semantic": pytest.approx(semantic, abs=1e-4), "lexical": pytest.approx(lexical, abs=1e-4)}


def test_a_paraphrase_ranks_above_an_unrelated_adapter_in_similar(api, library):
    target, paraphrase, unrelated = library
    ranked = [item["lora_id"] for item in similar(api, target, diversify_results="false")["recommendations"]]
    assert ranked.index(str(paraphrase.pk)) < ranked.index(str(unrelated.pk))
    assert item_of(similar(api, target), paraphrase)["lexical_similarity"] < 0.2


def test_a_paraphrase_ranks_above_an_unrelated_adapter_for_a_prompt(api, library):
    _, paraphrase, unrelated = library
    body = for_prompt(api, "drowsy housecat snoozing")
    ranked = [item["lora_id"] for item in body["recommendations"]]
    assert ranked.index(str(paraphrase.pk)) < ranked.index(str(unrelated.pk))
    assert item_of(body, paraphrase)["semantic_similarity"] > item_of(body, unrelated)["semantic_similarity"]


def test_a_stale_vector_is_ignored(api, library):
    target, paraphrase, _ = library
    body = {"description": "a tired pet resting upon a sofa, now in watercolor"}
    response = api.patch(f"/api/v1/adapters/{paraphrase.pk}", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    item = item_of(similar(api, target), paraphrase)
    assert item["semantic_similarity"] is None
    assert item["similarity_score"] == item["lexical_similarity"]


def test_a_recomputed_vector_is_used_again(api, library):
    target, paraphrase, _ = library
    body = {"description": "a tired pet resting upon a sofa, now in watercolor"}
    api.patch(f"/api/v1/adapters/{paraphrase.pk}", data=json.dumps(body), content_type="application/json")
    embeddings_compute(adapter_ids=[paraphrase.pk])
    assert item_of(similar(api, target), paraphrase)["semantic_similarity"] is not None


def test_the_embedding_status_of_a_computed_adapter_is_current(api, library):
    body = api.get(f"{BASE}/embeddings/{library[0].pk}").json()
    assert (body["has_semantic_embedding"], body["needs_recomputation"], body["dim"]) == (True, False, 384)
    assert body["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_stats_report_the_coverage_of_current_vectors(api, library):
    AdapterFactory(name="Without Vector")
    body = api.get(f"{BASE}/stats").json()
    assert (body["loras_with_embeddings"], body["embedding_coverage"], body["semantic_available"]) == (3, 0.75, True)


def test_with_the_model_off_recommendations_are_lexical_only(api, library, settings):
    settings.LORAFORGE_EMBEDDING_MODEL = "off"
    target, paraphrase, _ = library
    body = similar(api, target)
    assert body["recommendation_config"]["semantic_enabled"] is False
    assert body["recommendation_config"]["embedding_model"] is None
    item = item_of(body, paraphrase)
    assert item["semantic_similarity"] is None
    assert item["similarity_score"] == item["lexical_similarity"]


def test_with_the_model_off_the_stats_say_semantic_is_unavailable(api, library, settings):
    settings.LORAFORGE_EMBEDDING_MODEL = "off"
    body = api.get(f"{BASE}/stats").json()
    assert (body["semantic_available"], body["embedding_model"], body["loras_with_embeddings"]) == (False, None, 0)
