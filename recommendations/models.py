"""Models of the `recommendations` app (SPEC 3.5): stored sentence embeddings, the sessions every recommendation
response records, feedback on them, and the user's preferences."""

from __future__ import annotations

import uuid

from django.db import models

from adapters.models import Adapter

FEEDBACK_REASON_MAX_LENGTH = 1000
PREFERENCE_VALUE_MAX_LENGTH = 100
TRIGGER_QUERY_MAX_LENGTH = 200


class AdapterEmbedding(models.Model):
    """One adapter's sentence embedding: ``dim`` little-endian float32 values, L2-normalised, as bytes (never
    pickle). A row whose ``model_name`` or ``text_sha256`` differs from the current ones is stale and ignored."""

    adapter = models.OneToOneField(Adapter, primary_key=True, on_delete=models.CASCADE, related_name="embedding")
    model_name = models.CharField(max_length=255)
    dim = models.IntegerField()
    vector = models.BinaryField()
    text_sha256 = models.CharField(max_length=64)
    quality_score = models.FloatField(default=0.5)
    popularity_score = models.FloatField(default=0.0)
    recency_score = models.FloatField(default=0.0)
    normalized_triggers = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["computed_at"], name="reco_embedding_computed")]

    def __str__(self) -> str:
        return f"{self.model_name} ({self.dim}) for {self.adapter_id}"


class EmbeddingState(models.Model):
    """One row whose ``version`` database triggers bump on every write to the embeddings table
    (``recommendations/db_triggers.py``): the per-process index reads it on every request to know whether its
    vectors are current, one indexed read whatever the table's size and however it was written."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"embeddings version {self.version}"


class UsageState(models.Model):
    """One row whose ``version`` database triggers bump whenever the co-usage history changes: a succeeded
    generation job written, deleted, or changing status, kind or creation time, and any adapter link of such a job
    (``recommendations/usage_triggers.py``). A process that keeps co-usage in memory reads it to know whether what it
    keeps is current."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)
    # The changes logged up to this version are gone (pruned, or a bulk load that logs none): a history kept at an
    # older version cannot catch up from ``UsageChange`` and is loaded again.
    pruned_through = models.BigIntegerField(db_default=0)  # a database default: the triggers insert the row

    def __str__(self) -> str:
        return f"usage version {self.version}"


class UsageChange(models.Model):
    """A generation job whose part of the co-usage history changed at ``version``, logged by the same triggers in
    the same transaction: a process that keeps the history reads again only the jobs logged since its version
    (``usage_history.py``). No foreign key: a deleted job is logged too. The oldest rows are pruned
    (``prune_usage_changes``), and ``UsageState.pruned_through`` says how far."""

    id = models.BigAutoField(primary_key=True)
    version = models.BigIntegerField(db_index=True)
    job_id = models.UUIDField()

    def __str__(self) -> str:
        return f"job {self.job_id} at usage version {self.version}"


class SessionKind(models.TextChoices):
    SIMILAR = "similar"
    FOR_PROMPT = "for_prompt"
    BY_TRIGGER = "by_trigger"
    WORKS_WELL_WITH = "works_well_with"


class RecommendationSession(models.Model):
    """What one recommendation response returned; feedback refers to it (``session_id``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=SessionKind.choices)
    context_key = models.CharField(max_length=100, db_index=True)
    context_prompt = models.TextField(null=True, blank=True)
    trigger_query = models.CharField(max_length=TRIGGER_QUERY_MAX_LENGTH, null=True, blank=True)
    target_adapter = models.ForeignKey(
        Adapter, null=True, blank=True, on_delete=models.SET_NULL, related_name="recommendation_sessions"
    )
    active_loras = models.JSONField(default=list, blank=True)
    recommendations = models.JSONField(default=list, blank=True)
    processing_time_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.context_key}"

    def recommended_ids(self) -> set[str]:
        return {str(item.get("lora_id")) for item in self.recommendations or [] if isinstance(item, dict)}


class FeedbackType(models.TextChoices):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    ACTIVATED = "activated"
    IGNORED = "ignored"
    DISMISSED = "dismissed"


# Feedback that removes the adapter from later responses for the same context (SPEC 6.7.2, context exclusion).
EXCLUDING_FEEDBACK = (FeedbackType.NEGATIVE, FeedbackType.DISMISSED)


class RecommendationFeedback(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(RecommendationSession, on_delete=models.CASCADE, related_name="feedback")
    adapter = models.ForeignKey(Adapter, on_delete=models.CASCADE, related_name="recommendation_feedback")
    feedback_type = models.CharField(max_length=16, choices=FeedbackType.choices)
    feedback_reason = models.TextField(null=True, blank=True, max_length=FEEDBACK_REASON_MAX_LENGTH)
    implicit_signal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["adapter", "created_at"], name="reco_feedback_adapter_created")]

    def __str__(self) -> str:
        return f"{self.feedback_type} on {self.adapter_id}"


class PreferenceType(models.TextChoices):
    ARCHETYPE = "archetype"
    STYLE = "style"
    TECHNICAL = "technical"
    AUTHOR = "author"
    TAG = "tag"
    BASE_MODEL = "base_model"


class PreferenceSource(models.TextChoices):
    EXPLICIT = "explicit"
    FEEDBACK = "feedback"


class UserPreference(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    preference_type = models.CharField(max_length=16, choices=PreferenceType.choices)
    preference_value = models.CharField(max_length=PREFERENCE_VALUE_MAX_LENGTH)
    confidence = models.FloatField(default=0.5)
    learned_from = models.CharField(max_length=16, choices=PreferenceSource.choices, default=PreferenceSource.EXPLICIT)
    evidence_count = models.IntegerField(default=1)
    last_evidence_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["preference_type", "preference_value"]
        constraints = [
            models.UniqueConstraint(fields=["preference_type", "preference_value"], name="reco_preference_unique"),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1), name="reco_preference_confidence"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.preference_type}: {self.preference_value}"
