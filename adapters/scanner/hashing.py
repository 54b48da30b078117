"""Full-file SHA-256 in large reads (hashlib releases the GIL, so threads hash in parallel)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

CHUNK_SIZE = 4 * 1024 * 1024


def sha256_file(path: str | Path, on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            read = handle.readinto(buffer)
            if not read:
                break
            digest.update(view[:read])
            if on_bytes is not None:
                on_bytes(read)
    return digest.hexdigest()
