"""Process memory settings applied once at server start."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter
SERVER_ARENAS = 2


def limit_malloc_arenas(count: int = SERVER_ARENAS) -> bool:
    """Cap glibc's malloc arenas before the server's threads start.

    glibc gives each thread that allocates concurrently an arena of its own (up to 8 per core), and memory freed
    in one is not reused by another: with the HTTP thread pool and the embedded worker, RSS grew by tens of MiB
    under a write burst and stayed there. Two arenas keep it flat at no measurable cost in throughput (the GIL
    serialises most allocation anyway). ``MALLOC_ARENA_MAX`` in the environment wins; a libc other than glibc
    is left alone. Returns whether the cap was applied.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))
