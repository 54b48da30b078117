"""Batch embedding in a child process (the embedded shape): same vectors as the model in-process, failures reported
as "unavailable", a dead child replaced, and the batch path taking it only when the worker runs embedded."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommendations import encoder as encoder_module
from recommendations.encoder import encoder_get, semantic_available, unavailable_reason
from recommendations.models import AdapterEmbedding
from recommendations.process_encoder import ProcessEncoder, process_encoder_get, process_encoder_stop
from recommendations.services import embeddings as embeddings_module
from recommendations.services.embeddings import embeddings_compute
from recommendations.vectors import vector_from_bytes
from tests.factories import AdapterFactory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.semantic, pytest.mark.django_db]
TEXTS = ["soft aquarelle washes on cold-press paper", "rain-soaked megacity alleys under neon signs"]


@pytest.fixture(autouse=True)
def _no_child_left():
    process_encoder_stop()
    yield
    process_encoder_stop()


def test_the_child_encodes_exactly_like_the_model_in_this_process():
    child = process_encoder_get()
    assert child is not None
    assert (child.dim, child.device) == (384, "cpu")
    vectors = child.encode(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, encoder_get().encode(TEXTS), atol=1e-6)


def test_the_childs_rows_are_stored_as_it_wrote_them():
    """Batch embedding hands the child's little-endian float32 bytes over as they are, one ``bytes`` per text."""
    child = process_encoder_get()
    assert child is not None
    rows = child.encode_rows(TEXTS)
    assert [len(row) for row in rows] == [4 * 384, 4 * 384]
    decoded = np.stack([vector_from_bytes(row, 384) for row in rows])
    assert np.allclose(decoded, encoder_get().encode(TEXTS), atol=1e-6)
    in_process = encoder_get().encode_rows(TEXTS)
    assert np.allclose(decoded, np.stack([vector_from_bytes(row, 384) for row in in_process]), atol=1e-6)


class _Answering:
    """A stand-in for the child's pipes that answers every request with ``answer``."""

    def __init__(self, answer: dict) -> None:
        self.stdin = io.StringIO()
        self.stdout = io.StringIO(json.dumps(answer) + "\n")

    def poll(self) -> None:
        return None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"vectors": base64.b64encode(b"\0" * (4 * 384 + 4)).decode()}, "answered 1540 bytes for 1 vectors of 384"),
        ({"vectors": base64.b64encode(b"\0" * (4 * 383)).decode()}, "answered 1532 bytes for 1 vectors of 384"),
        ({"error": "OutOfMemoryError"}, "failed (OutOfMemoryError)"),
    ],
)
def test_a_child_answer_of_the_wrong_size_or_an_error_is_refused(answer, message):
    encoder = ProcessEncoder(_Answering(answer), dim=384, device="cpu")
    with pytest.raises(RuntimeError, match=re.escape(message)):
        encoder.encode_rows(["one text"])


EMBEDDED_PROBE = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from adapters.models import Adapter
from recommendations.models import AdapterEmbedding
from recommendations.services import embeddings
embeddings.embedded_worker_running = lambda: True
ids = [Adapter.objects.create(name=name, file_path=f"/srv/loras/{name}.safetensors").pk for name in ("one", "two")]
report = embeddings.embeddings_compute(adapter_ids=ids)
stored = sorted(len(bytes(row.vector)) for row in AdapterEmbedding.objects.all())
numeric = sorted(name for name in sys.modules if name.split(".")[0] in ("numpy", "scipy", "torch"))
print(json.dumps({"processed": report.processed_count, "stored": stored, "numeric": numeric}))
"""


def test_the_embedded_shape_stores_vectors_without_loading_numpy_in_the_server(tmp_path):
    """In ``make run``'s shape the child embeds, and the server stores its bytes without numpy (~15 MiB of RSS)."""
    env = {
        **os.environ, "LORAFORGE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "loraforge.settings",
        "LORAFORGE_EMBEDDED_WORKER": "off",
    }  # fmt: skip
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", EMBEDDED_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"processed": 2, "stored": [4 * 384, 4 * 384], "numeric": []}


def test_a_model_the_child_cannot_load_makes_semantic_embeddings_unavailable(settings, tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    settings.LORAFORGE_EMBEDDING_MODEL = str(folder)
    encoder_module.encoder_reset()
    try:
        assert process_encoder_get() is None
        assert not semantic_available()
        assert unavailable_reason() == f"Cannot load the embedding model {folder}"
    finally:
        encoder_module.encoder_reset()


def test_a_dead_child_is_replaced_on_next_use():
    first = process_encoder_get()
    assert first is not None
    first.process.kill()
    first.process.wait()
    second = process_encoder_get()
    assert second is not None
    assert second is not first
    assert second.encode(TEXTS[:1]).shape == (1, 384)


def test_with_the_worker_embedded_batches_are_embedded_by_the_child(monkeypatch):
    adapters = [AdapterFactory(description=text) for text in TEXTS]
    monkeypatch.setattr(embeddings_module, "embedded_worker_running", lambda: True)

    def in_process(*args, **kwargs):
        raise AssertionError("the web process must not load the model for batch work")

    monkeypatch.setattr(embeddings_module, "encoder_get", in_process)
    report = embeddings_compute(adapter_ids=[a.pk for a in adapters])
    assert (report.processed_count, report.error_count) == (2, 0)
    assert AdapterEmbedding.objects.filter(adapter__in=adapters, dim=384).count() == 2
