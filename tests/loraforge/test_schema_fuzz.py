"""Schemathesis over every operation of ``/api/schema/`` against a real server (``make run``'s shape: uvicorn, the
embedded worker, a default backend on the fake SDNext), with an API key.

CI-sized: a fixed seed and ``LORAFORGE_FUZZ_EXAMPLES`` examples per operation (default 25). ``make fuzz`` runs the
same test longer (docs/RELIABILITY.md). The checks are never loosened: the code or the schema is fixed instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loraforge.api_keys import api_key_create
from tests.fakes.sdnext import FakeSDNext
from tests.lora_files import write_safetensors
from tests.processes import REPO_ROOT, ProcessSet, server_env

pytestmark = [pytest.mark.slow]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "unsupported_method",
)
SEED = os.environ.get("LORAFORGE_FUZZ_SEED", "20261204")
EXAMPLES = os.environ.get("LORAFORGE_FUZZ_EXAMPLES", "25")
CONFIG = REPO_ROOT / "tests" / "schemathesis.toml"
MAX_SECONDS = int(os.environ.get("LORAFORGE_FUZZ_MAX_SECONDS", "600"))


def _library(folder: Path) -> None:
    for name in ("detail_tweaker", "pixel_art", "ink_wash"):
        write_safetensors(folder / f"{name}.safetensors")


def _schemathesis(base_url: str, key: str, report: Path) -> subprocess.CompletedProcess[str]:
    executable = str(Path(sys.executable).parent / "schemathesis")
    argv = [executable, "--config-file", str(CONFIG), "run", f"{base_url}/api/schema/?format=json"]
    argv += ["--header", f"X-API-Key: {key}", "--checks", ",".join(CHECKS), "--seed", SEED]
    argv += ["--max-examples", EXAMPLES, "--workers", "1", "--generation-database", "none", "--no-color"]
    argv += ["--request-timeout", "60", "--report", "junit", "--report-junit-path", str(report)]
    # In its own folder: schemathesis writes a .schemathesis/ cache into its working directory.
    return subprocess.run(argv, cwd=report.parent, capture_output=True, text=True, timeout=MAX_SECONDS, check=False)


@pytest.mark.django_db(transaction=True)
def test_every_operation_passes_the_fuzzer(tmp_path: Path, fake_sdnext: FakeSDNext) -> None:
    fake = fake_sdnext
    loras = tmp_path / "loras"
    _library(loras)
    key = api_key_create(name="fuzzer").plain_key
    env = server_env(
        tmp_path,
        LORAFORGE_LORA_DIRS=str(loras),
        LORAFORGE_LOG_LEVEL="error",
        LORAFORGE_IMMEDIATE_WAIT_SECONDS="10",
        SDNEXT_URL=fake.url,
        SDNEXT_POLL_INTERVAL="0.2",
    )
    with ProcessSet(tmp_path / "logs") as procs:
        _web, base_url = procs.start_web(env)
        run = _schemathesis(base_url, key, tmp_path / "junit.xml")
    summary = run.stdout[run.stdout.find("=== SUMMARY") :] if "=== SUMMARY" in run.stdout else run.stdout[-3000:]
    print(summary)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert re.search(r"Tested: (\d+)", run.stdout), summary
