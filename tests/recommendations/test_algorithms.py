"""The endpoint algorithms of SPEC 6.7.3 and the feedback and preference terms of 6.7.2, through the API."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from deliveries.models import DeliveryJob
from tests.factories import AdapterFactory, link_adapters

pytestmark = pytest.mark.django_db
BASE = "/api/v1/recommendations"
PUBLISHED = timezone.now() - timedelta(days=30)  # one date for all: recency never breaks a tie
FULLWIDTH = "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "celestial style")  # NFKC folds it back


def adapter(name: str, **fields: Any):
    """An adapter whose document holds its name and the given fields only (sdnext_name from the name unless
    given)."""
    fields.setdefault("sdnext_name", name.lower().replace(" ", "_"))
    return AdapterFactory(name=name, published_at=PUBLISHED, **fields)


def similar(api, target, **query: Any) -> dict[str, Any]:
    response = api.get(f"{BASE}/similar/{target.pk}", query)
    assert response.status_code == 200, response.content
    return response.json()


def for_prompt(api, prompt: str, **body: Any) -> dict[str, Any]:
    response = api.post(
        f"{BASE}/for-prompt", data=json.dumps({"prompt": prompt, **body}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def by_trigger(api, query: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"{BASE}/by-trigger", {"trigger_query": query, **params})
    assert response.status_code == 200, response.content
    return response.json()


def names(body: dict[str, Any]) -> list[str]:
    return [item["lora_name"] for item in body["recommendations"]]


def item_of(body: dict[str, Any], target) -> dict[str, Any]:
    [found] = [item for item in body["recommendations"] if item["lora_id"] == str(target.pk)]
    return found


def job(*adapters, status: str = "succeeded", kind: str = "generation", days_ago: float = 0) -> DeliveryJob:
    row = DeliveryJob.objects.create(kind=kind, mode="sdnext", prompt="p", status=status)
    if days_ago:
        DeliveryJob.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    link_adapters(row, [(a, 1.0) for a in adapters])
    return row


# --- similar ---------------------------------------------------------------------------------------------


def test_similar_drops_items_below_the_threshold(api):
    target = adapter("Crimson Dragon Knight", tags=["dragon"])
    close = adapter("Crimson Dragon Rider", tags=["dragon"])
    far = adapter("Quiet Harbour", tags=["sea"])
    loose = similar(api, target, similarity_threshold=0)
    strict = similar(api, target, similarity_threshold=0.3)
    assert item_of(loose, far)["similarity_score"] < 0.3 <= item_of(loose, close)["similarity_score"]
    assert names(strict) == [close.name]


def test_similar_reports_every_scored_candidate_as_total_candidates(api):
    target = adapter("Crimson Dragon Knight")
    for name in ("Crimson Dragon Rider", "Crimson Dragon Egg", "Quiet Harbour"):
        adapter(name)
    body = similar(api, target, limit=1)
    assert len(body["recommendations"]) == 1
    assert body["total_candidates"] == 3


def test_same_base_only_excludes_a_different_known_family(api):
    target = adapter("Crimson Dragon Knight", base_family="sdxl")
    other = adapter("Crimson Dragon Knight Classic", base_family="sd1")
    assert other.name not in names(similar(api, target))


@pytest.mark.parametrize("family", ["sdxl", "unknown", "other"])
def test_same_base_only_keeps_the_same_unknown_and_other_families(api, family):
    target = adapter("Crimson Dragon Knight", base_family="sdxl")
    kept = adapter("Crimson Dragon Knight Classic", base_family=family)
    assert names(similar(api, target)) == [kept.name]


def test_same_base_only_excludes_nothing_for_a_target_of_unknown_family(api):
    target = adapter("Crimson Dragon Knight", base_family="unknown")
    sd1 = adapter("Crimson Dragon Knight Classic", base_family="sd1")
    assert names(similar(api, target)) == [sd1.name]


def test_same_base_only_off_keeps_every_family(api):
    target = adapter("Crimson Dragon Knight", base_family="sdxl")
    other = adapter("Crimson Dragon Knight Classic", base_family="sd1")
    body = similar(api, target, same_base_only="false")
    assert names(body) == [other.name]
    assert body["total_candidates"] == 1


def test_active_only_keeps_active_candidates(api):
    target = adapter("Crimson Dragon Knight")
    active = adapter("Crimson Dragon Rider", active=True)
    adapter("Crimson Dragon Egg", active=False)
    body = similar(api, target, active_only="true")
    assert names(body) == [active.name]
    assert body["total_candidates"] == 1


def test_similar_sorts_by_final_score(api):
    target = adapter("Crimson Dragon Knight", tags=["dragon", "knight"])
    adapter("Crimson Dragon Knight Rider", tags=["dragon", "knight"])
    adapter("Crimson Dragon Egg", tags=["dragon"])
    adapter("Crimson Harbour")
    finals = [item["final_score"] for item in similar(api, target, diversify_results="false")["recommendations"]]
    assert len(finals) == 3
    assert finals == sorted(finals, reverse=True)


def test_similar_breaks_ties_by_name(api):
    target = adapter("Crimson Dragon Knight")
    adapter("Crimson Dragon Zq")
    adapter("Crimson Dragon Qz")
    body = similar(api, target, diversify_results="false")
    assert names(body) == ["Crimson Dragon Qz", "Crimson Dragon Zq"]
    assert len({item["final_score"] for item in body["recommendations"]}) == 1


def test_ties_are_broken_by_name_whatever_the_creation_order(api):
    target = AdapterFactory(name="Crimson Dragon Knight", sdnext_name="cdk")
    AdapterFactory(name="Crimson Dragon Qz", sdnext_name="cdqz")
    AdapterFactory(name="Crimson Dragon Zq", sdnext_name="cdzq")  # created last: the most recent by microseconds
    body = similar(api, target, diversify_results="false")
    assert len({item["final_score"] for item in body["recommendations"]}) == 1
    assert names(body) == ["Crimson Dragon Qz", "Crimson Dragon Zq"]


@pytest.fixture
def near_duplicates():
    """A target, two near-identical candidates and a slightly less similar, distinct one."""
    target = adapter("Crimson Dragon Knight", tags=["dragon", "knight", "armor"], sdnext_name="t")
    first = adapter("Crimson Dragon Helm Qx", tags=["dragon", "knight", "helm"], sdnext_name="d1")
    second = adapter("Crimson Dragon Helm Zx", tags=["dragon", "knight", "helm"], sdnext_name="d2")
    distinct = adapter("Crimson Knight in Armor", tags=["knight", "armor"], sdnext_name="x")
    return target, first, second, distinct


def test_without_diversification_near_duplicates_come_first(api, near_duplicates):
    target, first, second, distinct = near_duplicates
    body = similar(api, target, diversify_results="false")
    assert names(body) == [first.name, second.name, distinct.name]


def test_diversification_puts_a_distinct_item_before_a_near_duplicate(api, near_duplicates):
    target, first, second, distinct = near_duplicates
    body = similar(api, target)
    assert names(body) == [first.name, distinct.name, second.name]


# --- for-prompt ------------------------------------------------------------------------------------------


def test_for_prompt_excludes_the_active_adapters(api):
    active = adapter("Anime Eyes")
    other = adapter("Anime Hair")
    body = for_prompt(api, "anime", active_loras=[str(active.pk)])
    assert names(body) == [other.name]


def test_for_prompt_filters_by_the_required_base_family(api):
    adapter("Anime Eyes", base_family="sdxl")
    sd1 = adapter("Anime Hair", base_family="sd1")
    body = for_prompt(api, "anime", technical_requirements={"base_family": "sd1"})
    assert names(body) == [sd1.name]


def test_style_preference_adds_0_05_to_adapters_whose_document_contains_it(api):
    styled = adapter("Anime Eyes", tags=["watercolor"])
    plain = adapter("Anime Hair")
    before = for_prompt(api, "anime")
    after = for_prompt(api, "anime", style_preference="Watercolor")
    assert item_of(after, styled)["final_score"] == pytest.approx(item_of(before, styled)["final_score"] + 0.05)
    assert item_of(after, plain)["final_score"] == item_of(before, plain)["final_score"]


def test_for_prompt_returns_only_items_with_content_or_co_usage(api):
    eyes = adapter("Anime Eyes")
    partner = adapter("Quiet Harbour")
    adapter("Rusty Robot")
    job(eyes, partner)
    body = for_prompt(api, "anime", active_loras=[str(eyes.pk)])
    assert names(body) == [partner.name]
    assert item_of(body, partner)["similarity_score"] == 0.0
    assert item_of(body, partner)["co_usage_score"] == 1.0
    assert body["total_candidates"] == 2


def test_for_prompt_co_usage_is_the_mean_over_the_active_adapters(api):
    first, second = adapter("Anime Eyes"), adapter("Anime Hair")
    partner = adapter("Quiet Harbour")
    job(first, partner)
    body = for_prompt(api, "harbour", active_loras=[str(first.pk), str(second.pk)])
    assert item_of(body, partner)["co_usage_score"] == 0.5


def test_include_explanations_false_leaves_explanations_empty(api):
    adapter("Anime Eyes")
    body = for_prompt(api, "anime", include_explanations=False)
    assert [item["explanation"] for item in body["recommendations"]] == [""]


# --- by-trigger ------------------------------------------------------------------------------------------


@pytest.fixture
def triggered():
    exact = adapter("Celestial", triggers=["celestial style"])
    partial = adapter(
        "Portrait", trained_words=["celestial style portrait"], tags=["favourite"],
        stats={"rating": 5, "downloadCount": 10**7},
    )  # fmt: skip
    fuzzy = adapter("Misspelt", triggers=["celestial styl"])
    return exact, partial, fuzzy


def test_by_trigger_orders_exact_then_partial_then_fuzzy(api, triggered):
    body = by_trigger(api, "celestial style")
    assert names(body) == [a.name for a in triggered]
    assert [(i["metadata"]["match"], i["metadata"]["trigger"]) for i in body["recommendations"]] == [
        ("exact", "celestial style"), ("partial", "celestial style portrait"), ("fuzzy", "celestial styl"),
    ]  # fmt: skip


def test_by_trigger_scores_each_tier(api, triggered):
    scores = [item["similarity_score"] for item in by_trigger(api, "celestial style")["recommendations"]]
    assert scores[:2] == [1.0, 0.8]
    assert 0.6 * 0.3 <= scores[2] < 0.6


def test_an_exact_match_outranks_a_partial_match_with_a_higher_final_score(api, triggered):
    exact, partial, _ = triggered
    preference = {"preference_type": "tag", "preference_value": "favourite", "confidence": 1.0}
    api.post(f"{BASE}/preferences", data=json.dumps(preference), content_type="application/json")
    body = by_trigger(api, "celestial style")
    assert item_of(body, partial)["final_score"] > item_of(body, exact)["final_score"]
    assert names(body)[:2] == [exact.name, partial.name]


@pytest.mark.parametrize("query", ["  CELESTIAL—Style!! ", FULLWIDTH, "celestial_style"])
def test_by_trigger_normalises_the_query(api, triggered, query):
    first = by_trigger(api, query)["recommendations"][0]
    assert (first["lora_name"], first["metadata"]["match"]) == ("Celestial", "exact")


def test_by_trigger_normalises_the_adapters_phrases(api):
    adapter("Shouting", triggers=["NEON—Glow!"])
    first = by_trigger(api, "neon glow")["recommendations"][0]
    assert (first["metadata"]["match"], first["metadata"]["trigger"]) == ("exact", "neon glow")


@pytest.mark.parametrize("phrase", ["mossy stone", "copper leaf", "tidal pool", "ember glow"])
def test_activation_text_is_split_on_commas_semicolons_slashes_and_newlines(api, phrase):
    adapter("Garden", activation_text="mossy stone, copper leaf; tidal pool/ember glow\nlantern")
    first = by_trigger(api, phrase)["recommendations"][0]
    assert (first["lora_name"], first["metadata"]["match"], first["metadata"]["trigger"]) == (
        "Garden", "exact", phrase,
    )  # fmt: skip


def test_by_trigger_returns_nothing_unrelated(api, triggered):
    body = by_trigger(api, "submarine")
    assert body["recommendations"] == []
    assert body["total_candidates"] == 0


# --- co-usage --------------------------------------------------------------------------------------------


@pytest.fixture
def co_usage():
    """The target in 3 succeeded jobs: 2 with ``often`` (used in 3 jobs), 1 with ``once`` (used in 4); plus
    jobs that must not count."""
    target, often, once = adapter("Target"), adapter("Often"), adapter("Once")
    failed, old, delivery = adapter("Failed"), adapter("Old"), adapter("Delivery")
    job(target, often)
    job(target, often)
    job(target, once)
    job(often)
    job(once)
    job(once)
    job(once)
    job(target, failed, often, status="failed")
    job(target, old, often, days_ago=181)
    job(target, delivery, kind="delivery")
    return target, often, once


def test_works_well_with_scores_n_ab_over_the_root_of_n_a_n_b(api, co_usage):
    target, _, _ = co_usage
    body = api.get(f"{BASE}/works-well-with/{target.pk}").json()
    scores = [(item["lora_name"], item["co_usage_score"]) for item in body["recommendations"]]
    assert scores == [("Often", round(2 / math.sqrt(3 * 3), 4)), ("Once", round(1 / math.sqrt(3 * 4), 4))]
    assert body["total_candidates"] == 2


def test_works_well_with_explains_how_often_they_were_used_together(api, co_usage):
    target, _, _ = co_usage
    body = api.get(f"{BASE}/works-well-with/{target.pk}").json()
    explanations = [item["explanation"] for item in body["recommendations"]]
    assert "Often used together (2 jobs)" in explanations[0].split(" | ")
    assert "Often used together (1 job)" in explanations[1].split(" | ")


def test_works_well_with_an_adapter_never_used_is_empty(api, co_usage):
    lonely = adapter("Lonely")
    body = api.get(f"{BASE}/works-well-with/{lonely.pk}").json()
    assert (body["recommendations"], body["total_candidates"]) == ([], 0)


def test_similar_reports_co_usage_with_the_target(api, co_usage):
    target, often, _ = co_usage
    body = similar(api, target, similarity_threshold=0)
    assert item_of(body, often)["co_usage_score"] == round(2 / 3, 4)


# --- feedback and preferences ----------------------------------------------------------------------------


def feedback(api, session: dict[str, Any], target, kind: str) -> None:
    body = {"session_id": session["session_id"], "recommended_lora_id": str(target.pk), "feedback_type": kind}
    response = api.post(f"{BASE}/feedback", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content


@pytest.fixture
def dragons():
    return adapter("Crimson Dragon Knight"), adapter("Crimson Dragon Rider"), adapter("Crimson Dragon Egg")


@pytest.mark.parametrize("kind", ["negative", "dismissed"])
def test_negative_feedback_removes_the_adapter_from_that_context(api, dragons, kind):
    target, rider, egg = dragons
    feedback(api, similar(api, target), rider, kind)
    assert names(similar(api, target)) == [egg.name]


def test_negative_feedback_only_demotes_the_adapter_in_another_context(api, dragons):
    target, rider, egg = dragons
    feedback(api, similar(api, target), rider, "negative")
    assert rider.name in names(similar(api, egg))
    assert item_of(for_prompt(api, "crimson dragon"), rider)["feedback_adjustment"] == -0.15


def test_positive_feedback_promotes_the_adapter(api, dragons):
    target, rider, _ = dragons
    before = item_of(for_prompt(api, "crimson dragon"), rider)
    feedback(api, similar(api, target), rider, "positive")
    after = item_of(for_prompt(api, "crimson dragon"), rider)
    assert after["feedback_adjustment"] == 0.05
    assert after["final_score"] == pytest.approx(before["final_score"] + 0.05)


def test_feedback_older_than_90_days_is_forgotten(api, dragons):
    from recommendations.models import RecommendationFeedback

    target, rider, _ = dragons
    feedback(api, similar(api, target), rider, "positive")
    RecommendationFeedback.objects.update(created_at=timezone.now() - timedelta(days=91))
    assert item_of(for_prompt(api, "crimson dragon"), rider)["feedback_adjustment"] == 0.0


@pytest.mark.parametrize(
    ("kind", "value", "fields"),
    [
        ("tag", "Anime", {"tags": ["anime"]}),
        ("author", "stellar", {"author_username": "Stellar"}),
        ("base_model", "sdxl", {"base_family": "sdxl"}),
        ("base_model", "sdxl 1.0", {"base_model": "SDXL 1.0"}),
        ("style", "watercolor", {"description": "<p>Soft watercolor washes</p>"}),
    ],
)
def test_a_matching_preference_boosts_and_explains(api, kind, value, fields):
    target = adapter("Crimson Dragon Knight")
    matching = adapter("Crimson Dragon Rider", **fields)
    preference = {"preference_type": kind, "preference_value": value, "confidence": 0.8}
    api.post(f"{BASE}/preferences", data=json.dumps(preference), content_type="application/json")
    found = item_of(similar(api, target, same_base_only="false"), matching)
    assert found["preference_boost"] == 0.08
    assert f"Matches your preference: {kind} {value.lower()}" in found["explanation"].split(" | ")


def test_a_preference_follows_the_adapters_it_matches_after_a_write(api):
    target = adapter("Crimson Dragon Knight")
    first = adapter("Crimson Dragon Rider", tags=["anime"])
    second = adapter("Crimson Dragon Egg", tags=["ink"])
    preference = {"preference_type": "tag", "preference_value": "anime", "confidence": 1.0}
    api.post(f"{BASE}/preferences", data=json.dumps(preference), content_type="application/json")
    before = similar(api, target)
    assert (item_of(before, first)["preference_boost"], item_of(before, second)["preference_boost"]) == (0.1, 0.0)
    response = api.patch(
        f"/api/v1/adapters/{second.pk}", data=json.dumps({"tags": ["anime"]}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    response = api.patch(
        f"/api/v1/adapters/{first.pk}", data=json.dumps({"tags": ["ink"]}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    after = similar(api, target)
    assert (item_of(after, first)["preference_boost"], item_of(after, second)["preference_boost"]) == (0.0, 0.1)


def test_preference_boost_is_capped_at_0_2(api):
    target = adapter("Crimson Dragon Knight")
    matching = adapter("Crimson Dragon Rider", tags=["anime", "ink", "neon"])
    for tag in ("anime", "ink", "neon"):
        preference = {"preference_type": "tag", "preference_value": tag, "confidence": 1.0}
        api.post(f"{BASE}/preferences", data=json.dumps(preference), content_type="application/json")
    found = item_of(similar(api, target), matching)
    assert found["preference_boost"] == 0.2
    assert [part for part in found["explanation"].split(" | ") if part.startswith("Matches your preference")] == [
        f"Matches your preference: tag {tag}" for tag in ("anime", "ink", "neon")
    ]
