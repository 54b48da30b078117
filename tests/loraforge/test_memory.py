"""``loraforge.memory``: the malloc arena cap applied at server start (issue 9)."""

from __future__ import annotations

import subprocess
import sys

from loraforge.memory import limit_malloc_arenas
from tests.processes import REPO_ROOT


def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_glibc_takes_the_cap():
    # In a child process: the cap is process-wide.
    code = "from loraforge.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {"PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-c", code]
    output = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=True)
    assert output.stdout.strip() == "True"


def test_the_heap_trimmer_trims_every_interval_until_stopped(monkeypatch):
    import threading

    from loraforge import memory

    memory.stop_heap_trimmer()  # one a lifespan test started in this process
    calls = threading.Semaphore(0)
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.release() or True)
    try:
        assert memory.start_heap_trimmer(interval=0.01) is True
        assert memory.start_heap_trimmer(interval=0.01) is False  # one per process
        assert all(calls.acquire(timeout=5) for _ in range(3))
    finally:
        memory.stop_heap_trimmer()
    assert not any(thread.name == "heap-trimmer" for thread in threading.enumerate())


def test_the_heap_trimmer_frees_what_a_burst_left():
    # In a child process: many small objects freed leave pages glibc keeps until trimmed.
    code = (
        "import ctypes, gc, time\n"
        "from loraforge import memory\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1])\n"
        "memory.limit_malloc_arenas()\n"
        "burst = [bytearray(2000) for _ in range(100000)]\n"
        "keep = burst[::500]\n"
        "del burst; gc.collect()\n"
        "before = rss()\n"
        "assert memory.start_heap_trimmer(interval=0.05)\n"
        "time.sleep(0.5)\n"
        "memory.stop_heap_trimmer()\n"
        "print(before - rss())\n"
    )
    argv = [sys.executable, "-c", code]
    output = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert int(output.stdout.strip()) * 4096 > 50 * 2**20  # pages handed back (of the ~190 MiB freed)
