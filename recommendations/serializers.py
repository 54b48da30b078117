"""Input and output shapes of the recommendation endpoints (SPEC 5.6)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from loraforge.fields import (
    BoundedJSONObjectField,
    CopiedFieldsSerializer,
    QueryBooleanField,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
    StrictUUIDField,
)
from recommendations.models import (
    FEEDBACK_REASON_MAX_LENGTH,
    PREFERENCE_VALUE_MAX_LENGTH,
    TRIGGER_QUERY_MAX_LENGTH,
    FeedbackType,
    PreferenceType,
    RecommendationFeedback,
    UserPreference,
)
from recommendations.weights import weights_in_force

LIMIT_MAX = 50
PROMPT_MAX_LENGTH = 20_000
ACTIVE_LORAS_MAX = 200
BATCH_SIZE_MAX = 128
BOTH_WEIGHTS_ZERO = "weight_semantic and weight_lexical must not both be 0"
TRIGGER_REQUIRED = "trigger_query is required"


def _limit() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=LIMIT_MAX, default=10, help_text=f"How many to return (1..{LIMIT_MAX})"
    )


def _unit(help_text: str, **kwargs: Any) -> serializers.FloatField:
    return serializers.FloatField(min_value=0, max_value=1, help_text=help_text, **kwargs)


class QuerySerializer(CopiedFieldsSerializer):
    """Query parameters: an empty value is the same as leaving the parameter out (SPEC 4.3)."""

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value({name: data[name] for name in self.fields if data.get(name) not in (None, "")})


class LimitQuerySerializer(QuerySerializer):
    limit = _limit()


class SimilarQuerySerializer(QuerySerializer):
    limit = _limit()
    similarity_threshold = _unit("Minimum content similarity", default=0.1)
    diversify_results = QueryBooleanField(default=True)
    weight_semantic = _unit("Semantic share of content (default: the weight in force)", required=False)
    weight_lexical = _unit("Lexical share of content (default: the weight in force)", required=False)
    weight_artistic = _unit("Accepted for compatibility; no effect", required=False)
    weight_technical = _unit("Accepted for compatibility; no effect", required=False)
    same_base_only = QueryBooleanField(default=True)
    active_only = QueryBooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        weights = weights_in_force()
        semantic = attrs.get("weight_semantic", weights.semantic)
        lexical = attrs.get("weight_lexical", weights.lexical)
        if semantic + lexical <= 0:
            raise serializers.ValidationError({"weight_semantic": [BOTH_WEIGHTS_ZERO]})
        return attrs


class TriggerQuerySerializer(QuerySerializer):
    trigger_query = serializers.CharField(
        max_length=TRIGGER_QUERY_MAX_LENGTH,
        required=False,
        allow_blank=True,  # a blank query is refused by validate() with the documented message
        help_text="The trigger phrase to look for (required, 1..200 characters)",
    )
    limit = _limit()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("trigger_query") or "").strip():
            raise serializers.ValidationError({"trigger_query": [TRIGGER_REQUIRED]})
        return attrs


class ForPromptRequestSerializer(StrictSerializer):
    prompt = StrictCharField(max_length=PROMPT_MAX_LENGTH, trim_whitespace=False)
    active_loras = serializers.ListField(child=StrictUUIDField(), max_length=ACTIVE_LORAS_MAX, default=list)
    limit = StrictIntegerField(min_value=1, max_value=LIMIT_MAX, default=10)
    include_explanations = StrictBooleanField(default=True)
    style_preference = StrictCharField(max_length=100, allow_null=True, allow_blank=True, default=None)
    technical_requirements = BoundedJSONObjectField(max_kib=16, allow_null=True, default=None)
    active_only = StrictBooleanField(default=False)

    def validate_prompt(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("prompt must not be empty")
        return value


class FeedbackRequestSerializer(StrictSerializer):
    session_id = StrictUUIDField()
    recommended_lora_id = StrictUUIDField()
    feedback_type = serializers.ChoiceField(
        choices=FeedbackType.choices,
        error_messages={"invalid_choice": f"feedback_type must be one of: {', '.join(FeedbackType.values)}"},
    )
    feedback_reason = StrictCharField(max_length=FEEDBACK_REASON_MAX_LENGTH, allow_null=True, default=None)
    implicit_signal = StrictBooleanField(default=False)


class FeedbackSerializer(serializers.ModelSerializer[RecommendationFeedback]):
    session_id = serializers.UUIDField()
    recommended_lora_id = serializers.UUIDField(source="adapter_id")

    class Meta:
        model = RecommendationFeedback
        fields = [
            "id", "session_id", "recommended_lora_id", "feedback_type", "feedback_reason", "implicit_signal",
            "created_at",
        ]  # fmt: skip


class PreferenceRequestSerializer(StrictSerializer):
    preference_type = serializers.ChoiceField(
        choices=PreferenceType.choices,
        error_messages={"invalid_choice": f"preference_type must be one of: {', '.join(PreferenceType.values)}"},
    )
    preference_value = StrictCharField(max_length=PREFERENCE_VALUE_MAX_LENGTH)
    confidence = StrictFloatField(min_value=0, max_value=1, default=0.5)
    explicit = StrictBooleanField(default=True)


class PreferenceSerializer(serializers.ModelSerializer[UserPreference]):
    class Meta:
        model = UserPreference
        fields = [
            "id", "preference_type", "preference_value", "confidence", "learned_from", "evidence_count",
            "last_evidence_at", "created_at", "updated_at",
        ]  # fmt: skip


class PreferenceListSerializer(serializers.Serializer[Any]):
    items = PreferenceSerializer(many=True)


class EmbeddingsComputeRequestSerializer(StrictSerializer):
    adapter_ids = serializers.ListField(child=StrictUUIDField(), default=list, max_length=100_000)
    force_recompute = StrictBooleanField(default=False)
    compute_all = StrictBooleanField(default=False)
    batch_size = StrictIntegerField(min_value=1, max_value=BATCH_SIZE_MAX, default=32)


class ForceQuerySerializer(QuerySerializer):
    force_recompute = QueryBooleanField(default=False)


class RebuildQuerySerializer(QuerySerializer):
    force = QueryBooleanField(default=False)


# --- responses (documentation of the shapes the services return) -------------------------------------------


class RecommendationMetadataSerializer(serializers.Serializer[Any]):
    tags = serializers.ListField(child=serializers.CharField())
    author = serializers.CharField(allow_null=True)
    sd_version = serializers.CharField(allow_null=True)
    base_model = serializers.CharField(allow_null=True)
    base_family = serializers.CharField()
    nsfw_level = serializers.IntegerField()
    sdnext_name = serializers.CharField()
    active = serializers.BooleanField()
    trigger = serializers.CharField(required=False, help_text="by-trigger: the phrase that matched")
    match = serializers.ChoiceField(choices=["exact", "partial", "fuzzy"], required=False)


class RecommendationItemSerializer(serializers.Serializer[Any]):
    lora_id = serializers.UUIDField()
    lora_name = serializers.CharField()
    lora_description = serializers.CharField(allow_null=True)
    similarity_score = serializers.FloatField()
    final_score = serializers.FloatField()
    semantic_similarity = serializers.FloatField(allow_null=True)
    lexical_similarity = serializers.FloatField(allow_null=True)
    artistic_similarity = serializers.FloatField(allow_null=True)
    technical_similarity = serializers.FloatField(allow_null=True)
    co_usage_score = serializers.FloatField()
    quality_boost = serializers.FloatField()
    popularity_boost = serializers.FloatField()
    recency_boost = serializers.FloatField()
    preference_boost = serializers.FloatField()
    feedback_adjustment = serializers.FloatField()
    explanation = serializers.CharField(allow_blank=True)
    metadata = RecommendationMetadataSerializer()


class RecommendationConfigSerializer(serializers.Serializer[Any]):
    device = serializers.CharField()
    gpu_enabled = serializers.BooleanField()
    semantic_enabled = serializers.BooleanField()
    embedding_model = serializers.CharField(allow_null=True)
    weights = serializers.DictField(child=serializers.FloatField())
    score_weights = serializers.DictField(child=serializers.FloatField())
    limit = serializers.IntegerField()


class RecommendationResponseSerializer(serializers.Serializer[Any]):
    session_id = serializers.UUIDField()
    target_lora_id = serializers.UUIDField(allow_null=True)
    prompt = serializers.CharField(allow_null=True)
    trigger_query = serializers.CharField(allow_null=True)
    total_candidates = serializers.IntegerField()
    processing_time_ms = serializers.FloatField()
    recommendation_config = RecommendationConfigSerializer()
    generated_at = serializers.DateTimeField()
    recommendations = RecommendationItemSerializer(many=True)


class RecommendationStatsSerializer(serializers.Serializer[Any]):
    total_loras = serializers.IntegerField()
    active_loras = serializers.IntegerField()
    loras_with_embeddings = serializers.IntegerField()
    embedding_coverage = serializers.FloatField()
    tfidf_indexed = serializers.IntegerField()
    semantic_available = serializers.BooleanField()
    embedding_model = serializers.CharField(allow_null=True)
    device = serializers.CharField()
    avg_recommendation_time_ms = serializers.FloatField()
    cache_hit_rate = serializers.FloatField()
    total_sessions = serializers.IntegerField()
    user_preferences_count = serializers.IntegerField()
    feedback_count = serializers.IntegerField()
    model_memory_usage_gb = serializers.FloatField()
    last_index_update = serializers.DateTimeField(allow_null=True)


class EmbeddingsQueuedSerializer(serializers.Serializer[Any]):
    job_id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    queued_count = serializers.IntegerField()


class EmbeddingStatusSerializer(serializers.Serializer[Any]):
    adapter_id = serializers.UUIDField()
    has_semantic_embedding = serializers.BooleanField()
    has_lexical_index = serializers.BooleanField()
    has_artistic_embedding = serializers.BooleanField()
    has_technical_embedding = serializers.BooleanField()
    has_extracted_features = serializers.BooleanField()
    embedding_model = serializers.CharField(allow_null=True)
    dim = serializers.IntegerField(allow_null=True)
    last_computed = serializers.DateTimeField(allow_null=True)
    needs_recomputation = serializers.BooleanField()
    semantic_available = serializers.BooleanField()


class IndexRebuildSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["rebuilt", "skipped", "empty"])
    indexed_items = serializers.IntegerField()
    index_path = serializers.CharField(allow_null=True)
    index_size_bytes = serializers.IntegerField()
    processing_time_seconds = serializers.FloatField()
    rebuilt_at = serializers.DateTimeField(allow_null=True)
    skipped = serializers.BooleanField()
    skipped_reason = serializers.CharField(allow_null=True)


class HealthChecksSerializer(serializers.Serializer[Any]):
    tfidf_ready = serializers.BooleanField()
    semantic_available = serializers.BooleanField()
    embeddings_coverage_ok = serializers.BooleanField()
    performance_acceptable = serializers.BooleanField()


class HealthMetricsSerializer(serializers.Serializer[Any]):
    embedding_coverage = serializers.FloatField()
    avg_response_time_ms = serializers.FloatField()
    memory_usage_gb = serializers.FloatField()
    total_loras = serializers.IntegerField()
    loras_with_embeddings = serializers.IntegerField()


class RecommendationHealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    checks = HealthChecksSerializer()
    metrics = HealthMetricsSerializer()
    timestamp = serializers.DateTimeField()
    error = serializers.CharField(required=False)
