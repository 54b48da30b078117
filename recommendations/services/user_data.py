"""What the user tells the recommender: feedback on a session's items and preferences (SPEC 3.5, 5.6)."""

from __future__ import annotations

from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from adapters.models import Adapter
from loraforge.errors import NotFound
from recommendations.models import PreferenceSource, RecommendationFeedback, RecommendationSession, UserPreference

SESSION_NOT_FOUND = "Recommendation session not found"
ADAPTER_NOT_FOUND = "Adapter not found"
PREFERENCE_NOT_FOUND = "Preference not found"
NOT_RECOMMENDED = "Adapter was not recommended in this session"
UPSERT_ATTEMPTS = 3


def feedback_create(
    *, session_id: UUID, adapter_id: UUID, feedback_type: str, feedback_reason: str | None = None,
    implicit_signal: bool = False,
) -> RecommendationFeedback:  # fmt: skip
    session = RecommendationSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound(SESSION_NOT_FOUND)
    adapter = Adapter.objects.filter(pk=adapter_id).only("id").first()
    if adapter is None:
        raise NotFound(ADAPTER_NOT_FOUND)
    if str(adapter.pk) not in session.recommended_ids():
        raise ValidationError({"recommended_lora_id": [NOT_RECOMMENDED]})
    return RecommendationFeedback.objects.create(
        session=session,
        adapter=adapter,
        feedback_type=feedback_type,
        feedback_reason=feedback_reason,
        implicit_signal=implicit_signal,
    )


def normalize_preference_value(value: str) -> str:
    return value.strip().lower()


def preference_upsert(
    *, preference_type: str, preference_value: str, confidence: float = 0.5, explicit: bool = True
) -> tuple[UserPreference, bool]:
    """Create the preference, or update the one with the same type and normalised value: confidence overwritten,
    ``learned_from`` set, one more piece of evidence. Safe under races (the unique constraint decides)."""
    value = normalize_preference_value(preference_value)
    source = PreferenceSource.EXPLICIT if explicit else PreferenceSource.FEEDBACK
    for _ in range(UPSERT_ATTEMPTS):
        now = timezone.now()
        updated = UserPreference.objects.filter(preference_type=preference_type, preference_value=value).update(
            confidence=confidence,
            learned_from=source,
            evidence_count=F("evidence_count") + 1,
            last_evidence_at=now,
            updated_at=now,
        )
        if updated:
            return UserPreference.objects.get(preference_type=preference_type, preference_value=value), False
        try:
            with transaction.atomic():
                created = UserPreference.objects.create(
                    preference_type=preference_type,
                    preference_value=value,
                    confidence=confidence,
                    learned_from=source,
                    last_evidence_at=now,
                )
            return created, True
        except IntegrityError:  # created meanwhile by another request: update it
            continue
    raise RuntimeError("preference upsert did not settle")  # pragma: no cover - needs three lost races in a row


def preference_delete(*, preference_id: UUID) -> None:
    deleted, _ = UserPreference.objects.filter(pk=preference_id).delete()
    if not deleted:
        raise NotFound(PREFERENCE_NOT_FOUND)
