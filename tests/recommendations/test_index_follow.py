"""The index follows catalogue writes without a fit (``recommendations.index``): the followed snapshot equals a
fresh load, changed documents are transformed with the fitted vocabularies, vectors are carried or read, a write to
columns no recommendation reads costs nothing, and a fit runs in the background once enough changed or a word is
new. Small catalogues (up to ``EXACT_REFIT_MAX_ADAPTERS``) are refitted at once; ``test_index_freshness`` covers that.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest
from django.db.models import F
from django.utils import timezone

from adapters.models import Adapter
from recommendations import index as index_module
from recommendations.catalogue import Update, catalogue_load, catalogue_update
from recommendations.documents import semantic_text, text_sha256
from recommendations.encoder import model_name
from recommendations.index import index_current, index_peek, index_reset
from recommendations.models import AdapterEmbedding
from recommendations.vectors import semantic_matrix_load, semantic_matrix_update, vector_to_bytes
from tests.factories import AdapterFactory

BASE = "/api/v1/recommendations"
STYLES = ["watercolor", "ink", "neon", "pastel", "pixel", "oil", "sketch", "noir"]
SUBJECTS = ["harbour", "castle", "forest", "knight", "garden", "robot"]


@pytest.fixture
def refits(monkeypatch) -> list[str]:
    """Every catalogue follows writes (none refits at once); background fits are recorded, not run."""
    monkeypatch.setattr(index_module, "EXACT_REFIT_MAX_ADAPTERS", 0)
    monkeypatch.setattr(index_module, "INLINE_REFIT_SHARE", 1.0)
    monkeypatch.setattr(index_module, "NOVEL_REFIT_SECONDS", 0.0)
    monkeypatch.setattr(index_module, "REFIT_SHARE", 10.0)  # tests that want it set their share
    started: list[str] = []
    monkeypatch.setattr(index_module, "_refit_in_background", lambda: started.append("refit"))
    return started


def make_catalogue(count: int = 24) -> list[Any]:
    return [
        AdapterFactory(
            name=f"{STYLES[n % len(STYLES)].title()} {SUBJECTS[n % len(SUBJECTS)].title()} {n}",
            description=f"A {STYLES[n % len(STYLES)]} painting of a {SUBJECTS[n % len(SUBJECTS)]}.",
            tags=[STYLES[n % len(STYLES)], SUBJECTS[n % len(SUBJECTS)]],
            trained_words=[f"{STYLES[n % len(STYLES)]} style"],
            stats={"downloadCount": 10 * n, "rating": 4.0},
        )
        for n in range(count)
    ]


def follow_a_new_word(count: int, *, semantic: bool = False) -> Any:
    """A catalogue of ``count`` adapters indexed, then one description with a word none had: the followed index."""
    adapters = make_catalogue(count)
    if semantic:
        store_vectors(adapters)
    index_current(semantic=semantic)
    adapters[0].description = "A zeppelin over the harbour."
    adapters[0].save()
    followed = index_current(semantic=semantic)
    assert followed.lexical is not None
    assert followed.lexical.novel
    return followed


def assert_same_snapshot(followed: Any, fresh: Any) -> None:
    assert followed.ids == fresh.ids
    assert followed.names == fresh.names
    assert followed.documents == fresh.documents
    assert followed.semantic_hashes == fresh.semantic_hashes
    assert followed.phrases == fresh.phrases
    assert followed.tag_sets == fresh.tag_sets
    assert followed.metadata == fresh.metadata
    assert followed.signatures == fresh.signatures
    assert list(followed.base_family) == list(fresh.base_family)
    assert np.array_equal(followed.active, fresh.active)
    assert np.array_equal(followed.quality, fresh.quality)
    assert np.array_equal(followed.popularity, fresh.popularity)
    assert np.array_equal(followed.name_rank, fresh.name_rank)
    assert followed.position == fresh.position


def write_some(adapters: list[Adapter]) -> dict[str, int]:
    """Two texts changed, two toggled, two deleted, three created (with words the fit knows)."""
    for adapter in adapters[:2]:
        adapter.description = "A noir sketch of a castle garden."
        adapter.tags = ["noir", "castle"]
        adapter.save()
    for adapter in adapters[2:4]:
        adapter.active = not adapter.active
        adapter.save()
    Adapter.objects.filter(pk__in=[adapters[4].pk, adapters[5].pk]).delete()
    for n in range(3):
        AdapterFactory(name=f"Pastel Robot New {n}", description="A pastel robot in a forest.", tags=["pastel"])
    return {"read": 2 + 2 + 3, "removed": 2}


@pytest.mark.django_db
def test_the_followed_snapshot_equals_a_fresh_load():
    adapters = make_catalogue()
    before = catalogue_load()
    expected = write_some(adapters)
    update = catalogue_update(before)
    assert_same_snapshot(update.catalogue, catalogue_load())
    assert update.removed == expected["removed"]
    assert update.changed == expected["read"] + expected["removed"]
    kept = update.unchanged >= 0
    assert kept.sum() == len(update.catalogue) - expected["read"]
    for row in np.flatnonzero(kept):  # a copied row is the same adapter's row, as it was
        assert before.ids[update.unchanged[row]] == update.catalogue.ids[row]
        assert before.entries[update.unchanged[row]] is update.catalogue.entries[row]


@pytest.mark.django_db
def test_writes_to_the_same_adapters_replace_their_rows_in_a_copy():
    adapters = make_catalogue()
    before = catalogue_load()
    adapters[3].description = "A noir castle."
    adapters[3].save()
    old_name = adapters[7].name
    adapters[7].name = "Aaa First By Name"  # moves in the name order
    adapters[7].save()
    adapters[9].active = not adapters[9].active
    adapters[9].save()
    update = catalogue_update(before)
    assert update.changed == 3
    assert_same_snapshot(update.catalogue, catalogue_load())
    assert update.catalogue.name_rank[update.catalogue.position[str(adapters[7].pk)]] == 0
    assert before.names[before.position[str(adapters[7].pk)]] == old_name  # the snapshot it came from is unchanged
    assert before.documents != update.catalogue.documents
    assert before.documents == [before.entries[row].document for row in range(len(before))]


@pytest.mark.django_db
def test_an_unchanged_catalogue_copies_every_row():
    make_catalogue(6)
    before = catalogue_load()
    update = catalogue_update(before)
    assert update.changed == 0
    assert list(update.unchanged) == list(range(6))


@pytest.mark.django_db
def test_a_followed_lexical_index_is_the_fitted_vocabularies_applied_to_every_document(refits):
    adapters = make_catalogue()
    fitted = index_current(semantic=False)
    write_some(adapters)
    followed = index_current(semantic=False)
    assert followed is not fitted
    assert followed.catalogue.documents == catalogue_load().documents
    lexical, documents = followed.lexical, followed.catalogue.documents
    assert lexical.word_vectorizer is fitted.lexical.word_vectorizer  # no fit
    assert np.allclose(lexical.word.toarray(), lexical.word_vectorizer.transform(documents).toarray(), atol=1e-6)
    assert np.allclose(lexical.char.toarray(), lexical.char_vectorizer.transform(documents).toarray(), atol=1e-6)
    texts = [phrase for phrases in followed.catalogue.phrases for phrase in phrases]
    assert lexical.phrase_texts == texts
    assert [followed.catalogue.ids[row] for row in lexical.phrase_rows] == [
        adapter_id
        for adapter_id, phrases in zip(followed.catalogue.ids, followed.catalogue.phrases, strict=True)
        for _ in phrases
    ]
    assert np.allclose(lexical.phrases.toarray(), lexical.phrase_vectorizer.transform(texts).toarray(), atol=1e-6)
    assert followed.drift == 7 + 2


@pytest.mark.django_db
def test_a_followed_index_ranks_like_a_fit(api, refits):
    adapters = make_catalogue()
    index_current()
    write_some(adapters)
    target = adapters[0]
    followed = api.get(f"{BASE}/similar/{target.pk}?limit=10").json()["recommendations"]
    index_current(force=True)  # a fit of the same catalogue
    fitted = api.get(f"{BASE}/similar/{target.pk}?limit=10").json()["recommendations"]
    assert [item["lora_id"] for item in followed][:3] == [item["lora_id"] for item in fitted][:3]
    for ours, theirs in zip(followed, fitted, strict=True):
        assert ours["similarity_score"] == pytest.approx(theirs["similarity_score"], abs=0.1)


@pytest.mark.django_db
def test_follow_mode_serves_creates_updates_and_deletes_at_once(api, refits):
    adapters = make_catalogue()
    names = lambda prompt: [  # noqa: E731
        item["lora_name"]
        for item in api.post(
            f"{BASE}/for-prompt", data=json.dumps({"prompt": prompt, "limit": 50}), content_type="application/json"
        ).json()["recommendations"]
    ]
    assert "Pastel Robot New 0" not in names("pastel robot")
    write_some(adapters)
    found = names("pastel robot")
    assert {"Pastel Robot New 0", "Pastel Robot New 1", "Pastel Robot New 2"} <= set(found)
    assert adapters[4].name not in names(adapters[4].name.lower())  # deleted
    assert adapters[0].name in names("noir castle garden")  # its new text


@pytest.mark.django_db
def test_a_write_no_recommendation_reads_keeps_the_index(refits):
    adapters = make_catalogue(8)
    first = index_current(semantic=False)
    Adapter.objects.filter(pk=adapters[0].pk).update(usage_count=F("usage_count") + 1, last_used_at=timezone.now())
    second = index_current(semantic=False)
    assert second.fingerprint != first.fingerprint
    assert second.catalogue is first.catalogue
    assert second.lexical is first.lexical


@pytest.mark.django_db
def test_a_new_word_starts_a_background_fit(refits):
    adapters = make_catalogue(8)
    index_current(semantic=False)
    adapters[1].description = "A noir castle."  # known words
    adapters[1].save()
    assert not index_current(semantic=False).lexical.novel
    assert refits == []
    adapters[0].description = "A zeppelin over the harbour."
    adapters[0].save()
    followed = index_current(semantic=False)
    assert followed.lexical.novel
    assert refits == ["refit"]


@pytest.mark.django_db
def test_a_new_word_waits_for_the_interval_since_the_last_fit(refits, monkeypatch):
    monkeypatch.setattr(index_module, "NOVEL_REFIT_SECONDS", 60.0)
    followed = follow_a_new_word(8)
    assert refits == []
    monkeypatch.setattr(index_module.time, "monotonic", lambda: followed.fitted_at + 61)
    assert index_current(semantic=False) is followed  # nothing changed: a cache hit starts the due fit
    assert refits == ["refit"]


@pytest.mark.django_db
def test_changes_beyond_the_share_start_a_background_fit(refits, monkeypatch):
    adapters = make_catalogue(20)
    monkeypatch.setattr(index_module, "REFIT_SHARE", 0.1)
    index_current(semantic=False)
    adapters[0].active = not adapters[0].active
    adapters[0].save()
    assert index_current(semantic=False).drift == 1
    assert refits == []  # 1 of 20
    for adapter in adapters[1:3]:
        adapter.active = not adapter.active
        adapter.save()
    assert index_current(semantic=False).drift == 3
    assert refits == ["refit"]  # 3 of 20


@pytest.mark.django_db
def test_a_large_change_is_fitted_at_once(refits, monkeypatch):
    monkeypatch.setattr(index_module, "INLINE_REFIT_SHARE", 0.5)
    adapters = make_catalogue(10)
    fitted = index_current(semantic=False)
    for adapter in adapters[:6]:
        adapter.description = "Something else entirely."
        adapter.save()
    refitted = index_current(semantic=False)
    assert refitted.lexical.word_vectorizer is not fitted.lexical.word_vectorizer
    assert refitted.drift == 0


def store_vectors(adapters: list[Adapter], seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for adapter in adapters:
        vector = rng.standard_normal(8).astype(np.float32)
        AdapterEmbedding.objects.update_or_create(
            adapter=adapter,
            defaults={
                "model_name": model_name(),
                "dim": 8,
                "vector": vector_to_bytes(vector / np.linalg.norm(vector)),
                "text_sha256": text_sha256(semantic_text(Adapter.objects.get(pk=adapter.pk))),
                "computed_at": timezone.now(),
            },
        )


@pytest.mark.django_db
def test_the_vectors_follow_the_catalogue():
    adapters = make_catalogue(12)
    store_vectors(adapters[:10])  # two without a vector
    before = catalogue_load()
    previous = semantic_matrix_load(before, model_name())
    adapters[0].description = "A noir castle."  # its vector is stale now
    adapters[0].save()
    adapters[1].active = not adapters[1].active  # its vector is still current
    adapters[1].save()
    adapters[2].delete()
    adapters[10].name = "Renamed"  # had no vector: gets one for its new text
    adapters[10].save()
    created = AdapterFactory(name="Pastel Robot", description="A pastel robot.")
    store_vectors([created, adapters[10]], seed=2)
    update = catalogue_update(before)
    followed = semantic_matrix_update(previous, update, model_name())
    expected = semantic_matrix_load(update.catalogue, model_name())
    assert np.array_equal(followed.has, expected.has)
    assert np.array_equal(followed.matrix, expected.matrix)
    assert not followed.has[update.catalogue.position[str(adapters[0].pk)]]
    assert followed.has[update.catalogue.position[str(created.pk)]]


@pytest.mark.django_db
def test_the_vectors_follow_writes_to_the_same_adapters():
    adapters = make_catalogue(8)
    store_vectors(adapters[:6])
    before = catalogue_load()
    previous = semantic_matrix_load(before, model_name())
    adapters[0].description = "A noir castle."  # stale now
    adapters[0].save()
    adapters[6].name = "Renamed"  # had none: gets one for its new text
    adapters[6].save()
    adapters[1].active = not adapters[1].active  # kept
    adapters[1].save()
    store_vectors([adapters[6]], seed=3)
    update = catalogue_update(before)
    assert update.removed == 0
    followed = semantic_matrix_update(previous, update, model_name())
    expected = semantic_matrix_load(update.catalogue, model_name())
    assert np.array_equal(followed.has, expected.has)
    assert np.array_equal(followed.matrix, expected.matrix)
    assert not followed.has[update.catalogue.position[str(adapters[0].pk)]]
    assert followed.has[update.catalogue.position[str(adapters[6].pk)]]
    assert previous.has[before.position[str(adapters[0].pk)]]  # the matrix it came from is left as it was


@pytest.mark.django_db
def test_vectors_written_without_a_catalogue_change_wait_for_the_vectors_fingerprint():
    """The follow keeps rows of unchanged adapters as they were; a vector stored for one of them changes the vectors'
    fingerprint, which reloads the matrix (``test_semantic`` covers that reload)."""
    adapters = make_catalogue(4)
    before = catalogue_load()
    previous = semantic_matrix_load(before, model_name())
    assert previous is None
    store_vectors(adapters[:1])
    update = catalogue_update(before)
    assert update.changed == 0
    assert semantic_matrix_update(previous, update, model_name()) is None


@pytest.mark.django_db
def test_a_background_fit_carries_the_vectors_of_the_index_it_replaces(refits):
    followed = follow_a_new_word(10, semantic=True)
    assert refits == ["refit"]
    index_module._refit()  # what the background thread runs
    fitted = index_peek()
    assert fitted is not followed
    assert fitted.drift == 0
    assert not fitted.lexical.novel
    assert "zeppelin" in fitted.lexical.word_vectorizer.vocabulary_
    assert fitted.semantic_fingerprint == followed.semantic_fingerprint
    assert np.array_equal(fitted.semantic.has, followed.semantic.has)
    assert np.array_equal(fitted.semantic.matrix, followed.semantic.matrix)


@pytest.mark.django_db
def test_a_background_fit_does_not_replace_an_index_fitted_meanwhile(refits):
    follow_a_new_word(10)
    forced = index_current(force=True)
    index_module._refit()
    assert index_peek() is forced


@pytest.mark.django_db
def test_a_background_fit_ending_after_a_reset_installs_nothing(refits):
    # A fit still running when the index is dropped (a test's reset) must not bring an index back.
    follow_a_new_word(10)
    index_reset()
    index_module._refit()
    assert index_peek() is None


@pytest.mark.django_db(transaction=True)
def test_the_background_fit_runs_in_a_thread_and_replaces_the_index(monkeypatch):
    monkeypatch.setattr(index_module, "EXACT_REFIT_MAX_ADAPTERS", 0)
    monkeypatch.setattr(index_module, "NOVEL_REFIT_SECONDS", 0.0)
    followed = follow_a_new_word(10)
    deadline = time.monotonic() + 30
    while (index_peek() is followed or index_module._state.refitting) and time.monotonic() < deadline:
        time.sleep(0.05)
    fitted = index_peek()
    assert fitted is not followed
    assert not fitted.lexical.novel
    assert "zeppelin" in fitted.lexical.word_vectorizer.vocabulary_
    assert fitted.fingerprint == followed.fingerprint


@pytest.mark.django_db
def test_update_between_two_loads_knows_no_copied_row():
    adapters = make_catalogue(5)
    before = catalogue_load()
    adapters[0].delete()
    update = Update.between(before, catalogue_load())
    assert update.removed == 1
    assert update.changed == 4 + 1
    sources = update.sources(lambda snapshot, row: snapshot.documents[row])
    assert [before.ids[old] for old in sources] == update.catalogue.ids  # equal documents found by id


@pytest.mark.parametrize("seed", range(5))
def test_taking_rows_equals_indexing_and_stacking(seed):
    """``_take_rows`` copies runs of rows as slices: the result equals row indexing of the old rows stacked with the
    transformed new ones, whatever the order of runs, new rows and dropped rows."""
    from scipy.sparse import random as sparse_random
    from scipy.sparse import vstack

    from recommendations.lexical import _take_rows

    rng = np.random.default_rng(seed)
    old = sparse_random(40, 30, density=0.2, format="csr", dtype=np.float32, random_state=seed)
    fresh_rows = sparse_random(6, 30, density=0.3, format="csr", dtype=np.float32, random_state=seed + 100)

    class Rows:  # a vectorizer whose transform gives the prepared rows
        def transform(self, texts: list[str]) -> Any:
            return fresh_rows[[int(text) for text in texts]]

    kept = np.sort(rng.choice(40, size=30, replace=False))  # 10 dropped, order kept (snapshots are sorted by id)
    sources = np.insert(kept, rng.choice(31, size=6), -1)  # 6 new rows anywhere
    texts = [str(n) for n in range(6)]
    taken = _take_rows(old, sources, Rows(), texts)
    take = sources.copy()
    take[take < 0] = 40 + np.arange(6)
    expected = vstack([old, fresh_rows], format="csr")[take]
    assert taken.shape == expected.shape
    assert np.array_equal(taken.toarray(), expected.toarray())
    assert _take_rows(old, np.arange(40), Rows(), []) is old
