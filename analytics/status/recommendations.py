"""The recommendations block of the status (SPEC 5.10): what is ready, without building or loading anything."""

from __future__ import annotations

from typing import Any

from recommendations.encoder import encoder_loaded, model_name, semantic_available
from recommendations.index import index_is_current


def recommendations_status(*, gpu_available: bool) -> dict[str, Any]:
    """``tfidf_ready`` is whether this process holds a current lexical index (one fingerprint read, never a build)."""
    return {
        "tfidf_ready": index_is_current(),
        "semantic_available": semantic_available(),
        "models_loaded": encoder_loaded() is not None,
        "embedding_model": model_name() or None,
        "gpu_available": gpu_available,
    }
