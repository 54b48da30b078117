"""Heavy ML libraries stay unimported by the server, its views and its tasks (STYLE 10)."""

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
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in ("views", "tasks", "consumers", "admin", "serializers", "services", "selectors"):
            modules.append(f"{app}.{info.name}")
            importlib.import_module(f"{app}.{info.name}")
heavy = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
print(json.dumps({"modules": modules, "heavy": heavy}))
"""


def test_asgi_views_and_tasks_import_no_heavy_library(tmp_path):
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "loraforge.settings"}
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "adapters.views" in report["modules"]
    assert "adapters.tasks" in report["modules"]
    assert report["heavy"] == []
