"""Batch embedding in a child process (the embedded shape): same vectors as the model in-process, failures reported
as "unavailable", a dead child replaced, and the batch path taking it only when the worker runs embedded."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations import encoder as encoder_module
from recommendations.encoder import encoder_get, semantic_available, unavailable_reason
from recommendations.models import AdapterEmbedding
from recommendations.process_encoder import process_encoder_get, process_encoder_stop
from recommendations.services import embeddings as embeddings_module
from recommendations.services.embeddings import embeddings_compute
from tests.factories import AdapterFactory

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
