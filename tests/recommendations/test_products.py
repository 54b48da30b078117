"""The lexical products shared with a helper thread (``recommendations/products.py``) equal the whole products to
the last bit, whatever the cut, and a product that finds the helper busy runs whole on the caller's thread."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random

from recommendations import products as products_module
from recommendations.products import products, rows_view


def matrix(rows: int, columns: int, density: float, seed: int) -> csr_matrix:
    found = sparse_random(rows, columns, density=density, format="csr", dtype=np.float32, random_state=seed)
    found.data = np.random.default_rng(seed).standard_normal(len(found.data)).astype(np.float32)
    return found


class SpyHelper:
    """The helper's executor, recording how many stored values each hand-over gave it."""

    def __init__(self) -> None:
        self.given: list[int] = []
        self.real_take = products_module._helper.take  # bound before the fixture replaces it

    def take(self):
        executor = self.real_take()
        assert executor is not None
        spy = self

        class Recording:
            def submit(self, compute, part):
                spy.given.append(sum(piece.nnz for _, piece in part))
                return executor.submit(compute, part)

        return Recording()


@pytest.fixture
def split_always(monkeypatch: pytest.MonkeyPatch) -> SpyHelper:
    """Every product is shared with the helper."""
    monkeypatch.setattr(products_module, "SPLIT_MIN_STORED", 1)
    spy = SpyHelper()
    monkeypatch.setattr(products_module._helper, "take", spy.take)
    return spy


@pytest.mark.parametrize("seed", range(5))
def test_a_shared_product_equals_the_whole_product_bit_for_bit(seed: int, split_always: SpyHelper):
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(int(rng.integers(1, 6))):
        rows = int(rng.integers(1, 400))
        found = matrix(rows, 300, float(rng.uniform(0.0, 0.2)), seed * 10 + index)
        if rows > 3:
            found = rows_view(found, 1, rows - 1)  # a family's run: a view whose indptr starts past 0
        pairs.append((found, rng.standard_normal(300).astype(np.float32)))
    shared = products(pairs)
    for (found, vector), result in zip(pairs, shared, strict=True):
        whole = np.asarray(found @ vector)
        assert result.dtype == whole.dtype
        assert np.array_equal(result, whole)  # not approximately: the same sums in the same order
    assert len(split_always.given) == 1  # one hand-over


def test_the_helper_takes_about_half_of_a_large_product(split_always: SpyHelper):
    found = matrix(2000, 500, 0.05, 7)
    vector = np.ones(500, dtype=np.float32)
    assert np.array_equal(products([(found, vector)])[0], np.asarray(found @ vector))
    [given] = split_always.given
    assert 0.3 * found.nnz <= given <= 0.6 * found.nnz


def test_a_busy_helper_leaves_the_product_whole_on_the_callers_thread(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(products_module, "SPLIT_MIN_STORED", 1)
    found = matrix(300, 200, 0.1, 3)
    vector = np.ones(200, dtype=np.float32)
    with products_module._helper.idle:  # another request's half is running
        cut: list[object] = []
        monkeypatch.setattr(products_module, "_cut", lambda *args: cut.append(args))
        assert np.array_equal(products([(found, vector)])[0], np.asarray(found @ vector))
    assert cut == []
    assert products_module._helper.idle.acquire(blocking=False)  # released
    products_module._helper.idle.release()


def test_small_products_stay_on_the_callers_thread(monkeypatch: pytest.MonkeyPatch):
    taken: list[bool] = []
    monkeypatch.setattr(products_module._helper, "take", lambda: taken.append(True))
    found = matrix(100, 100, 0.05, 1)
    products([(found, np.ones(100, dtype=np.float32))])
    assert taken == []  # below SPLIT_MIN_STORED: the helper is not even asked


def test_openblas_threads_sleep_soon_unless_the_environment_says_otherwise():
    code = "import os, loraforge; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "loraforge.settings"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout == "4\n"
    env["OPENBLAS_THREAD_TIMEOUT"] = "10"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout == "10\n"


def test_a_failing_half_releases_the_helper_once_its_own_half_is_done(split_always: SpyHelper):
    good = matrix(400, 100, 0.2, 5)
    wrong = matrix(400, 100, 0.2, 6)
    pairs = [(wrong, np.ones(99, dtype=np.float32)), (good, np.ones(100, dtype=np.float32))]  # the first: a bad shape
    with pytest.raises(ValueError, match="dimension mismatch"):
        products(pairs)
    assert split_always.given  # the helper had its half
    assert products_module._helper.idle.acquire(blocking=False)  # and is idle again
    products_module._helper.idle.release()
