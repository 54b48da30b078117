"""Reads of the recommendations app: stats, health, an adapter's embedding status (SPEC 5.6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, F, Q
from django.utils import timezone

from adapters.models import Adapter
from loraforge.prepared import PreparedQuery
from recommendations.documents import semantic_text, text_sha256
from recommendations.encoder import cuda_memory_gb, device_name, model_name, semantic_available
from recommendations.index import RecoIndex, cache_hit_rate, index_current
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference

# A recommendation's target by id, only its id read: the services read nothing else of it (the snapshot has the rest),
# and the whole row (76 columns, JSON ones converted) cost a fifth of what a cached similar costs besides.
_TARGET: PreparedQuery[Adapter] = PreparedQuery(
    lambda pk: Adapter.objects.order_by().filter(pk=pk).only("id"),
    "00000000-0000-4000-8000-000000000000",
    fields=[Adapter._meta.pk],
)

COVERAGE_OK = 0.5
SLOW_AVERAGE_MS = 2000.0
INDEX_UNAVAILABLE = "The lexical index cannot be built"


def _average_ms() -> float:
    since = timezone.now() - timedelta(hours=24)
    average = RecommendationSession.objects.filter(created_at__gte=since).aggregate(value=Avg("processing_time_ms"))
    return round(float(average["value"] or 0.0), 2)


def _coverage(index: RecoIndex) -> tuple[int, float]:
    total = len(index.catalogue)
    current = index.semantic.count if index.semantic is not None else 0
    return current, (current / total if total else 0.0)


def embedding_coverage() -> tuple[int, int]:
    """(adapters with a current vector, all adapters) in one query, without building the index: a vector is current
    when it is of the configured model and was computed (or checked) since the adapter's last write."""
    name = model_name()
    current = Q(embedding__model_name=name, embedding__computed_at__gte=F("updated_at")) if name else Q(pk__in=[])
    counts = Adapter.objects.aggregate(current=Count("pk", filter=current), total=Count("pk"))
    return int(counts["current"]), int(counts["total"])


def recommendation_stats() -> dict[str, Any]:
    index = index_current()
    current, coverage = _coverage(index)
    return {
        "total_loras": len(index.catalogue),
        "active_loras": int(index.catalogue.active.sum()),
        "loras_with_embeddings": current,
        "embedding_coverage": round(coverage, 4),
        "tfidf_indexed": len(index.catalogue) if index.lexical is not None else 0,
        "semantic_available": semantic_available(),
        "embedding_model": model_name() or None,
        "device": device_name(),
        "avg_recommendation_time_ms": _average_ms(),
        "cache_hit_rate": round(cache_hit_rate(), 4),
        "total_sessions": RecommendationSession.objects.count(),
        "user_preferences_count": UserPreference.objects.count(),
        "feedback_count": RecommendationFeedback.objects.count(),
        "model_memory_usage_gb": round(cuda_memory_gb(), 4),
        "last_index_update": index.built_at,
    }


def recommendation_health() -> dict[str, Any]:
    semantic = semantic_available()
    average = _average_ms()
    body: dict[str, Any] = {"timestamp": timezone.now()}
    try:
        index = index_current()
    except Exception:
        total = Adapter.objects.count()
        body |= {
            "status": "unhealthy",
            "error": INDEX_UNAVAILABLE,
            "checks": {"tfidf_ready": False, "semantic_available": semantic, "embeddings_coverage_ok": False,
                       "performance_acceptable": average < SLOW_AVERAGE_MS},
            "metrics": {"embedding_coverage": 0.0, "avg_response_time_ms": average, "memory_usage_gb": cuda_memory_gb(),
                        "total_loras": total, "loras_with_embeddings": 0},
        }  # fmt: skip
        return body
    current, coverage = _coverage(index)
    total = len(index.catalogue)
    checks = {
        "tfidf_ready": index.lexical is not None or total == 0,
        "semantic_available": semantic,
        # "semantic disabled" covers a model switched off and one that cannot load (no sentence-transformers)
        "embeddings_coverage_ok": coverage >= COVERAGE_OK or total == 0 or not semantic,
        "performance_acceptable": average < SLOW_AVERAGE_MS,
    }
    degraded = not (checks["tfidf_ready"] and checks["embeddings_coverage_ok"] and checks["performance_acceptable"])
    body |= {
        "status": "degraded" if degraded else "healthy",
        "checks": checks,
        "metrics": {
            "embedding_coverage": round(coverage, 4),
            "avg_response_time_ms": average,
            "memory_usage_gb": round(cuda_memory_gb(), 4),
            "total_loras": total,
            "loras_with_embeddings": current,
        },
    }
    return body


def embedding_status(adapter: Adapter) -> dict[str, Any]:
    stored = AdapterEmbedding.objects.filter(adapter=adapter).first()
    current = (
        stored is not None
        and stored.model_name == model_name()
        and stored.text_sha256 == text_sha256(semantic_text(adapter))
    )
    index = index_current(semantic=False)
    semantic = semantic_available()
    return {
        "adapter_id": str(adapter.pk),
        "has_semantic_embedding": current,
        "has_lexical_index": index.lexical is not None and str(adapter.pk) in index.catalogue.position,
        "has_artistic_embedding": False,
        "has_technical_embedding": False,
        "has_extracted_features": bool(adapter.header_metadata),
        "embedding_model": stored.model_name if stored else None,
        "dim": stored.dim if stored else None,
        "last_computed": stored.computed_at if stored else None,
        "needs_recomputation": semantic and not current,
        "semantic_available": semantic,
    }


def adapter_target(pk: str) -> Adapter | None:
    """The adapter with this id (a UUID string) with only its id loaded, or ``None``."""
    found = _TARGET.instances(pk)
    return found[0] if found else None
