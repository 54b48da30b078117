"""``PhraseLookup`` finds exactly the phrases the definition of SPEC 6.7.3 matches (equal, or one containing the
other as whole words), checked against a phrase-by-phrase reading of the definition on random phrases."""

from __future__ import annotations

import random

from recommendations.triggers import EXACT, PARTIAL, PhraseLookup, contains_words

WORDS = ["neon", "city", "ink", "wash", "style", "aq", "bloom", "v2", "soft", "light"]


def _by_definition(query: str, phrases: list[str]) -> dict[int, str]:
    found = {}
    for position, phrase in enumerate(phrases):
        if phrase == query:
            found[position] = EXACT
        elif contains_words(phrase, query) or contains_words(query, phrase):
            found[position] = PARTIAL
    return found


def _phrase(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))


def test_lookup_matches_the_definition_on_random_phrases():
    rng = random.Random(11)
    phrases = [_phrase(rng) for _ in range(400)]
    lookup = PhraseLookup(phrases)
    for _ in range(300):
        query = _phrase(rng)
        found: dict[int, str] = {}
        for position, tier in lookup.word_matches(query):
            if found.get(position) != EXACT:
                found[position] = tier
        assert found == _by_definition(query, phrases), query


def test_a_word_inside_another_word_is_not_a_match():
    lookup = PhraseLookup(["neonlight style", "neon light"])
    assert dict(lookup.word_matches("neon")) == {1: PARTIAL}
