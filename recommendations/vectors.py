"""Stored vectors as bytes (``dim`` little-endian float32 values, never pickle) and the matrix of current vectors
aligned to a catalogue snapshot (a vector whose model or text hash differs from the current one is left out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recommendations.models import AdapterEmbedding

if TYPE_CHECKING:  # numpy loads with the first vector handled, not with the server
    import numpy as np

    from recommendations.catalogue import Catalogue

LITTLE_ENDIAN_FLOAT32 = "<f4"


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

    def similarity(self, query: np.ndarray) -> np.ndarray:
        """Cosine (clipped to [0, 1]) of every row to an L2-normalised query vector."""
        import numpy as np

        return np.clip(self.matrix @ query.astype(np.float32), 0.0, 1.0)


def semantic_matrix_load(catalogue: Catalogue, model_name: str) -> SemanticMatrix | None:
    """The current vectors of ``model_name`` for the catalogue's rows (None when there is none)."""
    import numpy as np

    if not model_name or not len(catalogue):
        return None
    rows = AdapterEmbedding.objects.filter(model_name=model_name).values_list(
        "adapter_id", "dim", "vector", "text_sha256"
    )
    found: list[tuple[int, np.ndarray]] = []
    dim = 0
    for adapter_id, row_dim, data, sha in rows.iterator(chunk_size=2000):
        row = catalogue.position.get(str(adapter_id))
        if row is None or catalogue.semantic_hashes[row] != sha or (dim and row_dim != dim):
            continue
        vector = vector_from_bytes(data, row_dim)
        if vector is not None:
            dim = row_dim
            found.append((row, vector))
    if not found:
        return None
    matrix = np.zeros((len(catalogue), dim), dtype=np.float32)
    has = np.zeros(len(catalogue), dtype=bool)
    for row, vector in found:
        matrix[row] = vector
        has[row] = True
    return SemanticMatrix(matrix=matrix, has=has, dim=dim)
