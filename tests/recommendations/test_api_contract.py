"""The recommendations REST API as a client sees it (SPEC 5.6, 4.3-4.5, 7): shapes, errors, sessions, auth."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from recommendations.models import RecommendationFeedback, RecommendationSession, UserPreference
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/recommendations"
UNKNOWN_ID = "6f1c2b3a-0000-4000-8000-000000000000"

RESPONSE_KEYS = {
    "session_id", "target_lora_id", "prompt", "trigger_query", "total_candidates", "processing_time_ms",
    "recommendation_config", "generated_at", "recommendations",
}  # fmt: skip
CONFIG_KEYS = {"device", "gpu_enabled", "semantic_enabled", "embedding_model", "weights", "score_weights", "limit"}
ITEM_KEYS = {
    "lora_id", "lora_name", "lora_description", "similarity_score", "final_score", "semantic_similarity",
    "lexical_similarity", "artistic_similarity", "technical_similarity", "co_usage_score", "quality_boost",
    "popularity_boost", "recency_boost", "preference_boost", "feedback_adjustment", "explanation", "metadata",
}  # fmt: skip
METADATA_KEYS = {"tags", "author", "sd_version", "base_model", "base_family", "nsfw_level", "sdnext_name", "active"}
FEEDBACK_KEYS = {"id", "session_id", "recommended_lora_id", "feedback_type", "feedback_reason", "implicit_signal",
                 "created_at"}  # fmt: skip
PREFERENCE_KEYS = {
    "id", "preference_type", "preference_value", "confidence", "learned_from", "evidence_count", "last_evidence_at",
    "created_at", "updated_at",
}  # fmt: skip
STATS_KEYS = {
    "total_loras", "active_loras", "loras_with_embeddings", "embedding_coverage", "tfidf_indexed",
    "semantic_available", "embedding_model", "device", "avg_recommendation_time_ms", "cache_hit_rate",
    "total_sessions", "user_preferences_count", "feedback_count", "model_memory_usage_gb", "last_index_update",
}  # fmt: skip
EMBEDDING_STATUS_KEYS = {
    "adapter_id", "has_semantic_embedding", "has_lexical_index", "has_artistic_embedding",
    "has_technical_embedding", "has_extracted_features", "embedding_model", "dim", "last_computed",
    "needs_recomputation", "semantic_available",
}  # fmt: skip
REBUILD_KEYS = {
    "status", "indexed_items", "index_path", "index_size_bytes", "processing_time_seconds", "rebuilt_at", "skipped",
    "skipped_reason",
}  # fmt: skip
QUEUED_KEYS = {"job_id", "kind", "status", "queued_count"}


def post(client, url: str, body: Any):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def assert_problem(response, status: int, detail: str, *, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["detail"] == detail
    assert body["instance"] == response.request["PATH_INFO"]
    if field is not None:
        assert body["errors"][field] == [detail]
    return body


def assert_validation_error(response, field: str) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "urn:loraforge:problem:validation-error"
    assert field in body["errors"], body["errors"]
    return body


@pytest.fixture
def anime():
    """Three adapters: two anime ones that are similar, one unrelated; all SDXL."""
    common = {"base_family": "sdxl", "base_model": "SDXL 1.0"}
    return [
        AdapterFactory(name="Celestial Anime Portraits", tags=["anime", "portrait"], triggers=["celestial style"],
                       **common),
        AdapterFactory(name="Celestial Anime Eyes", tags=["anime", "eyes"], trained_words=["starry eyes"], **common),
        AdapterFactory(name="Rusty Robots", tags=["robot"], **common),
    ]  # fmt: skip


def _assert_response_shape(body: dict[str, Any], *, trigger: bool = False) -> None:
    assert set(body) == RESPONSE_KEYS
    assert set(body["recommendation_config"]) == CONFIG_KEYS
    assert set(body["recommendation_config"]["weights"]) == {"semantic", "lexical"}
    assert set(body["recommendation_config"]["score_weights"]) == {
        "content", "co_usage", "quality", "popularity", "recency",
    }  # fmt: skip
    assert body["recommendations"], "the fixture makes every operation return something"
    for item in body["recommendations"]:
        assert set(item) == ITEM_KEYS
        assert set(item["metadata"]) == (METADATA_KEYS | {"trigger", "match"} if trigger else METADATA_KEYS)
    assert body["generated_at"].endswith("Z")


# --- the four operations -------------------------------------------------------------------------------------


def test_similar_answers_the_recommendation_response(api, anime):
    response = api.get(f"{BASE}/similar/{anime[0].pk}")
    assert response.status_code == 200
    body = response.json()
    _assert_response_shape(body)
    assert body["target_lora_id"] == str(anime[0].pk)
    assert (body["prompt"], body["trigger_query"]) == (None, None)
    assert body["recommendation_config"]["limit"] == 10


def test_for_prompt_answers_the_recommendation_response_with_the_prompt(api, anime):
    response = post(api, f"{BASE}/for-prompt", {"prompt": "anime eyes"})
    assert response.status_code == 200
    body = response.json()
    _assert_response_shape(body)
    assert (body["prompt"], body["target_lora_id"], body["trigger_query"]) == ("anime eyes", None, None)


def test_by_trigger_answers_the_recommendation_response_with_trigger_metadata(api, anime):
    response = api.get(f"{BASE}/by-trigger", {"trigger_query": "celestial style", "limit": 5})
    assert response.status_code == 200
    body = response.json()
    _assert_response_shape(body, trigger=True)
    assert body["trigger_query"] == "celestial style"
    assert body["recommendation_config"]["limit"] == 5


def test_works_well_with_answers_the_recommendation_response(api, anime, co_used):
    co_used(anime[0], anime[1])
    response = api.get(f"{BASE}/works-well-with/{anime[0].pk}")
    assert response.status_code == 200
    body = response.json()
    _assert_response_shape(body)
    assert body["target_lora_id"] == str(anime[0].pk)


@pytest.fixture
def co_used():
    from deliveries.models import DeliveryJob
    from tests.factories import link_adapters

    def make(*adapters):
        job = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="p", status="succeeded")
        link_adapters(job, [(adapter, 1.0) for adapter in adapters])
        return job

    return make


@pytest.mark.parametrize("path", ["similar", "works-well-with", "embeddings"])
@pytest.mark.parametrize("lora_id", [UNKNOWN_ID, "not-a-uuid", "12345"])
def test_unknown_or_malformed_adapter_id_is_404(api, anime, path, lora_id):
    assert_problem(api.get(f"{BASE}/{path}/{lora_id}"), 404, "Adapter not found")


@pytest.mark.parametrize("lora_id", [UNKNOWN_ID, "not-a-uuid"])
def test_compute_one_for_an_unknown_adapter_is_404(api, lora_id):
    assert_problem(api.post(f"{BASE}/embeddings/{lora_id}/compute"), 404, "Adapter not found")


def test_similar_refuses_both_weights_zero(api, anime):
    response = api.get(f"{BASE}/similar/{anime[0].pk}", {"weight_semantic": 0, "weight_lexical": 0})
    assert_problem(response, 400, "weight_semantic and weight_lexical must not both be 0")


@pytest.mark.parametrize("query", [{}, {"trigger_query": ""}, {"trigger_query": "   "}])
def test_by_trigger_requires_a_trigger_query(api, anime, query):
    response = api.get(f"{BASE}/by-trigger", query)
    assert_problem(response, 400, "trigger_query is required", field="trigger_query")


def test_by_trigger_refuses_a_query_over_200_characters(api, anime):
    assert_validation_error(api.get(f"{BASE}/by-trigger", {"trigger_query": "x" * 201}), "trigger_query")


@pytest.mark.parametrize("limit", ["0", "51", "abc", "1.5"])
@pytest.mark.parametrize("operation", ["similar", "works-well-with", "by-trigger"])
def test_bad_limit_in_the_query_is_400_keyed_limit(api, anime, operation, limit):
    if operation == "by-trigger":
        url, query = f"{BASE}/by-trigger", {"trigger_query": "anime", "limit": limit}
    else:
        url, query = f"{BASE}/{operation}/{anime[0].pk}", {"limit": limit}
    assert_validation_error(api.get(url, query), "limit")


@pytest.mark.parametrize("limit", [0, 51, "5", 2.5, True])
def test_bad_limit_in_the_for_prompt_body_is_400_keyed_limit(api, anime, limit):
    assert_validation_error(post(api, f"{BASE}/for-prompt", {"prompt": "anime", "limit": limit}), "limit")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"similarity_threshold": "1.5"}, "similarity_threshold"),
        ({"similarity_threshold": "high"}, "similarity_threshold"),
        ({"diversify_results": "maybe"}, "diversify_results"),
        ({"same_base_only": "2"}, "same_base_only"),
        ({"weight_semantic": "-0.1"}, "weight_semantic"),
    ],
)
def test_similar_refuses_invalid_query_values_keyed_by_parameter(api, anime, query, field):
    assert_validation_error(api.get(f"{BASE}/similar/{anime[0].pk}", query), field)


# --- for-prompt body -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 20_001}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "anime", "active_loras": "a,b"}, "active_loras"),
        ({"prompt": "anime", "active_loras": [str(uuid.uuid4()) for _ in range(201)]}, "active_loras"),
        ({"prompt": "anime", "active_loras": ["not-a-uuid"]}, "active_loras.0"),
        ({"prompt": "anime", "include_explanations": "yes"}, "include_explanations"),
        ({"prompt": "anime", "active_only": 1}, "active_only"),
        ({"prompt": "anime", "style_preference": 3}, "style_preference"),
        ({"prompt": "anime", "style_preference": "x" * 101}, "style_preference"),
        ({"prompt": "anime", "technical_requirements": "sdxl"}, "technical_requirements"),
    ],
)
def test_for_prompt_refuses_invalid_bodies_keyed_by_field(api, anime, body, field):
    assert_validation_error(post(api, f"{BASE}/for-prompt", body), field)


def test_for_prompt_refuses_an_unknown_key(api, anime):
    response = post(api, f"{BASE}/for-prompt", {"prompt": "anime", "colour": "blue"})
    assert_problem(response, 400, "Unknown field.", field="colour")


def test_for_prompt_ignores_unknown_active_ids(api, anime):
    response = post(api, f"{BASE}/for-prompt", {"prompt": "anime", "active_loras": [UNKNOWN_ID]})
    assert response.status_code == 200
    assert RecommendationSession.objects.get(pk=response.json()["session_id"]).active_loras == []


def test_for_prompt_accepts_200_active_ids(api, anime):
    ids = [str(uuid.uuid4()) for _ in range(200)]
    assert post(api, f"{BASE}/for-prompt", {"prompt": "anime", "active_loras": ids}).status_code == 200


def test_for_prompt_refuses_a_body_that_is_not_json(api, anime):
    response = api.post(f"{BASE}/for-prompt", data="{prompt: anime", content_type="application/json")
    body = assert_problem(response, 400, "Request body is not valid JSON.")
    assert body["type"] == "urn:loraforge:problem:malformed-request"


def test_for_prompt_refuses_json_that_is_not_an_object(api, anime):
    response = post(api, f"{BASE}/for-prompt", ["anime"])
    assert_problem(response, 400, "Request body must be a JSON object.")


def test_for_prompt_refuses_another_content_type(api, anime):
    response = api.post(f"{BASE}/for-prompt", data="prompt=anime", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["detail"] == "Content-Type must be application/json"


# --- feedback --------------------------------------------------------------------------------------------


@pytest.fixture
def session(api, anime) -> dict[str, Any]:
    """A similar session for the first anime adapter (it recommends the second)."""
    return api.get(f"{BASE}/similar/{anime[0].pk}").json()


def _feedback(session: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "session_id": session["session_id"],
        "recommended_lora_id": session["recommendations"][0]["lora_id"],
        "feedback_type": "positive",
    }
    return {**body, **overrides}


def test_feedback_is_created_with_its_shape(api, session):
    body = _feedback(session, feedback_reason="nice", implicit_signal=True)
    response = post(api, f"{BASE}/feedback", body)
    assert response.status_code == 201
    created = response.json()
    assert set(created) == FEEDBACK_KEYS
    assert created["session_id"] == session["session_id"]
    assert created["recommended_lora_id"] == body["recommended_lora_id"]
    assert (created["feedback_type"], created["feedback_reason"], created["implicit_signal"]) == (
        "positive", "nice", True,
    )  # fmt: skip
    assert RecommendationFeedback.objects.get(pk=created["id"]).session_id == uuid.UUID(session["session_id"])


def test_feedback_for_an_unknown_session_is_404(api, session):
    response = post(api, f"{BASE}/feedback", _feedback(session, session_id=UNKNOWN_ID))
    assert_problem(response, 404, "Recommendation session not found")


def test_feedback_for_an_unknown_adapter_is_404(api, session):
    response = post(api, f"{BASE}/feedback", _feedback(session, recommended_lora_id=UNKNOWN_ID))
    assert_problem(response, 404, "Adapter not found")


def test_feedback_on_an_adapter_the_session_did_not_recommend_is_400(api, session, anime):
    response = post(api, f"{BASE}/feedback", _feedback(session, recommended_lora_id=str(anime[0].pk)))
    assert_problem(response, 400, "Adapter was not recommended in this session", field="recommended_lora_id")


@pytest.mark.parametrize("feedback_type", ["great", "", None, 1])
def test_feedback_with_an_invalid_type_is_400(api, session, feedback_type):
    response = post(api, f"{BASE}/feedback", _feedback(session, feedback_type=feedback_type))
    assert_validation_error(response, "feedback_type")


def test_feedback_reason_over_1000_characters_is_400(api, session):
    response = post(api, f"{BASE}/feedback", _feedback(session, feedback_reason="x" * 1001))
    assert_validation_error(response, "feedback_reason")
    assert not RecommendationFeedback.objects.exists()


def test_feedback_with_a_malformed_session_id_is_400(api, session):
    assert_validation_error(post(api, f"{BASE}/feedback", _feedback(session, session_id="nope")), "session_id")


# --- preferences -----------------------------------------------------------------------------------------


def test_preference_is_created_with_201(api):
    response = post(api, f"{BASE}/preferences", {"preference_type": "tag", "preference_value": "anime"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == PREFERENCE_KEYS
    assert (body["confidence"], body["learned_from"], body["evidence_count"]) == (0.5, "explicit", 1)


def test_the_same_preference_again_is_updated_with_200(api):
    post(api, f"{BASE}/preferences", {"preference_type": "tag", "preference_value": "anime", "confidence": 0.3})
    response = post(
        api, f"{BASE}/preferences", {"preference_type": "tag", "preference_value": "anime", "confidence": 0.9}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["evidence_count"], body["confidence"]) == (2, 0.9)
    assert UserPreference.objects.count() == 1


def test_preference_value_is_trimmed_and_lower_cased(api):
    post(api, f"{BASE}/preferences", {"preference_type": "style", "preference_value": "  Watercolor  "})
    response = post(api, f"{BASE}/preferences", {"preference_type": "style", "preference_value": "WATERCOLOR"})
    assert response.status_code == 200
    assert response.json()["preference_value"] == "watercolor"


def test_preference_not_explicit_is_learned_from_feedback(api):
    body = {"preference_type": "author", "preference_value": "stellar", "explicit": False}
    assert post(api, f"{BASE}/preferences", body).json()["learned_from"] == "feedback"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preference_type": "mood", "preference_value": "x"}, "preference_type"),
        ({"preference_type": "tag", "preference_value": ""}, "preference_value"),
        ({"preference_type": "tag", "preference_value": "x" * 101}, "preference_value"),
        ({"preference_type": "tag", "preference_value": "x", "confidence": 1.5}, "confidence"),
        ({"preference_type": "tag", "preference_value": "x", "confidence": "high"}, "confidence"),
        ({"preference_type": "tag", "preference_value": "x", "explicit": "yes"}, "explicit"),
        ({"preference_type": "tag", "preference_value": "x", "weight": 1}, "weight"),
    ],
)
def test_preference_refuses_invalid_bodies_keyed_by_field(api, body, field):
    assert_validation_error(post(api, f"{BASE}/preferences", body), field)


def test_deleted_preference_is_204_then_404(api):
    created = post(api, f"{BASE}/preferences", {"preference_type": "tag", "preference_value": "anime"}).json()
    assert api.delete(f"{BASE}/preferences/{created['id']}").status_code == 204
    assert_problem(api.delete(f"{BASE}/preferences/{created['id']}"), 404, "Preference not found")


def test_deleting_a_malformed_preference_id_is_404(api):
    assert_problem(api.delete(f"{BASE}/preferences/nope"), 404, "Preference not found")


def test_preferences_are_listed_by_type_then_value(api):
    for kind, value in [("tag", "zebra"), ("author", "bob"), ("tag", "anime"), ("style", "ink")]:
        post(api, f"{BASE}/preferences", {"preference_type": kind, "preference_value": value})
    response = api.get(f"{BASE}/preferences")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items"}
    listed = [(item["preference_type"], item["preference_value"]) for item in body["items"]]
    assert listed == [("author", "bob"), ("style", "ink"), ("tag", "anime"), ("tag", "zebra")]


# --- stats, health, embeddings, index --------------------------------------------------------------------


def test_stats_of_an_empty_catalogue_report_zero_coverage(api):
    response = api.get(f"{BASE}/stats")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == STATS_KEYS
    assert (body["total_loras"], body["embedding_coverage"], body["tfidf_indexed"]) == (0, 0.0, 0)


def test_stats_count_adapters_sessions_preferences_and_feedback(api, session, anime):
    anime[2].active = True
    anime[2].save()
    post(api, f"{BASE}/feedback", _feedback(session))
    post(api, f"{BASE}/preferences", {"preference_type": "tag", "preference_value": "anime"})
    body = api.get(f"{BASE}/stats").json()
    assert (body["total_loras"], body["active_loras"], body["tfidf_indexed"]) == (3, 1, 3)
    assert (body["total_sessions"], body["feedback_count"], body["user_preferences_count"]) == (1, 1, 1)
    assert (body["loras_with_embeddings"], body["embedding_coverage"]) == (0, 0.0)
    assert body["avg_recommendation_time_ms"] > 0
    assert body["last_index_update"].endswith("Z")


def test_health_of_an_empty_catalogue_is_healthy(api):
    response = api.get(f"{BASE}/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checks", "metrics", "timestamp"}
    assert set(body["checks"]) == {"tfidf_ready", "semantic_available", "embeddings_coverage_ok",
                                   "performance_acceptable"}  # fmt: skip
    assert set(body["metrics"]) == {"embedding_coverage", "avg_response_time_ms", "memory_usage_gb", "total_loras",
                                    "loras_with_embeddings"}  # fmt: skip
    assert body["status"] == "healthy"


def test_health_is_degraded_when_too_few_adapters_have_embeddings(api, anime):
    body = api.get(f"{BASE}/health").json()
    assert body["checks"]["embeddings_coverage_ok"] is False
    assert body["status"] == "degraded"


def test_health_ignores_coverage_when_semantic_embeddings_are_off(api, anime, settings):
    settings.LORAFORGE_EMBEDDING_MODEL = "off"
    body = api.get(f"{BASE}/health").json()
    assert body["checks"]["embeddings_coverage_ok"] is True
    assert body["checks"]["semantic_available"] is False
    assert body["status"] == "healthy"


def test_health_is_degraded_when_recommendations_are_slow(api, settings):
    settings.LORAFORGE_EMBEDDING_MODEL = "off"
    RecommendationSession.objects.create(kind="similar", context_key="similar:x", processing_time_ms=2500.0)
    body = api.get(f"{BASE}/health").json()
    assert body["checks"]["performance_acceptable"] is False
    assert body["metrics"]["avg_response_time_ms"] == 2500.0
    assert body["status"] == "degraded"


def test_health_is_unhealthy_without_exception_text_when_the_index_cannot_be_built(api, anime, monkeypatch):
    def broken(catalogue):
        raise MemoryError("secret internals")

    monkeypatch.setattr("recommendations.lexical.lexical_build", broken)
    response = api.get(f"{BASE}/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["checks"]["tfidf_ready"]) == ("unhealthy", False)
    assert body["error"] == "The lexical index cannot be built"


def test_embedding_status_of_an_adapter_without_a_vector(api, anime):
    response = api.get(f"{BASE}/embeddings/{anime[0].pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == EMBEDDING_STATUS_KEYS
    assert body["adapter_id"] == str(anime[0].pk)
    assert (body["has_semantic_embedding"], body["has_lexical_index"], body["needs_recomputation"]) == (
        False, True, True,
    )  # fmt: skip
    assert (body["embedding_model"], body["dim"], body["last_computed"]) == (None, None, None)


def test_embeddings_compute_queues_a_job(api, anime, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"{BASE}/embeddings/compute", {"adapter_ids": [str(anime[0].pk)]})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == QUEUED_KEYS
    assert (body["kind"], body["status"], body["queued_count"]) == ("embeddings", "pending", 1)
    assert [(name, args) for name, args, _ in sent_tasks] == [("recommendations.compute_embeddings", [body["job_id"]])]


def test_embeddings_compute_without_ids_queues_every_adapter_without_a_vector(api, anime):
    response = post(api, f"{BASE}/embeddings/compute", {})
    assert response.status_code == 202
    assert response.json()["queued_count"] == 3


def test_embeddings_compute_refuses_unknown_ids(api, anime):
    response = post(api, f"{BASE}/embeddings/compute", {"adapter_ids": [str(anime[0].pk), UNKNOWN_ID]})
    assert_problem(response, 400, f"Unknown adapter ids: {UNKNOWN_ID}", field="adapter_ids")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"batch_size": 0}, "batch_size"), ({"batch_size": 129}, "batch_size"), ({"force_recompute": "yes"},
     "force_recompute"), ({"adapter_ids": "all"}, "adapter_ids"), ({"everything": True}, "everything")],
)  # fmt: skip
def test_embeddings_compute_refuses_invalid_bodies(api, anime, body, field):
    assert_validation_error(post(api, f"{BASE}/embeddings/compute", body), field)


def test_compute_one_queues_a_job_for_that_adapter(api, anime):
    response = api.post(f"{BASE}/embeddings/{anime[0].pk}/compute", {"force_recompute": "true"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == QUEUED_KEYS
    assert (body["kind"], body["status"], body["queued_count"]) == ("embeddings", "pending", 1)


def test_index_rebuild_of_an_empty_catalogue_is_empty(api):
    body = api.post(f"{BASE}/index/rebuild").json()
    assert set(body) == REBUILD_KEYS
    assert (body["status"], body["indexed_items"], body["skipped"]) == ("empty", 0, False)


def test_index_rebuild_builds_then_skips_then_forces(api, anime):
    first = api.post(f"{BASE}/index/rebuild")
    second = api.post(f"{BASE}/index/rebuild")
    forced = api.post(f"{BASE}/index/rebuild?force=true")
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["indexed_items"], first.json()["skipped"]) == ("rebuilt", 3, False)
    assert first.json()["index_size_bytes"] > 0
    assert first.json()["index_path"] is None
    assert (second.json()["status"], second.json()["skipped"], second.json()["skipped_reason"]) == (
        "skipped", True, "up_to_date",
    )  # fmt: skip
    assert (forced.json()["status"], forced.json()["skipped_reason"]) == ("rebuilt", None)
    assert forced.json()["rebuilt_at"] > first.json()["rebuilt_at"]


# --- auth and sessions -----------------------------------------------------------------------------------


ENDPOINTS = [
    ("get", "similar/{id}"), ("post", "for-prompt"), ("get", "by-trigger?trigger_query=anime"),
    ("get", "works-well-with/{id}"), ("post", "feedback"), ("get", "preferences"), ("post", "preferences"),
    ("delete", f"preferences/{UNKNOWN_ID}"), ("get", "stats"), ("get", "health"), ("post", "embeddings/compute"),
    ("get", "embeddings/{id}"), ("post", "embeddings/{id}/compute"), ("post", "index/rebuild"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_requires_authentication(anon, anime, method, path):
    response = getattr(anon, method)(f"{BASE}/{path.format(id=anime[0].pk)}")
    assert_problem(response, 401, "Authentication required")


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in ENDPOINTS if m != "get"])
def test_a_read_only_key_may_not_post_or_delete(anon, read_only_key, anime, method, path):
    anon.credentials(HTTP_X_API_KEY=read_only_key)
    response = getattr(anon, method)(f"{BASE}/{path.format(id=anime[0].pk)}")
    assert_problem(response, 403, "This API key is read-only")


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in ENDPOINTS if m == "get"])
def test_a_read_only_key_may_read(anon, read_only_key, anime, method, path):
    anon.credentials(HTTP_X_API_KEY=read_only_key)
    assert anon.get(f"{BASE}/{path.format(id=anime[0].pk)}").status_code == 200


def test_the_v1_prefix_and_a_trailing_slash_answer_the_same(api, anime):
    assert api.get(f"/v1/recommendations/similar/{anime[0].pk}/").status_code == 200


@pytest.mark.parametrize(
    ("kind", "request_"),
    [
        ("similar", lambda api, a: api.get(f"{BASE}/similar/{a[0].pk}")),
        ("for_prompt", lambda api, a: post(api, f"{BASE}/for-prompt", {"prompt": "anime eyes"})),
        ("by_trigger", lambda api, a: api.get(f"{BASE}/by-trigger", {"trigger_query": "celestial style"})),
        ("works_well_with", lambda api, a: api.get(f"{BASE}/works-well-with/{a[0].pk}")),
    ],
)
def test_every_response_records_its_session(api, anime, co_used, kind, request_):
    co_used(anime[0], anime[1])
    body = request_(api, anime).json()
    stored = RecommendationSession.objects.get(pk=body["session_id"])
    assert stored.kind == kind
    assert stored.recommendations == [
        {"lora_id": item["lora_id"], "rank": rank, "final_score": item["final_score"]}
        for rank, item in enumerate(body["recommendations"], start=1)
    ]
    assert stored.recommendations
    assert stored.processing_time_ms == body["processing_time_ms"]
