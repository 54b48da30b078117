"""The score terms of SPEC 6.7.2 with hand-computed values, and the weights in force as responses report them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommendations.scoring import (
    feedback_adjustment,
    popularity_score,
    preference_boosts,
    quality_score,
    recency_score,
)
from tests.factories import AdapterFactory

BASE = "/api/v1/recommendations"
NOW = timezone.now()


@pytest.mark.parametrize("stats", [None, {}])
def test_quality_without_stats_is_one_half(stats):
    assert quality_score(stats) == 0.5


def test_quality_combines_rating_downloads_and_favourites():
    # 0.6·4/5 + 0.3·log10(1000)/5 + 0.1·log10(10)/3 = 0.48 + 0.18 + 0.0333…
    assert quality_score({"rating": 4, "downloadCount": 999, "favoriteCount": 9}) == pytest.approx(
        0.48 + 0.18 + 0.1 / 3
    )


def test_quality_counts_thumbs_up_as_favourites():
    assert quality_score({"thumbsUpCount": 99}) == pytest.approx(0.1 * 2 / 3)


def test_quality_without_a_rating_counts_downloads_only():
    assert quality_score({"rating": 0, "downloadCount": 9}) == pytest.approx(0.3 * 1 / 5)


def test_quality_is_capped_at_one():
    assert quality_score({"rating": 5, "downloadCount": 10**9, "favoriteCount": 10**6}) == 1.0


def test_popularity_without_stats_is_zero():
    assert popularity_score(None) == 0.0


def test_popularity_is_log_downloads_over_six():
    assert popularity_score({"downloadCount": 999}) == pytest.approx(0.5)


def test_popularity_is_capped_at_one():
    assert popularity_score({"downloadCount": 10**8}) == 1.0


def test_recency_falls_linearly_over_a_year():
    assert recency_score(NOW - timedelta(days=73), None, NOW) == pytest.approx(0.8)


def test_recency_uses_created_at_without_a_publication_date():
    assert recency_score(None, NOW - timedelta(days=36.5), NOW) == pytest.approx(0.9)


def test_recency_prefers_the_publication_date():
    assert recency_score(NOW - timedelta(days=365), NOW, NOW) == pytest.approx(0.0)


def test_recency_is_never_negative():
    assert recency_score(NOW - timedelta(days=800), None, NOW) == 0.0


def test_feedback_adjustment_weighs_each_kind():
    counts = {"positive": 2, "activated": 1, "negative": 1, "dismissed": 1, "ignored": 1}
    assert feedback_adjustment(counts) == pytest.approx(0.10 + 0.03 - 0.15 - 0.10 - 0.02)


def test_feedback_adjustment_is_clamped_above_at_0_2():
    assert feedback_adjustment({"positive": 10}) == 0.2


def test_feedback_adjustment_is_clamped_below_at_minus_0_5():
    assert feedback_adjustment({"negative": 4}) == -0.5


def test_preference_boost_is_a_tenth_of_the_confidences():
    boosts = preference_boosts(4, [([0, 2], 0.9), ([2, 3], 0.5)])
    assert boosts.tolist() == pytest.approx([0.09, 0.0, 0.14, 0.05])


def test_preference_boost_is_capped_at_0_2():
    assert preference_boosts(2, [([1], 1.0), ([1], 1.0), ([0, 1], 1.0)]).tolist() == pytest.approx([0.1, 0.2])


# --- weights, through the API ----------------------------------------------------------------------------


@pytest.fixture
def pair(db):
    published = NOW - timedelta(days=73)
    target = AdapterFactory(name="Ink Wash Landscape", tags=["ink"], published_at=published)
    other = AdapterFactory(
        name="Ink Wash Mountains", tags=["ink"], published_at=published, stats={"rating": 4, "downloadCount": 999}
    )
    return target, other


def _similar(api, target, **query):
    return api.get(f"{BASE}/similar/{target.pk}", {"diversify_results": "false", **query}).json()


def test_final_score_is_the_weighted_sum_of_the_terms(api, pair):
    target, _ = pair
    [item] = _similar(api, target)["recommendations"]
    assert item["quality_boost"] == pytest.approx(0.05 * (0.48 + 0.18), abs=1e-4)
    assert item["popularity_boost"] == pytest.approx(0.05 * 0.5, abs=1e-4)
    assert item["recency_boost"] == pytest.approx(0.05 * 0.8, abs=1e-4)
    expected = (
        0.75 * item["similarity_score"] + item["quality_boost"] + item["popularity_boost"] + item["recency_boost"]
    )
    assert item["final_score"] == pytest.approx(expected, abs=2e-4)


def test_default_weights_are_reported(api, pair):
    config = _similar(api, pair[0])["recommendation_config"]
    assert config["weights"] == {"semantic": 0.6, "lexical": 0.4}
    assert config["score_weights"] == {"content": 0.75, "co_usage": 0.1, "quality": 0.05, "popularity": 0.05,
                                       "recency": 0.05}  # fmt: skip


def test_configured_weights_override_the_defaults_key_by_key(api, pair, settings):
    settings.LORAFORGE_RECO_WEIGHTS = {"semantic": 0.3, "lexical": 0.1, "quality": 0.2}
    body = _similar(api, pair[0])
    assert body["recommendation_config"]["weights"] == {"semantic": 0.75, "lexical": 0.25}
    assert body["recommendation_config"]["score_weights"]["quality"] == 0.2
    assert body["recommendation_config"]["score_weights"]["content"] == 0.75
    assert body["recommendations"][0]["quality_boost"] == pytest.approx(0.2 * 0.66, abs=1e-4)


def test_query_weights_replace_the_configured_pair_normalised(api, pair):
    config = _similar(api, pair[0], weight_semantic=0.2, weight_lexical=0.6)["recommendation_config"]
    assert config["weights"] == {"semantic": 0.25, "lexical": 0.75}


def test_one_query_weight_replaces_only_its_side(api, pair):
    config = _similar(api, pair[0], weight_semantic=0)["recommendation_config"]
    assert config["weights"] == {"semantic": 0.0, "lexical": 1.0}


def test_a_zero_configured_lexical_weight_with_a_semantic_query_weight_is_accepted(api, pair, settings):
    settings.LORAFORGE_RECO_WEIGHTS = {"lexical": 0.0}
    response = api.get(f"{BASE}/similar/{pair[0].pk}", {"weight_semantic": 0.5})
    assert response.status_code == 200
    assert response.json()["recommendation_config"]["weights"] == {"semantic": 1.0, "lexical": 0.0}


def test_a_zero_configured_lexical_weight_with_a_zero_semantic_query_weight_is_refused(api, pair, settings):
    settings.LORAFORGE_RECO_WEIGHTS = {"lexical": 0.0}
    response = api.get(f"{BASE}/similar/{pair[0].pk}", {"weight_semantic": 0})
    assert response.status_code == 400
    assert response.json()["detail"] == "weight_semantic and weight_lexical must not both be 0"
