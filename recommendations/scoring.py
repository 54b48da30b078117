"""The per-adapter score terms of SPEC 6.7.2 that do not depend on the query: quality, popularity, recency, and
the preference and feedback adjustments."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PREFERENCE_BOOST_MAX = 0.2
PREFERENCE_BOOST_STEP = 0.1
FEEDBACK_WEIGHTS = {"positive": 0.05, "activated": 0.03, "negative": -0.15, "dismissed": -0.10, "ignored": -0.02}
FEEDBACK_MIN, FEEDBACK_MAX = -0.5, 0.2
FEEDBACK_DAYS = 90
CO_USAGE_DAYS = 180
RECENCY_DAYS = 365


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _stat(stats: Mapping[str, Any] | None, *keys: str) -> float:
    for key in keys:
        value = (stats or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return float(value)
    return 0.0


def quality_score(stats: Mapping[str, Any] | None) -> float:
    """0.5 without stats; else rating, downloads and favourites, capped at 1."""
    if not stats:
        return 0.5
    rating = _stat(stats, "rating")
    downloads = _stat(stats, "downloadCount")
    favorites = _stat(stats, "favoriteCount", "thumbsUpCount")
    score = 0.6 * rating / 5 if rating > 0 else 0.0
    score += 0.3 * min(math.log10(downloads + 1) / 5, 1) + 0.1 * min(math.log10(favorites + 1) / 3, 1)
    return min(1.0, score)


def popularity_score(stats: Mapping[str, Any] | None) -> float:
    return min(math.log10(_stat(stats, "downloadCount") + 1) / 6, 1.0)


def recency_score(published_at: datetime | None, created_at: datetime | None, now: datetime) -> float:
    moment = published_at or created_at
    if moment is None:
        return 0.0
    return max(0.0, 1 - (now - moment).total_seconds() / 86400 / RECENCY_DAYS)


def feedback_adjustment(counts: Mapping[str, int]) -> float:
    """``clamp(0.05·positive + 0.03·activated - 0.15·negative - 0.10·dismissed - 0.02·ignored, -0.5, 0.2)``."""
    total = sum(FEEDBACK_WEIGHTS.get(kind, 0.0) * count for kind, count in counts.items())
    return clamp(total, FEEDBACK_MIN, FEEDBACK_MAX)


def preference_boosts(size: int, matched: Iterable[tuple[Any, float]]) -> np.ndarray:
    """Every row's ``min(0.2, sum of 0.1·confidence)`` over the preferences it matches. ``matched`` holds each
    preference's rows (distinct row numbers, a sequence or an array) and confidence."""
    import numpy as np

    total = np.zeros(size)
    for rows, confidence in matched:
        total[rows] += PREFERENCE_BOOST_STEP * confidence
    return np.minimum(total, PREFERENCE_BOOST_MAX)
