"""The four recommendation operations (SPEC 5.6, 6.7.3). Each scores every candidate, records a
RecommendationSession and returns the RecommendationResponse."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils import timezone

from adapters.models import Adapter
from recommendations import engine
from recommendations.cousage import co_usage_of, co_usage_with
from recommendations.encoder import device_name, encoder_get, model_name, semantic_available
from recommendations.index import RecoIndex, index_current, index_is_current
from recommendations.models import RecommendationSession, SessionKind
from recommendations.triggers import (
    EXACT,
    EXACT_SCORE,
    FUZZY,
    FUZZY_FACTOR,
    FUZZY_MIN_COSINE,
    PARTIAL_SCORE,
    TIER_ORDER,
    normalize_phrase,
)
from recommendations.weights import Weights, weights_in_force

_SPACES = re.compile(r"\s+")


@dataclass
class Outcome:
    """What an operation found, before it is recorded."""

    kind: str
    context_key: str
    items: list[dict[str, Any]]
    total_candidates: int
    pair: tuple[float, float]
    limit: int
    semantic_used: bool
    target: str | None = None
    prompt: str | None = None
    trigger_query: str | None = None
    active_loras: list[str] | None = None


def _response(outcome: Outcome, weights: Weights, started: float, *, record: bool = True) -> dict[str, Any]:
    """The RecommendationResponse; with ``record`` (the API), a RecommendationSession is stored for it (the admin's
    read-only panels record none)."""
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    session = RecommendationSession(
        kind=outcome.kind,
        context_key=outcome.context_key[:100],
        context_prompt=outcome.prompt,
        trigger_query=outcome.trigger_query,
        target_adapter_id=outcome.target,
        active_loras=outcome.active_loras or [],
        recommendations=[
            {"lora_id": item["lora_id"], "rank": rank, "final_score": item["final_score"]}
            for rank, item in enumerate(outcome.items, start=1)
        ],
        processing_time_ms=elapsed_ms,
    )
    if record:
        session.save()
    device = device_name()
    return {
        "session_id": str(session.pk),
        "target_lora_id": outcome.target,
        "prompt": outcome.prompt,
        "trigger_query": outcome.trigger_query,
        "total_candidates": outcome.total_candidates,
        "processing_time_ms": elapsed_ms,
        "recommendation_config": {
            "device": device,
            "gpu_enabled": device == "cuda",
            "semantic_enabled": outcome.semantic_used or semantic_available(),
            "embedding_model": model_name() or None,
            "weights": {"semantic": round(outcome.pair[0], 4), "lexical": round(outcome.pair[1], 4)},
            "score_weights": weights.score_weights(),
            "limit": outcome.limit,
        },
        "generated_at": session.created_at or timezone.now(),
        "recommendations": outcome.items,
    }


def _index_with(adapter: Adapter) -> tuple[RecoIndex, int]:
    """The current index and the target's row in it. A target created after the index's fingerprint was read is not
    in it: the index follows it then, and the request uses that one throughout (a row is a position in its own
    index only)."""
    index = index_current()
    row = index.catalogue.position.get(str(adapter.pk))
    if row is None:
        index = index_current()
        row = index.catalogue.position[str(adapter.pk)]
    return index, row


def _target_scores(
    index: RecoIndex, row: int, adapter: Adapter, pair: tuple[float, float], *, same_base: bool = False
) -> engine.Scores:
    """Every row's content and co-usage with the target at ``row`` (similar); with ``same_base``, the lexical and
    semantic sides are computed for the target's family only (the other rows are 0)."""
    runs = engine.family_runs(index, str(index.catalogue.base_family[row])) if same_base else None
    lexical = index.lexical.row_similarity(row, runs) if index.lexical else np.zeros(len(index.catalogue))
    semantic = None
    if index.semantic is not None and index.semantic.has[row]:
        semantic = index.semantic.similarity(index.semantic.matrix[row], runs)
    scores = engine.content_scores(index, lexical, semantic, pair)
    engine.co_usage_array(index, co_usage_with(str(adapter.pk)), scores)
    return scores


def _partner_scores(index: RecoIndex, row: int, adapter: Adapter, pair: tuple[float, float]) -> engine.Scores:
    """works-well-with's ``_target_scores``: it returns only the adapters used with the target, so their content is
    the only content computed (the other rows are 0), each row's exactly as over every row. A target used with none
    costs no product at all."""
    size = len(index.catalogue)
    partners = co_usage_with(str(adapter.pk))
    rows = partners.rows_in(index.catalogue.position)
    rows = np.sort(rows[rows >= 0])
    lexical = np.zeros(size)
    if index.lexical is not None and len(rows):
        lexical[rows] = index.lexical.rows_similarity(row, rows)
    semantic = None
    if index.semantic is not None and index.semantic.has[row]:
        semantic = np.zeros(size, dtype=np.float32)
        if len(rows):
            semantic[rows] = index.semantic.similarity_at(index.semantic.matrix[row], rows)
    scores = engine.content_scores(index, lexical, semantic, pair)
    engine.co_usage_array(index, partners, scores)
    return scores


