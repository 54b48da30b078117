"""Trigger phrases (SPEC 6.7.3, by-trigger): normalisation, an adapter's phrases, and the match tiers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
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


class PhraseLookup:
    """Exact and whole-word matches of a normalised query among many phrases without testing each phrase: a dict
    of phrases, and for each word the phrases that contain it."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.exact: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}
        for position, text in enumerate(texts):
            self.exact.setdefault(text, []).append(position)
            for word in set(text.split()):
                self.by_word.setdefault(word, []).append(position)

    def word_matches(self, query: str) -> Iterator[tuple[int, str]]:
        """``(phrase position, tier)`` for every phrase that equals the query (``exact``) or contains it or is
        contained in it as whole words (``partial``); a phrase may come more than once."""
        for position in self.exact.get(query, ()):
            yield position, EXACT
        words = query.split()
        postings = sorted((self.by_word.get(word, []) for word in set(words)), key=len)
        if postings and postings[0]:
            candidates = set(postings[0]).intersection(*postings[1:])
            for position in candidates:
                text = self.texts[position]
                if text != query and contains_words(text, query):
                    yield position, PARTIAL
        for start in range(len(words)):
            for end in range(start + 1, len(words) + 1):
                gram = " ".join(words[start:end])
                if gram != query:
                    for position in self.exact.get(gram, ()):
                        yield position, PARTIAL
