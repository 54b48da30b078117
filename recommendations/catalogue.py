"""A read-only snapshot of the catalogue for scoring: one row per adapter in a fixed order, with its documents,
phrases, metadata and query-independent score terms, so a recommendation needs no per-adapter query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils import timezone

from adapters.models import Adapter
from recommendations.documents import SNAPSHOT_FIELDS, lexical_document, semantic_text, text_sha256
from recommendations.scoring import popularity_score, quality_score, recency_score
from recommendations.triggers import adapter_phrases


@dataclass
class Catalogue:
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    descriptions: list[str | None] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    semantic_hashes: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    tag_sets: list[frozenset[str]] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    base_family: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    quality: np.ndarray = field(default_factory=lambda: np.zeros(0))
    popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    recency: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _family_masks: dict[tuple[str, tuple[str, ...]], np.ndarray] = field(default_factory=dict, repr=False)
    name_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # position by lower-case name

    def __len__(self) -> int:
        return len(self.ids)

    def family_mask(self, family: str, always: tuple[str, ...]) -> np.ndarray:
        """Rows of ``family`` or of one of the ``always`` families (computed once per family and snapshot)."""
        key = (family, always)
        mask = self._family_masks.get(key)
        if mask is None:
            mask = (self.base_family == family) | np.isin(self.base_family, always)
            self._family_masks[key] = mask
        return mask


def catalogue_load() -> Catalogue:
    """Every adapter, ordered by id (stable across rebuilds)."""
    now = timezone.now()
    catalogue = Catalogue()
    quality: list[float] = []
    popularity: list[float] = []
    recency: list[float] = []
    families: list[str] = []
    active: list[bool] = []
    rows = Adapter.objects.only(*SNAPSHOT_FIELDS).order_by("id")
    for row, adapter in enumerate(rows.iterator(chunk_size=2000)):
        adapter_id = str(adapter.pk)
        catalogue.ids.append(adapter_id)
        catalogue.position[adapter_id] = row
        catalogue.names.append(adapter.name)
        catalogue.descriptions.append(adapter.description)
        catalogue.metadata.append(_metadata(adapter))
        catalogue.documents.append(lexical_document(adapter))
        catalogue.semantic_hashes.append(text_sha256(semantic_text(adapter)))
        catalogue.phrases.append(
            adapter_phrases(
                triggers=adapter.triggers,
                trained_words=adapter.trained_words,
                activation_text=adapter.activation_text,
                header_metadata=adapter.header_metadata,
            )
        )
        catalogue.tag_sets.append(frozenset(str(tag).lower() for tag in adapter.tags or []))
        families.append(adapter.base_family)
        active.append(adapter.active)
        quality.append(quality_score(adapter.stats))
        popularity.append(popularity_score(adapter.stats))
        recency.append(recency_score(adapter.published_at, adapter.created_at, now))
    catalogue.base_family = np.array(families, dtype=object)
    catalogue.active = np.array(active, dtype=bool)
    catalogue.quality = np.array(quality, dtype=np.float64)
    catalogue.popularity = np.array(popularity, dtype=np.float64)
    catalogue.recency = np.array(recency, dtype=np.float64)
    by_name = sorted(range(len(catalogue.names)), key=lambda row: catalogue.names[row].lower())
    catalogue.name_rank = np.empty(len(by_name), dtype=np.int64)
    catalogue.name_rank[by_name] = np.arange(len(by_name))
    return catalogue


def _metadata(adapter: Adapter) -> dict[str, Any]:
    return {
        "tags": list(adapter.tags or []),
        "author": adapter.author_username,
        "sd_version": adapter.sd_version,
        "base_model": adapter.base_model,
        "base_family": adapter.base_family,
        "nsfw_level": adapter.nsfw_level,
        "sdnext_name": adapter.sdnext_name,
        "active": adapter.active,
    }