def _target_items(
    index: RecoIndex, rows: list[int], target_row: int, *, final: np.ndarray, scores: engine.Scores,
    adjustments: engine.Adjustments, weights: Weights,
) -> list[dict[str, Any]]:  # fmt: skip
    """The response items of rows recommended for a target adapter, explained against it."""
    return [
        engine.item(
            index, r, final=final, scores=scores, adjustments=adjustments, weights=weights,
            explain=engine.explanation(index, r, scores, adjustments, target_row=target_row),
        )
        for r in rows
    ]  # fmt: skip


def recommend_similar(
    *,
    adapter: Adapter,
    limit: int = 10,
    similarity_threshold: float = 0.1,
    diversify_results: bool = True,
    weight_semantic: float | None = None,
    weight_lexical: float | None = None,
    same_base_only: bool = True,
    active_only: bool = False,
    record: bool = True,
) -> dict[str, Any]:
    started = time.perf_counter()
    weights = weights_in_force()
    pair = weights.content_pair(weight_semantic, weight_lexical)
    index, row = _index_with(adapter)
    scores = _target_scores(index, row, adapter, pair, same_base=same_base_only)
    context_key = f"similar:{adapter.pk}"
    excluded = engine.excluded_for_context(context_key) | {str(adapter.pk)}
    mask = engine.candidate_mask(index, exclude=excluded, active_only=active_only)
    if same_base_only:
        mask &= engine.family_mask(index, str(index.catalogue.base_family[row]))
    total = int(mask.sum())
    mask &= scores.content >= similarity_threshold
    adjustments = engine.adjustments_load(index)
    final = engine.final_scores(index, scores, adjustments, weights)
    margin = engine.DIVERSITY_PENALTY if diversify_results else 0.0
    rows = engine.ranked(index, np.flatnonzero(mask), final, keep=limit, margin=margin)
    rows = engine.diversified(index.lexical, rows, final, limit) if diversify_results else rows[:limit]
    items = _target_items(index, rows, row, final=final, scores=scores, adjustments=adjustments, weights=weights)
    outcome = Outcome(
        SessionKind.SIMILAR, context_key, items, total, pair, limit, scores.semantic is not None, target=str(adapter.pk)
    )
    return _response(outcome, weights, started, record=record)


def prompt_context_key(prompt: str) -> str:
    normalised = _SPACES.sub(" ", prompt.strip().lower())
    return "prompt:" + hashlib.sha1(normalised.encode("utf-8"), usedforsecurity=False).hexdigest()


def _prompt_semantic(index: RecoIndex, prompt: str) -> np.ndarray | None:
    """The prompt's cosine to every current vector (the model loads only when some adapter has one)."""
    if index.semantic is None:
        return None
    encoder = encoder_get()
    if encoder is None or encoder.dim != index.semantic.dim:
        return None
    return index.semantic.similarity(encoder.encode([prompt.lower()])[0])


