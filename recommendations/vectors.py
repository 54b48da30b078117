"""Stored vectors as bytes (``dim`` little-endian float32 values, never pickle) and the matrix of current vectors
aligned to a catalogue snapshot (a vector whose model or text hash differs from the current one is left out)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recommendations.models import AdapterEmbedding

if TYPE_CHECKING:  # numpy loads with the first vector handled, not with the server
    import numpy as np
    from django.db.models import QuerySet

    from recommendations.catalogue import Catalogue, Runs, Update

LITTLE_ENDIAN_FLOAT32 = "<f4"
READ_CHUNK = 500  # adapter ids per query when the vectors of some rows are read
SIMILARITY_BLOCK = 2048  # rows per product of ``SemanticMatrix.similarity``, at fixed boundaries


def vector_to_bytes(vector: np.ndarray) -> bytes:
    import numpy as np

    return np.ascontiguousarray(vector, dtype=LITTLE_ENDIAN_FLOAT32).tobytes()


def vector_from_bytes(data: bytes | memoryview, dim: int) -> np.ndarray | None:
    """The vector, or None when the bytes do not hold exactly ``dim`` float32 values."""
    import numpy as np

    raw = bytes(data)
    if dim <= 0 or len(raw) != 4 * dim:
        return None
    return np.frombuffer(raw, dtype=LITTLE_ENDIAN_FLOAT32).astype(np.float32)


@dataclass
class SemanticMatrix:
    matrix: np.ndarray  # (n x dim) float32; zero rows where ``has`` is false
    has: np.ndarray  # bool per catalogue row: a current vector exists
    dim: int

    @property
    def count(self) -> int:
        return int(self.has.sum())

    @property
    def memory_bytes(self) -> int:
        return int(self.matrix.nbytes + self.has.nbytes)

    def similarity(self, query: np.ndarray, runs: Runs | None = None) -> np.ndarray:
        """Cosine (clipped to [0, 1]) of every row to an L2-normalised query vector; with ``runs``, of the rows of
        those ``(start, end)`` ranges only, the others left 0 (``similar`` with ``same_base_only``: about a quarter of
        the product when four families share the catalogue).

        BLAS computes a slice's last rows, and the rows where it splits a slice between threads, with other kernels,
        so a row's last bit depends on where its slice starts and ends. The product is therefore always taken in
        the same blocks of ``SIMILARITY_BLOCK`` rows (those meeting a run, with ``runs``), and a row's value is the
        same to the last bit whichever rows are asked."""
        import numpy as np

        if runs is None:
            return self._blocks(query, range(0, len(self.matrix), SIMILARITY_BLOCK))
        starts: set[int] = set()
        for start, end in runs:
            starts.update(range(start - start % SIMILARITY_BLOCK, end, SIMILARITY_BLOCK))
        similarity = self._blocks(query, sorted(starts))
        inside = np.zeros(len(similarity), dtype=bool)  # the blocks' rows outside the runs
        for start, end in runs:
            inside[start:end] = True
        similarity[~inside] = 0.0
        return similarity

    def similarity_at(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``similarity(query)[rows]``, from the blocks that hold ``rows`` only (works-well-with's partners)."""
        import numpy as np

        starts = np.unique(np.asarray(rows, dtype=np.int64) // SIMILARITY_BLOCK) * SIMILARITY_BLOCK
        return self._blocks(query, starts.tolist())[rows]

    def _blocks(self, query: np.ndarray, starts: Iterable[int]) -> np.ndarray:
        """The similarity of the blocks starting at ``starts``, 0 in the others."""
        import numpy as np

        query = query.astype(np.float32)
        similarity = np.zeros(len(self.matrix), dtype=np.float32)
        for start in starts:
            end = start + SIMILARITY_BLOCK
            np.clip(self.matrix[start:end] @ query, 0.0, 1.0, out=similarity[start:end])
        return similarity


def semantic_matrix_load(catalogue: Catalogue, model_name: str) -> SemanticMatrix | None:
    """The current vectors of ``model_name`` for the catalogue's rows (None when there is none)."""
    if not model_name or not len(catalogue):
        return None
    found = _current_vectors(catalogue, AdapterEmbedding.objects.filter(model_name=model_name), dim=0)
    return _matrix(len(catalogue), found, found[0][1].shape[0]) if found else None


def semantic_matrix_update(previous: SemanticMatrix | None, update: Update, model_name: str) -> SemanticMatrix | None:
    """The matrix of ``update.catalogue`` from ``previous`` (``update.before``'s, as current as it was): rows whose
    adapter kept its text keep their vector (or its absence); the vectors of the other rows are read."""
    import numpy as np

    catalogue = update.catalogue
    if not model_name or not len(catalogue):
        return None
    sources = update.sources(lambda snapshot, row: snapshot.semantic_hashes[row])
    read = [catalogue.ids[row] for row in np.flatnonzero(sources < 0)]
    if not read and len(sources) == len(update.before) and bool((sources == np.arange(len(sources))).all()):
        return previous  # every row where it was, with its text
    dim = previous.dim if previous is not None else 0
    found: list[tuple[int, np.ndarray]] = []
    for start in range(0, len(read), READ_CHUNK):
        embeddings = AdapterEmbedding.objects.filter(
            model_name=model_name, adapter_id__in=read[start : start + READ_CHUNK]
        )
        found += _current_vectors(catalogue, embeddings, dim=dim)
        dim = dim or (found[0][1].shape[0] if found else 0)
    same_rows = previous is not None and len(sources) == len(update.before) and not update.removed
    if previous is not None and same_rows:  # one copy; the rows read again are cleared, then written
        semantic = SemanticMatrix(matrix=previous.matrix.copy(), has=previous.has.copy(), dim=dim)
        semantic.has[sources < 0] = False
        semantic.matrix[sources < 0] = 0.0
        for row, vector in found:
            semantic.matrix[row] = vector
            semantic.has[row] = True
    else:
        semantic = _matrix(len(catalogue), found, dim)
        if previous is not None:  # rows it had no vector for keep none
            kept = np.flatnonzero(sources >= 0)
            kept = kept[previous.has[sources[kept]]]
            semantic.matrix[kept] = previous.matrix[sources[kept]]
            semantic.has[kept] = True
    return semantic if semantic.has.any() else None


def _current_vectors(
    catalogue: Catalogue, embeddings: QuerySet[AdapterEmbedding], *, dim: int
) -> list[tuple[int, np.ndarray]]:
    """``(catalogue row, vector)`` of each embedding that is current for its adapter's row, all of one dimension
    (``dim``, or the first found's)."""
    found: list[tuple[int, np.ndarray]] = []
    rows = embeddings.values_list("adapter_id", "dim", "vector", "text_sha256")
    for adapter_id, row_dim, data, sha in rows.iterator(chunk_size=2000):
        row = catalogue.position.get(str(adapter_id))
        if row is None or catalogue.semantic_hashes[row] != sha or (dim and row_dim != dim):
            continue
        vector = vector_from_bytes(data, row_dim)
        if vector is not None:
            dim = row_dim
            found.append((row, vector))
    return found


def _matrix(size: int, found: list[tuple[int, np.ndarray]], dim: int) -> SemanticMatrix:
    import numpy as np

    matrix = np.zeros((size, dim), dtype=np.float32)
    has = np.zeros(size, dtype=bool)
    for row, vector in found:
        matrix[row] = vector
        has[row] = True
    return SemanticMatrix(matrix=matrix, has=has, dim=dim)
