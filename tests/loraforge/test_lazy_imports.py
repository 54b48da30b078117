"""Heavy ML libraries (torch, scikit-learn, sentence-transformers, transformers, pynvml) stay unimported by the
server and by every module of every app, the recommendations views and tasks included (STYLE 10): each one imports
them inside the functions that need them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sklearn", "sentence_transformers", "pynvml", "transformers")

PROBE = """
import importlib, json, pkgutil, sys
import loraforge.asgi
modules = []
for app in ("loraforge", "adapters", "deliveries", "generation", "recommendations", "analytics", "backups"):
    package = importlib.import_module(app)
    for info in pkgutil.walk_packages(package.__path__, app + "."):
        if ".migrations" not in info.name:
            modules.append(info.name)
            importlib.import_module(info.name)
heavy = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
print(json.dumps({"modules": modules, "heavy": heavy}))
"""


def test_the_server_and_every_module_import_no_heavy_library(tmp_path):
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "loraforge.settings"}
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for module in (
        "adapters.views", "adapters.tasks", "generation.jobs.views", "generation.results.views",
        "recommendations.views", "recommendations.tasks", "recommendations.encoder", "recommendations.lexical",
        "recommendations.services.recommend", "recommendations.services.embeddings",
        "analytics.views.status", "analytics.views.dashboard", "analytics.tasks", "analytics.gpus",
        "analytics.status.assembler",
    ):  # fmt: skip
        assert module in report["modules"]
    assert len(report["modules"]) > 100
    assert report["heavy"] == []


STARTUP_PROBE = """
import importlib, json, sys
import loraforge.asgi
from django.urls import get_resolver
get_resolver().url_patterns  # every view module, as the first request loads them
for app in ("loraforge", "adapters", "deliveries", "recommendations", "analytics", "backups"):
    importlib.import_module(app + ".tasks")  # what the embedded worker registers
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("numpy", "scipy"))))
"""


def test_the_server_starts_and_routes_without_numpy(tmp_path):
    """numpy (and scipy) load with the first recommendation or vector, not with the server: a process that never
    recommends stays as lean as before the recommendations app (issue 9's RSS goal; numpy costs ~15 MiB)."""
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "loraforge.settings"}
    result = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
