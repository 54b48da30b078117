"""A real server (uvicorn, embedded shape) on a machine without sentence-transformers (SPEC 6.7.1): every
recommendations endpoint answers from the lexical index, and an embeddings job succeeds and says semantic
embeddings are unavailable."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import requests

from loraforge.api_keys import api_key_create
from tests.factories import AdapterFactory
from tests.processes import ProcessSet, server_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
BASE = "/api/v1/recommendations"

# Installed at start-up through PYTHONPATH: every meta-path finder is wrapped so that it never finds the hidden
# packages, which is what an installation without them looks like (``find_spec`` None, import ModuleNotFoundError).
SITECUSTOMIZE = textwrap.dedent(
    """
    import sys

    HIDDEN = ("sentence_transformers",)


    class _Hiding:
        def __init__(self, inner):
            self._inner = inner

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                return None
            find = getattr(self._inner, "find_spec", None)
            return find(name, path, target) if find is not None else None

        def __getattr__(self, attribute):
            return getattr(self._inner, attribute)


    sys.meta_path[:] = [_Hiding(finder) for finder in sys.meta_path]
    """
)


def _hiding_path(tmp_path: Path) -> str:
    folder = tmp_path / "without-sentence-transformers"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return str(folder)


def test_every_endpoint_answers_without_sentence_transformers(tmp_path):
    target = AdapterFactory(name="Celestial Anime Portraits", tags=["anime"], triggers=["celestial style"])
    AdapterFactory(name="Celestial Anime Eyes", tags=["anime"])
    key = api_key_create(name="fallback").plain_key
    env = server_env(tmp_path, PYTHONPATH=_hiding_path(tmp_path), LORAFORGE_EMBEDDING_DEVICE="cpu")
    session = requests.Session()
    session.headers["X-API-Key"] = key
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)

        def get(path, **params):
            response = session.get(f"{base_url}{BASE}/{path}", params=params, timeout=30)
            assert response.status_code == 200, (path, response.status_code, response.text[:500])
            return response.json()

        def post(path, body=None, expected=200):
            response = session.post(f"{base_url}{BASE}/{path}", json=body, timeout=30)
            assert response.status_code == expected, (path, response.status_code, response.text[:500])
            return response.json()

        stats = get("stats")
        assert (stats["semantic_available"], stats["tfidf_indexed"]) == (False, 2)
        similar = get(f"similar/{target.pk}")
        assert [item["lora_name"] for item in similar["recommendations"]] == ["Celestial Anime Eyes"]
        assert similar["recommendation_config"]["semantic_enabled"] is False
        assert similar["recommendations"][0]["semantic_similarity"] is None
        assert post("for-prompt", {"prompt": "anime eyes"})["recommendations"]
        assert get("by-trigger", trigger_query="celestial style")["recommendations"][0]["lora_name"] == target.name
        assert get(f"works-well-with/{target.pk}")["recommendations"] == []
        health = get("health")
        assert (health["status"], health["checks"]["semantic_available"]) == ("healthy", False)
        status = get(f"embeddings/{target.pk}")
        assert (status["semantic_available"], status["has_lexical_index"]) == (False, True)

        queued = post("embeddings/compute", {}, expected=202)

        def finished():
            job = session.get(f"{base_url}/api/v1/jobs/{queued['job_id']}", timeout=30).json()["job"]
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        job = wait_until(finished, timeout=60, what="the embeddings job to finish", procs=[web])
        assert job["status"] == "succeeded", job
        assert job["result"]["semantic_available"] is False
        assert job["result"]["processed_count"] == 0
        assert post(f"embeddings/{target.pk}/compute", expected=202)["queued_count"] == 1
        assert get("stats")["semantic_available"] is False
        assert "Traceback" not in web.log()
