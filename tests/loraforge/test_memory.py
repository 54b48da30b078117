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
