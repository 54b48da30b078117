"""Diversification (``engine.diversified``) against the greedy it stands for, computed the plain way: every pick
maximises ``final - 0.1 * (max lexical similarity to the rows picked so far)`` over every candidate, compared at the
reported precision (4 digits), the first in rank order among equals. The implementation looks only at the pool's
first rows and grows that block while a row further down could still win; on catalogues whose pools hold hundreds
of close scores, with duplicate documents and tied scores, the picks must be the same."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random

from recommendations import engine
from recommendations.lexical import LexicalIndex
from recommendations.triggers import PhraseLookup


def lexical_of(word: csr_matrix, char: csr_matrix) -> LexicalIndex:
    return LexicalIndex(None, None, word, char, None, None, np.zeros(0, dtype=np.int64), [], PhraseLookup([]))


def normalised(matrix: csr_matrix) -> csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return csr_matrix(matrix.multiply(1.0 / norms[:, None]), dtype=np.float32)


def catalogue(rng: np.random.Generator, size: int, duplicates: int, topics: int = 0) -> LexicalIndex:
    """Random documents; with ``topics``, all but the last fifth are a few shared topics plus noise (very similar to
    one another), so penalties are large and rows far down the ranking get picked."""
    word = sparse_random(size, 400, density=0.03, format="csr", random_state=rng, dtype=np.float32)
    char = sparse_random(size, 900, density=0.08, format="csr", random_state=rng, dtype=np.float32)
    if topics:
        of = rng.integers(0, topics, size - size // 5)
        word, char = themed(word, of, rng), themed(char, of, rng)
    word, char = word.tolil(), char.tolil()
    for copy in range(duplicates):  # the same document twice: equal similarities to everything
        word[size - 1 - copy], char[size - 1 - copy] = word[copy], char[copy]
    return lexical_of(normalised(word.tocsr()), normalised(char.tocsr()))


def themed(matrix: csr_matrix, of: np.ndarray, rng: np.random.Generator) -> csr_matrix:
    """The first ``len(of)`` rows become their topic's head plus a quarter of their own noise."""
    heads = sparse_random(int(of.max()) + 1, matrix.shape[1], density=0.2, format="csr", random_state=rng).toarray()
    dense = matrix.toarray()
    dense[: len(of)] = 0.25 * dense[: len(of)] + heads[of]
    return csr_matrix(dense, dtype=np.float32)


def reference(lexical: LexicalIndex, rows: list[int], final: np.ndarray, limit: int) -> list[int]:
    everything = lexical.block(np.asarray(rows))
    scratch = lexical.scratch()
    penalty = np.zeros(len(rows))
    picked: list[int] = []
    for _ in range(min(limit, len(rows))):
        best, best_value = -1, -np.inf
        for position, row in enumerate(rows):
            value = np.round(final[row] - engine.DIVERSITY_PENALTY * penalty[position], engine.REPORTED_DIGITS)
            if row not in picked and value > best_value:
                best, best_value = position, value
        picked.append(rows[best])
        penalty = np.maximum(penalty, lexical.block_similarity(everything, rows[best], scratch))
    return picked


def ranked_rows(final: np.ndarray) -> list[int]:
    """By score as reported, then row (standing in for the name)."""
    return [int(row) for row in np.lexsort((np.arange(len(final)), -np.round(final, engine.REPORTED_DIGITS)))]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit", [1, 3, 10, 40])
@pytest.mark.parametrize("topics", [0, 3])
def test_the_picks_are_the_plain_greedys(seed: int, limit: int, topics: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(300, 700))
    lexical = catalogue(rng, size, duplicates=10, topics=topics)
    # Close scores (hundreds within 0.1 of the best) rounded to 2 digits: ties everywhere. The last fifth (not
    # themed) scores lowest, so a diverse pick has to come from far down the ranking.
    final = np.round(rng.uniform(0.5, 0.6, size), 2)
    final[size - size // 5 :] = np.round(rng.uniform(0.5, 0.53, size // 5), 2)
    final[size - 10 :] = final[:10]  # the duplicated documents also tie on their score
    final += rng.uniform(0, 4e-5, size)  # ties as reported, not as floats
    rows = ranked_rows(final)
    assert engine.diversified(lexical, rows, final, limit) == reference(lexical, rows, final, limit)


def test_fewer_candidates_than_the_limit_are_all_returned() -> None:
    rng = np.random.default_rng(7)
    lexical = catalogue(rng, 5, duplicates=0)
    final = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    picks = engine.diversified(lexical, [0, 1, 2, 3, 4], final, 10)
    assert sorted(picks) == [0, 1, 2, 3, 4]
    assert picks == reference(lexical, [0, 1, 2, 3, 4], final, 10)


def test_rows_more_than_0_1_under_the_last_place_are_never_picked() -> None:
    rng = np.random.default_rng(8)
    lexical = catalogue(rng, 5, duplicates=0)
    final = np.array([0.9, 0.8, 0.7, 0.65, 0.1])
    picks = engine.diversified(lexical, [0, 1, 2, 3, 4], final, 3)
    assert len(picks) == 3
    assert 4 not in picks
    assert picks == reference(lexical, [0, 1, 2, 3, 4], final, 3)


def test_the_block_grows_only_as_far_as_a_row_could_still_win(monkeypatch) -> None:
    rng = np.random.default_rng(11)
    lexical = catalogue(rng, 2000, duplicates=0)
    final = np.round(np.linspace(0.6, 0.55, 2000), 4)  # 2,000 rows in the pool
    rows = ranked_rows(final)
    grown: list[int] = []
    original = engine._Penalties.grow

    def spy(self: engine._Penalties) -> None:
        original(self)
        grown.append(self.size)

    monkeypatch.setattr(engine._Penalties, "grow", spy)
    picks = engine.diversified(lexical, rows, final, 10)
    assert picks == reference(lexical, rows, final, 10)
    assert grown
    assert grown[-1] < 2000  # the rest of the pool was never read