def recommend_for_prompt(
    *,
    prompt: str,
    active_loras: list[str] | None = None,
    limit: int = 10,
    include_explanations: bool = True,
    style_preference: str | None = None,
    technical_requirements: dict[str, Any] | None = None,
    active_only: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    weights = weights_in_force()
    pair = weights.content_pair()
    index = index_current()
    size = len(index.catalogue)
    lexical = index.lexical.text_similarity(prompt) if index.lexical else np.zeros(size)
    semantic = _prompt_semantic(index, prompt)
    scores = engine.content_scores(index, lexical, semantic, pair)
    known = [str(a) for a in dict.fromkeys(active_loras or []) if str(a) in index.catalogue.position]
    for co_usage in co_usage_of(known).values():
        engine.co_usage_array(index, co_usage, scores, share=1 / len(known))
    context_key = prompt_context_key(prompt)
    mask = engine.candidate_mask(
        index, exclude=engine.excluded_for_context(context_key) | set(known), active_only=active_only
    )
    family = (technical_requirements or {}).get("base_family")
    if isinstance(family, str) and family:
        mask &= index.catalogue.base_family == family
    style = (style_preference or "").strip().lower()
    if style:
        scores.extra = np.array([0.05 if style in document else 0.0 for document in index.catalogue.documents])
    total = int(mask.sum())
    mask &= (scores.content > 0) | (scores.co_usage > 0)
    adjustments = engine.adjustments_load(index)
    final = engine.final_scores(index, scores, adjustments, weights)
    rows = engine.ranked(index, np.flatnonzero(mask), final, keep=limit)[:limit]
    items = [
        engine.item(
            index, r, final=final, scores=scores, adjustments=adjustments, weights=weights,
            explain=engine.explanation(index, r, scores, adjustments) if include_explanations else "",
        )
        for r in rows
    ]  # fmt: skip
    outcome = Outcome(
        SessionKind.FOR_PROMPT, context_key, items, total, pair, limit, semantic is not None,
        prompt=prompt, active_loras=known,
    )  # fmt: skip
    return _response(outcome, weights, started)


def _trigger_matches(index: RecoIndex, query: str) -> dict[int, tuple[str, float, str]]:
    """Each row's best match: ``(tier, score, phrase)`` (exact > partial > fuzzy, then the higher score)."""
    lexical = index.lexical
    best: dict[int, tuple[str, float, str]] = {}
    if lexical is None or not lexical.phrase_texts:
        return best

    def offer(row: int, tier: str, score: float, phrase: str) -> None:
        current = best.get(row)
        if current is None or (TIER_ORDER[tier], -score) < (TIER_ORDER[current[0]], -current[1]):
            best[row] = (tier, score, phrase)

    for position, tier in lexical.phrase_lookup.word_matches(query):
        score = EXACT_SCORE if tier == EXACT else PARTIAL_SCORE
        offer(int(lexical.phrase_rows[position]), tier, score, lexical.phrase_texts[position])
    cosines = lexical.phrase_cosines(query)
    for hit in np.flatnonzero(cosines >= FUZZY_MIN_COSINE):
        offer(int(lexical.phrase_rows[hit]), FUZZY, FUZZY_FACTOR * float(cosines[hit]), lexical.phrase_texts[int(hit)])
    return best


def recommend_by_trigger(*, trigger_query: str, limit: int = 10) -> dict[str, Any]:
    started = time.perf_counter()
    weights = weights_in_force()
    index = index_current(semantic=False)
    size = len(index.catalogue)
    query = normalize_phrase(trigger_query)
    matches = _trigger_matches(index, query) if query else {}
    match_score = np.zeros(size)
    for row, (_, score, _) in matches.items():
        match_score[row] = score
    scores = engine.Scores(
        content=match_score, lexical=np.zeros(size), semantic=None, semantic_rows=np.zeros(size, dtype=bool),
        co_usage=np.zeros(size),
    )  # fmt: skip
    context_key = f"trigger:{query}"
    excluded = engine.excluded_for_context(context_key)
    rows = [row for row in matches if index.catalogue.ids[row] not in excluded]
    adjustments = engine.adjustments_load(index)
    final = engine.final_scores(index, scores, adjustments, weights)
    name_rank = index.catalogue.name_rank
    rows.sort(key=lambda r: (TIER_ORDER[matches[r][0]], -engine.reported(final[r]), name_rank[r]))
    items = []
    for r in rows[:limit]:
        tier, _, phrase = matches[r]
        items.append(
            engine.item(
                index, r, final=final, scores=scores, adjustments=adjustments, weights=weights,
                explain=engine.explanation(index, r, scores, adjustments, prefix=f"Trigger {tier} match: {phrase}"),
                metadata={"trigger": phrase, "match": tier},
            )
        )  # fmt: skip
    outcome = Outcome(
        SessionKind.BY_TRIGGER, context_key, items, len(matches), weights.content_pair(), limit, False,
        trigger_query=trigger_query,
    )  # fmt: skip
    return _response(outcome, weights, started)


def recommend_works_well_with(*, adapter: Adapter, limit: int = 10, record: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    weights = weights_in_force()
    pair = weights.content_pair()
    index, row = _index_with(adapter)
    scores = _partner_scores(index, row, adapter, pair)
    context_key = f"cousage:{adapter.pk}"
    excluded = engine.excluded_for_context(context_key) | {str(adapter.pk)}
    mask = engine.candidate_mask(index, exclude=excluded, active_only=False) & (scores.co_usage > 0)
    adjustments = engine.adjustments_load(index)
    final = engine.final_scores(index, scores, adjustments, weights)
    rows = engine.by_co_usage(index, np.flatnonzero(mask), scores.co_usage, final, limit)
    items = _target_items(index, rows, row, final=final, scores=scores, adjustments=adjustments, weights=weights)
    outcome = Outcome(
        SessionKind.WORKS_WELL_WITH, context_key, items, int(mask.sum()), pair, limit, scores.semantic is not None,
        target=str(adapter.pk),
    )  # fmt: skip
    return _response(outcome, weights, started, record=record)


def index_rebuild(*, force: bool = False) -> dict[str, Any]:
    """``POST /recommendations/index/rebuild``: this process's lexical index, rebuilt when stale or ``force``."""
    started = time.perf_counter()
    up_to_date = index_is_current()
    index = index_current(force=force, semantic=False)
    skipped = up_to_date and not force
    status = "skipped" if skipped else ("empty" if not len(index.catalogue) else "rebuilt")
    return {
        "status": status,
        "indexed_items": len(index.catalogue),
        "index_path": None,
        "index_size_bytes": index.memory_bytes,
        "processing_time_seconds": round(time.perf_counter() - started, 4),
        "rebuilt_at": index.built_at,
        "skipped": skipped,
        "skipped_reason": "up_to_date" if skipped else None,
    }
