"""Full-file SHA-256 in large reads (hashlib releases the GIL, so threads hash in parallel)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

CHUNK_SIZE = 4 * 1024 * 1024


def sha256_file(path: str | Path, on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        # A buffer no larger than the file (one more byte, so its end is read at once): zero-filling 4 MiB for a
        # file of a few kilobytes was most of what hashing it cost, with the GIL held.
        buffer = bytearray(max(1, min(CHUNK_SIZE, os.fstat(handle.fileno()).st_size + 1)))
        view = memoryview(buffer)
        while True:
            read = handle.readinto(buffer)
            if not read:
                break
            digest.update(view[:read])
            if on_bytes is not None:
                on_bytes(read)
    return digest.hexdigest()
