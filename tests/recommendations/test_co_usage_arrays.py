"""Co-usage as arrays (``cousage.Partners``): a popular target has thousands of partners, which a request adds to its
scores at once (``engine.co_usage_array``) and works-well-with ranks without sorting them all
(``engine.by_co_usage``). Each must answer exactly what the plain per-partner loop and the full sort answer."""

from __future__ import annotations

import json
import math
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

from recommendations import engine
from recommendations.cousage import CoUsage, Partners
from tests.recommendations.test_algorithms import adapter, item_of, job


def ids(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(uuid.UUID(bytes=bytes(rng.integers(0, 256, 16, dtype=np.uint8)), version=4)) for _ in range(count)]


def test_partners_read_as_a_mapping_of_co_usage():
    source = ["x", "c", "a", "y", "b"]  # the history's ids: partners are some of them
    partners = Partners(source, np.array([2, 4, 1]), np.array([0.5, 0.25, 1.0]), np.array([2, 1, 4]))
    assert partners == {"a": CoUsage(0.5, 2), "b": CoUsage(0.25, 1), "c": CoUsage(1.0, 4)}
    assert list(partners) == ["a", "b", "c"]
    assert partners["b"].jobs == 1
    assert isinstance(partners["c"].jobs, int)
    assert "d" not in partners
    with pytest.raises(KeyError):
        partners["d"]
    assert Partners.empty() == {}
    assert not Partners.empty()


def test_co_usage_array_adds_what_the_per_partner_loop_adds():
    catalogue_ids = ids(300, seed=1)
    index = SimpleNamespace(catalogue=SimpleNamespace(position={pk: row for row, pk in enumerate(catalogue_ids)}))
    rng = np.random.default_rng(2)
    strangers = ids(20, seed=3)  # partners the snapshot does not hold (created since it was taken)
    source = [catalogue_ids[i] for i in rng.permutation(300)] + strangers  # a history's ids, in its own order
    targets = []
    for _ in range(3):  # for-prompt's three active adapters: shared partners add up
        columns = np.sort(rng.choice(len(source), size=130, replace=False))
        targets.append(Partners(source, columns, rng.random(len(columns)), rng.integers(1, 50, len(columns))))
    ours = engine.Scores(np.zeros(300), np.zeros(300), None, np.zeros(300, dtype=bool), co_usage=np.zeros(300))
    expected_scores, expected_jobs = np.zeros(300), np.zeros(300, dtype=np.int64)
    for partners in targets:
        engine.co_usage_array(index, partners, ours, share=1 / 3)
        for other, value in partners.items():  # the plain loop
            row = index.catalogue.position.get(other)
            if row is not None:
                expected_scores[row] += 1 / 3 * value.score
                expected_jobs[row] += value.jobs
    assert np.array_equal(ours.co_usage, expected_scores)  # bit for bit
    assert np.array_equal(ours.co_usage_jobs, expected_jobs)
    assert expected_jobs.sum() > 0
    engine.co_usage_array(index, Partners.empty(), ours)
    assert np.array_equal(ours.co_usage, expected_scores)


def test_rows_follow_each_snapshot_and_source():
    """The ids' rows are kept for the last source and snapshot: a new snapshot (a write) or source (a history that
    met new adapters) looks them up again."""
    source = ids(6, seed=4)
    partners = Partners(source, np.array([0, 2, 5]), np.ones(3), np.ones(3, dtype=np.int64))
    first = {source[0]: 4, source[2]: 1}  # source[5] is not in this snapshot
    assert partners.rows_in(first).tolist() == [4, 1, -1]
    assert partners.rows_in(first).tolist() == [4, 1, -1]  # kept
    later = {source[0]: 0, source[2]: 3, source[5]: 2}  # the next snapshot: rows moved, one more adapter
    assert partners.rows_in(later).tolist() == [0, 3, 2]
    others = Partners(source, np.array([1, 5]), np.ones(2), np.ones(2, dtype=np.int64))
    assert others.rows_in(later).tolist() == [-1, 2]  # looked up for this source and snapshot once, as asked
    grown = [*source, *ids(1, seed=5)]
    newcomer = Partners(grown, np.array([6, 0]), np.ones(2), np.ones(2, dtype=np.int64))
    assert newcomer.rows_in({**later, grown[6]: 5}).tolist() == [5, 0]


@pytest.mark.parametrize("limit", [1, 3, 10, 50, 400])
def test_by_co_usage_ranks_as_the_full_sort(limit):
    rng = np.random.default_rng(limit)
    size = 300
    # Scores on a coarse grid with small offsets: many reported ties, and values either side of a rounding step.
    co_usage = np.round(rng.random(size) * 0.05, 3) + rng.choice([0.0, 0.00004, 0.00005, 0.00006, 0.00016], size)
    final = np.round(rng.random(size), 2)
    index = SimpleNamespace(catalogue=SimpleNamespace(name_rank=rng.permutation(size)))
    rows = np.flatnonzero(rng.random(size) < 0.8)
    full = sorted(
        (int(r) for r in rows),
        key=lambda r: (-engine.reported(co_usage[r]), -engine.reported(final[r]), index.catalogue.name_rank[r]),
    )
    assert engine.by_co_usage(index, rows, co_usage, final, limit) == full[:limit]


def test_by_co_usage_keeps_a_lower_score_that_reports_the_same():
    """0.49996 reports 0.5 like 0.50004, so a higher final puts it first, though two scores are larger."""
    co_usage = np.array([0.50004, 0.5, 0.49996, 0.49996, 0.1])
    final = np.array([0.2, 0.2, 0.9, 0.8, 1.0])
    index = SimpleNamespace(catalogue=SimpleNamespace(name_rank=np.arange(5)))
    assert engine.by_co_usage(index, np.arange(5), co_usage, final, 2) == [2, 3]


@pytest.mark.django_db
def test_for_prompt_explains_the_jobs_of_every_active_adapter_together(api):
    first, second = adapter("First Active"), adapter("Second Active")
    partner = adapter("Partner Style", description="glowing lanterns")
    job(first, partner)
    job(first, partner)
    job(second, partner)
    response = api.post(
        "/api/v1/recommendations/for-prompt",
        data=json.dumps({"prompt": "glowing lanterns", "active_loras": [str(first.pk), str(second.pk)]}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    found = item_of(response.json(), partner)
    assert "Often used together (3 jobs)" in found["explanation"].split(" | ")
    # n_ab / sqrt(n_a * n_b) with each, averaged: (2 / sqrt(2 * 3) + 1 / sqrt(1 * 3)) / 2
    assert found["co_usage_score"] == round((2 / math.sqrt(6) + 1 / math.sqrt(3)) / 2, 4)
