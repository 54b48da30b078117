"""The weights in force (SPEC 6.7.2): the defaults below, overridden key by key by ``LORAFORGE_RECO_WEIGHTS``
(validated at start-up). Chosen from ``bench/reco_quality.py``; see docs/DECISIONS.md."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

DEFAULT_WEIGHTS: dict[str, float] = {
    "semantic": 0.6,
    "lexical": 0.4,
    "content": 0.75,
    "co_usage": 0.10,
    "quality": 0.05,
    "popularity": 0.05,
    "recency": 0.05,
}
SCORE_TERMS = ("content", "co_usage", "quality", "popularity", "recency")


@dataclass(frozen=True)
class Weights:
    semantic: float
    lexical: float
    content: float
    co_usage: float
    quality: float
    popularity: float
    recency: float

    def content_pair(self, semantic: float | None = None, lexical: float | None = None) -> tuple[float, float]:
        """``(ws, wl)`` normalised to sum 1; query overrides replace the configured side they name."""
        ws = self.semantic if semantic is None else semantic
        wl = self.lexical if lexical is None else lexical
        total = ws + wl
        if total <= 0:
            return (0.0, 1.0)
        return (ws / total, wl / total)

    def score_weights(self) -> dict[str, float]:
        return {term: getattr(self, term) for term in SCORE_TERMS}


def weights_in_force() -> Weights:
    return Weights(**{**DEFAULT_WEIGHTS, **(settings.LORAFORGE_RECO_WEIGHTS or {})})
