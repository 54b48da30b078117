"""Sparse-times-dense products of the lexical index, shared between two threads when large.

scipy computes ``csr @ vector`` without the GIL, so while one request's products run, a second core can take half
of them: the word and char TF-IDF products over a family of 10,000 adapters (about 6 million stored values) are
most of a first ``similar``. The products are cut at row boundaries into pieces of about equal size; the caller's
thread computes the first half of the pieces and a helper thread the rest. Each row's value is computed exactly as
in the whole product (scipy sums a row's values in their stored order, whatever the other rows), so the answer
equals the whole product to the last bit. One helper thread per process; products that find it busy (another
request's half) run whole on the caller's thread instead of queueing behind it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from itertools import pairwise
from typing import Any

import numpy as np

SPLIT_MIN_STORED = 500_000  # smaller products run on the caller's thread: a hand-over costs about 0.05 ms
PIECES = 8  # pieces per split (of about equal stored values), so that both halves are close to equal


class _Helper:
    def __init__(self) -> None:
        self.idle = threading.Lock()  # held while the helper computes a request's half
        self.created = threading.Lock()
        self.executor: ThreadPoolExecutor | None = None

    def take(self) -> ThreadPoolExecutor | None:
        """The helper, when there is a second core and it is idle (the caller then holds ``idle``)."""
        if (os.cpu_count() or 1) < 2 or not self.idle.acquire(blocking=False):
            return None
        with self.created:
            if self.executor is None:
                self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lexical-product")
        return self.executor


_helper = _Helper()


def rows_view(matrix: Any, start: int, end: int) -> Any:
    """Rows ``start:end`` of a CSR matrix sharing its arrays (scipy's slicing, and its constructor given slices of
    less than half an array, copy them: a family's rows of the char matrix are megabytes)."""
    from scipy.sparse import csr_matrix

    low, high = int(matrix.indptr[start]), int(matrix.indptr[end])
    view = csr_matrix((end - start, matrix.shape[1]), dtype=matrix.dtype)
    view.data, view.indices = matrix.data[low:high], matrix.indices[low:high]
    view.indptr = matrix.indptr[start : end + 1] - matrix.indptr.dtype.type(low)
    return view


Pair = tuple[Any, np.ndarray]  # a CSR matrix and the dense vector it multiplies


def product(matrix: Any, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector``, shared with the helper when large."""
    return products([(matrix, vector)])[0]


def products(pairs: Sequence[Pair]) -> list[np.ndarray]:
    """``matrix @ vector`` of each pair; when they hold ``SPLIT_MIN_STORED`` values or more and the helper is idle,
    the helper computes about half of them."""
    total = sum(matrix.nnz for matrix, _ in pairs)
    executor = _helper.take() if total >= SPLIT_MIN_STORED else None
    if executor is None:
        return [np.asarray(matrix @ vector) for matrix, vector in pairs]
    try:
        pieces = [(index, piece) for index, (matrix, _) in enumerate(pairs) for piece in _cut(matrix, total)]
        stored = np.cumsum([piece.nnz for _, piece in pieces])
        mine = int(np.searchsorted(stored, total / 2)) + 1  # the pieces up to half of the values

        def compute(part: list[tuple[int, Any]]) -> list[np.ndarray]:
            return [np.asarray(piece @ pairs[index][1]) for index, piece in part]

        theirs = executor.submit(compute, pieces[mine:])
        try:
            results = compute(pieces[:mine])
        finally:
            wait([theirs])  # the helper is idle again before it is released, whatever happened here
        results += theirs.result()
    finally:
        _helper.idle.release()
    joined: list[list[np.ndarray]] = [[] for _ in pairs]
    for (index, _), result in zip(pieces, results, strict=True):
        joined[index].append(result)
    return [np.concatenate(parts) for parts in joined]


def _cut(matrix: Any, total: int) -> list[Any]:
    """``matrix`` in row ranges of at most about ``total / PIECES`` stored values (at least one row each)."""
    rows = matrix.shape[0]
    count = max(1, min(rows, round(PIECES * matrix.nnz / total)))
    if count == 1:
        return [matrix]
    bounds = np.searchsorted(matrix.indptr, np.linspace(0, matrix.nnz, count + 1)[1:-1])
    edges = [0, *sorted({min(max(int(bound), 1), rows - 1) for bound in bounds}), rows]
    return [rows_view(matrix, start, end) for start, end in pairwise(edges) if end > start]
