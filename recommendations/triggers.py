"""Trigger phrases (SPEC 6.7.3, by-trigger): normalisation, an adapter's phrases, and the match tiers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from adapters.scanner.headers import trigger_candidates

MIN_PHRASE_CHARS = 2
EXACT, PARTIAL, FUZZY = "exact", "partial", "fuzzy"
TIER_ORDER = {EXACT: 0, PARTIAL: 1, FUZZY: 2}
EXACT_SCORE, PARTIAL_SCORE, FUZZY_FACTOR, FUZZY_MIN_COSINE = 1.0, 0.8, 0.6, 0.3

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_ACTIVATION_SPLIT = re.compile(r"[,;/\n]")


def normalize_phrase(value: str) -> str:
    """NFKC, lower-case, characters outside ``[a-z0-9]`` → space, spaces collapsed; ``""`` under 2 characters."""
    text = _NOT_ALNUM.sub(" ", unicodedata.normalize("NFKC", value).lower()).strip()
    return text if len(text) >= MIN_PHRASE_CHARS else ""


def adapter_phrases(
    *, triggers: Any, trained_words: Any, activation_text: str | None, header_metadata: Any
) -> list[str]:
    """The adapter's normalised phrases, unique, in order: triggers, trained words, activation text parts, header
    trigger candidates (the scanner's: ``modelspec.trigger_phrase``, class tokens, dataset folder names)."""
    candidates: list[str] = [*_strings(triggers), *_strings(trained_words)]
    candidates += _ACTIVATION_SPLIT.split(activation_text or "")
    if isinstance(header_metadata, dict):
        candidates += trigger_candidates(header_metadata)
    return _unique(normalize_phrase(candidate) for candidate in candidates)


def _strings(values: Any) -> list[str]:
    return [value for value in values or [] if isinstance(value, str)]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def contains_words(outer: str, inner: str) -> bool:
    """Whether ``inner`` occurs in ``outer`` as whole words (both normalised)."""
    return f" {inner} " in f" {outer} "


def word_match(query: str, phrase: str) -> str | None:
    """``exact`` or ``partial`` (each contains the other as whole words), else None."""
    if query == phrase:
        return EXACT
    if contains_words(phrase, query) or contains_words(query, phrase):
        return PARTIAL
    return None
