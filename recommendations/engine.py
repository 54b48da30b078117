"""Scoring (SPEC 6.7.2-6.7.3) over the per-process index: content (semantic and lexical), co-usage, the heuristic
terms, preferences and feedback, vectorised over every candidate; the items returned are then explained."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, SupportsFloat

import numpy as np
from django.db.models import Count
from django.utils import timezone

from loraforge.prepared import PreparedQuery
from recommendations.catalogue import Catalogue, Runs
from recommendations.cousage import Partners
from recommendations.index import RecoIndex
from recommendations.lexical import LexicalIndex, RowBlock
from recommendations.models import EXCLUDING_FEEDBACK, RecommendationFeedback, UserPreference
from recommendations.scoring import FEEDBACK_DAYS, feedback_adjustment, preference_boosts
from recommendations.weights import Weights

KNOWN_FAMILY_EXCLUDED = ("unknown", "other")  # never filtered out by a same-base rule
DIVERSITY_PENALTY = 0.1
CONTENT_EXPLAINED = 0.3
SHARED_TAGS_SHOWN = 3
REPORTED_DIGITS = 4  # scores are reported, and so compared for ties, at this precision
PREFERENCE_MEMO_MAX = 256  # preferences whose rows a snapshot keeps (more: the memo starts again)


def reported(value: SupportsFloat) -> float:
    """A score as the response reports it; ranking ties are ties of these values (then the name decides)."""
    return round(float(value), REPORTED_DIGITS)


@dataclass
class Scores:
    """Per-row arrays of one request (rows of the index's catalogue)."""

    content: np.ndarray
    lexical: np.ndarray
    semantic: np.ndarray | None  # None when no semantic similarity was computed
    semantic_rows: np.ndarray  # bool: the row's content used its semantic similarity
    co_usage: np.ndarray
    extra: np.ndarray | None = None  # added to the final score (style preference)
    co_usage_jobs: np.ndarray = field(init=False)  # int per row: n_ab, summed over the targets

    def __post_init__(self) -> None:
        self.co_usage_jobs = np.zeros(len(self.co_usage), dtype=np.int64)


@dataclass
class Adjustments:
    """What the user said: preferences and feedback, as per-row arrays, and the reasons per row."""

    preference: np.ndarray
    feedback: np.ndarray
    preference_rows: list[tuple[str, str, np.ndarray]]  # each preference in force and its rows, ascending

    def preference_matches(self, row: int) -> list[tuple[str, str]]:
        """The preferences ``row`` matches (for its explanation)."""
        return [(kind, value) for kind, value, rows in self.preference_rows if _holds(rows, row)]


def _holds(rows: np.ndarray, row: int) -> bool:
    at = int(np.searchsorted(rows, row))
    return at < len(rows) and int(rows[at]) == row


def content_scores(
    index: RecoIndex, lexical: np.ndarray, semantic: np.ndarray | None, pair: tuple[float, float]
) -> Scores:
    """``ws·semantic + wl·lexical`` where both sides have current vectors, else lexical alone."""
    content = lexical.copy()
    rows = np.zeros(len(lexical), dtype=bool)
    if semantic is not None and index.semantic is not None:
        rows = index.semantic.has.copy()
        content[rows] = pair[0] * semantic[rows] + pair[1] * lexical[rows]
    return Scores(
        content=content, lexical=lexical, semantic=semantic, semantic_rows=rows, co_usage=np.zeros(len(lexical))
    )


def co_usage_array(index: RecoIndex, partners: Partners, scores: Scores, *, share: float = 1.0) -> None:
    """Add ``share`` x co-usage to the scores (for-prompt averages over its active adapters), and the jobs counted."""
    if not len(partners):
        return
    rows = partners.rows_in(index.catalogue.position)
    known = rows >= 0  # a partner the snapshot does not have yet
    rows = rows[known]  # each partner once, so the additions below never meet the same row twice
    scores.co_usage[rows] += share * partners.scores[known]
    scores.co_usage_jobs[rows] += partners.jobs[known]


# The reads every recommendation makes, compiled once (compiling them cost more than SQLite takes to answer them).
_FEEDBACK_COUNTS: PreparedQuery[RecommendationFeedback] = PreparedQuery(
    lambda since: (
        RecommendationFeedback.objects.filter(created_at__gte=since)
        .values("adapter_id", "feedback_type")
        .annotate(count=Count("id"))
        .values_list("adapter_id", "feedback_type", "count")
    ),
    datetime(2000, 1, 1, tzinfo=UTC),
    fields=[RecommendationFeedback._meta.get_field("created_at")],
)
_PREFERENCES: PreparedQuery[UserPreference] = PreparedQuery(
    lambda: UserPreference.objects.values_list("preference_type", "preference_value", "confidence")
)
_EXCLUDED: PreparedQuery[RecommendationFeedback] = PreparedQuery(
    lambda context_key, *kinds: (
        RecommendationFeedback.objects.filter(session__context_key=context_key)
        .filter(feedback_type__in=kinds)
        .values_list("adapter_id")
    ),
    "similar:00000000-0000-4000-8000-000000000000",
    *EXCLUDING_FEEDBACK,
)


def adjustments_load(index: RecoIndex) -> Adjustments:
    catalogue = index.catalogue
    size = len(catalogue)
    feedback = np.zeros(size)
    since = timezone.now() - timedelta(days=FEEDBACK_DAYS)
    counts: dict[int, dict[str, int]] = {}
    for adapter_id, kind, count in _FEEDBACK_COUNTS.rows(since):
        row = catalogue.position.get(str(adapter_id))
        if row is not None:
            counts.setdefault(row, {})[kind] = count
    for row, by_kind in counts.items():
        feedback[row] = feedback_adjustment(by_kind)
    preferences = [
        (kind, value, confidence, _preference_rows(index, kind, value))
        for kind, value, confidence in _PREFERENCES.rows()
    ]
    preference = preference_boosts(size, [(rows, confidence) for _, _, confidence, rows in preferences])
    matched = [(kind, value, rows) for kind, value, _, rows in preferences if len(rows)]
    return Adjustments(preference=preference, feedback=feedback, preference_rows=matched)


def _preference_rows(index: RecoIndex, kind: str, value: str) -> np.ndarray:
    """The rows a preference matches, worked out once per snapshot (a snapshot never changes: a write makes a new
    one): matching walks every row in Python, a few ms per preference at 10,000 adapters, on every request."""
    memo = index.catalogue.preference_rows
    rows = memo.get((kind, value))
    if rows is None:
        rows = np.array(_matching_rows(index.catalogue, kind, value.strip().lower()), dtype=np.int64)
        if len(memo) >= PREFERENCE_MEMO_MAX:
            memo.clear()
        memo[(kind, value)] = rows
    return rows


def _matching_rows(catalogue: Catalogue, kind: str, value: str) -> list[int]:
    if not value:
        return []
    if kind == "tag":
        return [row for row, tags in enumerate(catalogue.tag_sets) if value in tags]
    if kind == "author":
        return [row for row, meta in enumerate(catalogue.metadata) if (meta["author"] or "").lower() == value]
    if kind == "base_model":
        return [
            row
            for row, meta in enumerate(catalogue.metadata)
            if (meta["base_model"] or "").lower() == value or (meta["base_family"] or "").lower() == value
        ]
    return [row for row, document in enumerate(catalogue.documents) if value in document]


def final_scores(index: RecoIndex, scores: Scores, adjustments: Adjustments, weights: Weights) -> np.ndarray:
    catalogue = index.catalogue
    total = (
        weights.content * scores.content
        + weights.co_usage * scores.co_usage
        + weights.quality * catalogue.quality
        + weights.popularity * catalogue.popularity
        + weights.recency * catalogue.recency
        + adjustments.preference
        + adjustments.feedback
    )
    if scores.extra is not None:
        total = total + scores.extra
    return np.clip(total, 0.0, 1.0)


def excluded_for_context(context_key: str) -> set[str]:
    """Adapters that got negative or dismissed feedback in a session of this context (SPEC 6.7.2)."""
    return {str(adapter_id) for (adapter_id,) in _EXCLUDED.rows(context_key, *EXCLUDING_FEEDBACK)}


def candidate_mask(index: RecoIndex, *, exclude: set[str], active_only: bool) -> np.ndarray:
    catalogue = index.catalogue
    mask = np.ones(len(catalogue), dtype=bool)
    if active_only:
        mask &= catalogue.active
    for adapter_id in exclude:
        row = catalogue.position.get(adapter_id)
        if row is not None:
            mask[row] = False
    return mask


def family_mask(index: RecoIndex, family: str | None) -> np.ndarray:
    """Rows whose known family differs from ``family`` are false (unknown/other never excluded)."""
    families = index.catalogue.base_family
    if not family or family in KNOWN_FAMILY_EXCLUDED:
        return np.ones(len(families), dtype=bool)
    return index.catalogue.family_mask(family, KNOWN_FAMILY_EXCLUDED)


RUNS_MAX = 8  # more runs than this (a snapshot that followed many family changes): the product over every row


def family_runs(index: RecoIndex, family: str | None) -> Runs | None:
    """``family_mask`` as runs of rows for the products of ``similar`` (``same_base_only``), or None where that would
    leave nothing out or split the product into many small ones."""
    if not family or family in KNOWN_FAMILY_EXCLUDED:
        return None
    runs = index.catalogue.family_runs(family, KNOWN_FAMILY_EXCLUDED)
    if len(runs) > RUNS_MAX or sum(end - start for start, end in runs) == len(index.catalogue):
        return None
    return runs


def ranked(
    index: RecoIndex, rows: np.ndarray, final: np.ndarray, *, keep: int | None = None, margin: float = 0.0
) -> list[int]:
    """Rows by final score desc (as reported), then name; with ``keep``, at least the rows that can be among the
    first ``keep`` when later moved by up to ``margin`` (diversification) - the rest is left out unsorted."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return []
    if keep is not None and len(rows) > keep:
        # Only rows that can reach the first ``keep`` places (within ``margin`` of the keep-th best) are sorted.
        threshold = np.partition(final[rows], len(rows) - keep)[len(rows) - keep] - margin
        rows = rows[final[rows] >= threshold]
    order = np.lexsort((index.catalogue.name_rank[rows], -np.round(final[rows], REPORTED_DIGITS)))
    return [int(row) for row in rows[order]]


def by_co_usage(index: RecoIndex, rows: np.ndarray, co_usage: np.ndarray, final: np.ndarray, limit: int) -> list[int]:
    """The first ``limit`` of ``rows`` by reported co-usage desc, then reported final desc, then name
    (works-well-with). A popular target has thousands of partners: only the rows within two reported steps of the
    ``limit``-th largest co-usage are sorted, since a row further below reports a lower co-usage than every one of
    the first ``limit`` (a reported value is within half a step of the score)."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > limit:
        kth = np.partition(co_usage[rows], len(rows) - limit)[len(rows) - limit]
        rows = rows[co_usage[rows] >= kth - 2 * 10.0**-REPORTED_DIGITS]
    name_rank = index.catalogue.name_rank
    return sorted(
        (int(row) for row in rows), key=lambda r: (-reported(co_usage[r]), -reported(final[r]), name_rank[r])
    )[:limit]


def diversified(lexical: LexicalIndex | None, rows: list[int], final: np.ndarray, limit: int) -> list[int]:
    """Greedy re-ranking: each pick maximises ``final - 0.1*(max lexical similarity to the picked items)`` at the
    reported precision, the first in rank order among equals (so the first pick is the first ranked). Only rows
    within 0.1 of the ``limit``-th best can ever be picked (the penalty is at most 0.1), so the pool stops there.
    That pool holds thousands of rows when scores are close, and most never matter: a row is worth at most its final
    score, so the picks are made among the pool's first rows, whose similarities to each pick come from one sparse
    product, and that block grows (doubling) only while a row further down could still be worth more than the best
    among them."""
    if len(rows) <= 1 or lexical is None:
        return rows[:limit]
    ordered = np.asarray(rows, dtype=np.int64)
    floor = final[ordered[min(limit, len(ordered)) - 1]] - DIVERSITY_PENALTY
    pool = ordered[final[ordered] >= floor]  # in rank order
    bounds = final[pool].astype(np.float64)
    best_from = np.maximum.accumulate(np.round(bounds, REPORTED_DIGITS)[::-1])[::-1]
    beyond = np.append(best_from, -np.inf)  # the most a row from each position on can be worth
    penalties = _Penalties(lexical, pool)
    picked: list[int] = []
    wanted = min(limit, len(pool))
    while len(picked) < wanted:
        while True:
            values = np.round(bounds[: penalties.size] - DIVERSITY_PENALTY * penalties.maximum, REPORTED_DIGITS)
            values[penalties.taken] = -np.inf
            best = int(np.argmax(values)) if penalties.size else -1  # the first position among equals
            if penalties.size == len(pool) or (best >= 0 and values[best] >= beyond[penalties.size]):
                break
            penalties.grow()
        picked.append(int(pool[best]))
        if len(picked) < wanted:  # the last pick penalises nothing after it
            penalties.pick(best)
    return picked


class _Penalties:
    """For the pool's first ``size`` rows: the largest lexical similarity to a picked row, and which are picked. The
    rows are extracted in parts as the block grows (the first ``FIRST_BLOCK``, then each doubling's new rows), so no
    row is copied twice."""

    FIRST_BLOCK = 128  # enough for 9 requests in 10 at 10,000 adapters (limit 10)

    def __init__(self, lexical: LexicalIndex, pool: np.ndarray) -> None:
        self.lexical, self.pool = lexical, pool
        self.scratch = lexical.scratch()
        self.parts: list[tuple[int, RowBlock]] = []  # (first position, rows) of the pool's first ``size`` rows
        self.picks: list[int] = []  # catalogue rows
        self.size = 0
        self.maximum = np.zeros(0)
        self.taken = np.zeros(0, dtype=bool)

    def grow(self) -> None:
        size = min(len(self.pool), max(self.FIRST_BLOCK, 2 * self.size))
        added = self.lexical.block(self.pool[self.size : size])
        maximum = np.zeros(size - self.size)
        for row in self.picks:
            np.maximum(maximum, self.lexical.block_similarity(added, row, self.scratch), out=maximum)
        self.parts.append((self.size, added))
        self.maximum = np.concatenate([self.maximum, maximum])
        self.taken = np.concatenate([self.taken, np.zeros(size - self.size, dtype=bool)])
        self.size = size

    def pick(self, position: int) -> None:
        row = int(self.pool[position])
        self.taken[position] = True
        self.picks.append(row)
        for start, block in self.parts:
            part = self.maximum[start : start + block.word.shape[0]]
            np.maximum(part, self.lexical.block_similarity(block, row, self.scratch), out=part)


def explanation(
    index: RecoIndex,
    row: int,
    scores: Scores,
    adjustments: Adjustments,
    *,
    target_row: int | None = None,
    prefix: str | None = None,
) -> str:
    catalogue = index.catalogue
    parts = [prefix] if prefix else []
    content = float(scores.content[row])
    if content >= CONTENT_EXPLAINED:
        parts.append(f"Similar content ({content:.2f})")
    if target_row is not None:
        shared = sorted(catalogue.tag_sets[row] & catalogue.tag_sets[target_row])[:SHARED_TAGS_SHOWN]
        if shared:
            parts.append(f"Shared tags: {', '.join(shared)}")
        base = catalogue.metadata[row]["base_model"]
        if base and base == catalogue.metadata[target_row]["base_model"]:
            parts.append(f"Same base model ({base})")
    jobs = int(scores.co_usage_jobs[row])
    if jobs:
        parts.append(f"Often used together ({jobs} job{'' if jobs == 1 else 's'})")
    for kind, value in adjustments.preference_matches(row):
        parts.append(f"Matches your preference: {kind} {value}")
    return " | ".join(parts) if parts else "General similarity"


def item(
    index: RecoIndex,
    row: int,
    *,
    final: np.ndarray,
    scores: Scores,
    adjustments: Adjustments,
    weights: Weights,
    similarity: float | None = None,
    explain: str = "",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    catalogue = index.catalogue
    semantic = None
    if scores.semantic is not None and scores.semantic_rows[row]:
        semantic = round(float(scores.semantic[row]), 4)
    return {
        "lora_id": catalogue.ids[row],
        "lora_name": catalogue.names[row],
        "lora_description": catalogue.descriptions[row],
        "similarity_score": round(float(scores.content[row] if similarity is None else similarity), 4),
        "final_score": round(float(final[row]), 4),
        "semantic_similarity": semantic,
        "lexical_similarity": round(float(scores.lexical[row]), 4),
        "artistic_similarity": None,
        "technical_similarity": None,
        "co_usage_score": round(float(scores.co_usage[row]), 4),
        "quality_boost": round(weights.quality * float(catalogue.quality[row]), 4),
        "popularity_boost": round(weights.popularity * float(catalogue.popularity[row]), 4),
        "recency_boost": round(weights.recency * float(catalogue.recency[row]), 4),
        "preference_boost": round(float(adjustments.preference[row]), 4),
        "feedback_adjustment": round(float(adjustments.feedback[row]), 4),
        "explanation": explain,
        "metadata": {**catalogue.metadata[row], **(metadata or {})},
    }
