"""The per-process recommendation index: a catalogue snapshot with its lexical index, and the matrix of current
sentence vectors. Never stale: each request reads the catalogue's fingerprint (the version and row count the
adapters' triggers keep: one indexed read) and the embeddings' fingerprint (the version the embeddings table's
triggers keep: another), and brings up to date what changed.

After a catalogue write the index follows it: the snapshot's changed rows are read again, their documents transformed
with the fitted vocabularies and their vectors read, the rest copied (milliseconds for a few writes, where a fit takes
seconds per ten thousand adapters). Once more than ``REFIT_SHARE`` of the rows changed since the last fit, a fit runs
in a background thread (one at a time) and replaces the index when done; so does a document that brought a word the
fit never saw (a new name, say: until then it matches through its character n-grams only), at most every
``NOVEL_REFIT_SECONDS``. A catalogue of at most ``EXACT_REFIT_MAX_ADAPTERS``, or a change to more than
``INLINE_REFIT_SHARE`` of it, is fitted again at once."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

from adapters.selectors import catalogue_state
from loraforge.memory import release_free_memory
from recommendations.encoder import model_name
from recommendations.models import EmbeddingState

if TYPE_CHECKING:  # numpy and the index's parts load with the first index built, not with the server
    from recommendations.catalogue import Catalogue
    from recommendations.lexical import LexicalIndex
    from recommendations.vectors import SemanticMatrix

logger = logging.getLogger("loraforge.recommendations")

INLINE_BUILD_MAX_ADAPTERS = 2000
EXACT_REFIT_MAX_ADAPTERS = 500  # a fit well under a second: every change refits (exact vocabulary and weights)
INLINE_REFIT_SHARE = 0.5  # a change to more rows than this share refits at once (transforming them costs as much)
REFIT_SHARE = 0.1  # rows changed since the last fit beyond which a fit runs in the background
NOVEL_REFIT_SECONDS = 60.0  # a word the fit never saw: a background fit at most this often (seconds of CPU each)


@dataclass
class RecoIndex:
    fingerprint: Any
    catalogue: Catalogue
    lexical: LexicalIndex | None  # None when the catalogue is empty
    built_at: datetime
    build_seconds: float
    semantic_fingerprint: Any = None
    semantic: SemanticMatrix | None = None
    drift: int = 0  # rows changed (added, written, deleted) since the vocabularies were fitted
    fitted_at: float = field(default_factory=time.monotonic)  # when they were

    @property
    def memory_bytes(self) -> int:
        lexical = self.lexical.memory_bytes if self.lexical else 0
        return lexical + (self.semantic.memory_bytes if self.semantic else 0)


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    index: RecoIndex | None = None
    hits: int = 0
    requests: int = 0
    building: bool = False
    refitting: bool = False
    refit_lock: threading.Lock = field(default_factory=threading.Lock)


_state = _State()


def catalogue_fingerprint() -> Any:
    return catalogue_state()


def embeddings_fingerprint() -> Any:
    """``(model, version)``: the version the embeddings table's triggers bump on every write (one indexed read; a
    count and max over every vector row cost 6.6-10.9 ms at 100,000 rows on PostgreSQL, and missed a rewrite that
    kept both, such as a restore's older vectors). A row of another model still changes it; the matrix load keeps
    only this model's."""
    name = model_name()
    if not name:
        return None
    with connection.cursor() as cursor:  # plain SQL: this runs on every recommendation
        cursor.execute(f"SELECT version FROM {EmbeddingState._meta.db_table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    return (name, None if row is None else int(row[0]))


def index_current(*, force: bool = False, semantic: bool = True) -> RecoIndex:
    """The index for the catalogue as it is now (rebuilt when it changed or ``force``); with ``semantic``, its
    matrix of current vectors is brought up to date too. Counts toward the cache-hit rate."""
    fingerprint = catalogue_fingerprint()
    index = _state.index
    rebuilt = False
    if force or index is None or index.fingerprint != fingerprint:
        with _state.lock:
            index = _state.index
            if force or index is None or index.fingerprint != fingerprint:
                if index is None and semantic and not force:
                    # the process's first index, for a request that scores (similar, works-well-with, for-prompt,
                    # the admin's panel: they read co-usage; by-trigger, stats and a forced rebuild do not): a
                    # large co-usage history is loaded with it
                    from recommendations.cousage import history_prepare

                    history_prepare()
                index = _build(fingerprint) if force or index is None else _follow(index, fingerprint)
                _state.index = index
                rebuilt = True
    if _refit_due(index):
        _refit_in_background()
    if semantic:
        _semantic_refresh(index)
    _state.requests += 1
    _state.hits += 0 if rebuilt else 1
    return index


def _build(fingerprint: Any) -> RecoIndex:
    from recommendations.catalogue import catalogue_load
    from recommendations.lexical import lexical_build

    started = time.perf_counter()
    catalogue = catalogue_load()
    lexical = lexical_build(catalogue) if len(catalogue) else None
    release_free_memory()  # the fit's temporary n-gram counts
    seconds = time.perf_counter() - started
    logger.info("Recommendation index built: %d adapters in %.2f s", len(catalogue), seconds)
    return RecoIndex(fingerprint, catalogue, lexical, timezone.now(), seconds)


def _follow(index: RecoIndex, fingerprint: Any) -> RecoIndex:
    """``index`` brought up to the catalogue as it is now (see the module's docstring)."""
    from recommendations.catalogue import catalogue_update
    from recommendations.lexical import lexical_build, lexical_update
    from recommendations.vectors import semantic_matrix_update

    started = time.perf_counter()
    update = catalogue_update(index.catalogue)
    if not update.changed:  # columns no recommendation reads (usage, file times, hash state)
        return replace(index, fingerprint=fingerprint)
    catalogue = update.catalogue
    drift = index.drift + update.changed
    if not len(catalogue):
        lexical, drift = None, 0
    elif (
        index.lexical is None
        or len(catalogue) <= EXACT_REFIT_MAX_ADAPTERS
        or update.changed > INLINE_REFIT_SHARE * len(catalogue)
    ):
        lexical, drift = lexical_build(catalogue), 0
    else:
        lexical = lexical_update(index.lexical, update)
    semantic = None
    if index.semantic_fingerprint is not None:
        semantic = semantic_matrix_update(index.semantic, update, model_name())
    seconds = time.perf_counter() - started
    logger.info("Recommendation index followed %d changed rows in %.3f s", update.changed, seconds)
    followed = RecoIndex(
        fingerprint, catalogue, lexical, timezone.now(), seconds, index.semantic_fingerprint, semantic, drift,
        fitted_at=index.fitted_at if drift else time.monotonic(),
    )  # fmt: skip
    return followed


def _refit_due(index: RecoIndex) -> bool:
    if index.lexical is None or _state.refitting:
        return False
    if index.drift > REFIT_SHARE * len(index.catalogue):
        return True
    return index.lexical.novel and time.monotonic() - index.fitted_at >= NOVEL_REFIT_SECONDS


def _refit_in_background() -> None:
    """Start a fit of the whole catalogue in a thread (one at a time); requests go on with the followed index."""
    with _state.refit_lock:
        if _state.refitting:
            return
        _state.refitting = True
    threading.Thread(target=_refit, name="recommendation-refit", daemon=True).start()


def _refit() -> None:
    from recommendations.catalogue import Update
    from recommendations.vectors import semantic_matrix_update

    try:
        fitted = _build(catalogue_fingerprint())
        with _state.lock:  # the index may have followed more writes meanwhile: the next request follows them again
            current = _state.index
            if current is None or not current.drift:
                return  # dropped meanwhile (``index_reset``) or fitted meanwhile (a forced rebuild): keep it
            if current.semantic_fingerprint is not None:
                update = Update.between(current.catalogue, fitted.catalogue)
                fitted.semantic = semantic_matrix_update(current.semantic, update, model_name())
                fitted.semantic_fingerprint = current.semantic_fingerprint
            _state.index = fitted
    except Exception:
        logger.exception("Refitting the recommendation index failed")
    finally:
        _state.refitting = False
        connection.close()  # this thread's own database connection


def _semantic_refresh(index: RecoIndex) -> None:
    from recommendations.vectors import semantic_matrix_load

    fingerprint = embeddings_fingerprint()
    if fingerprint == index.semantic_fingerprint:
        return
    with _state.lock:
        if fingerprint != index.semantic_fingerprint:
            index.semantic = semantic_matrix_load(index.catalogue, model_name()) if fingerprint else None
            index.semantic_fingerprint = fingerprint


def index_ready_or_building() -> bool:
    """For pages that must not wait: True when the index is current, or the catalogue is small enough to build it
    now (up to ``INLINE_BUILD_MAX_ADAPTERS``: well under a second); else the build starts in a background thread (one at
    a time) and the answer is False, so the page can say "being prepared" instead of waiting for it."""
    if index_is_current():
        return True
    state = catalogue_fingerprint()
    if state is None or state[1] <= INLINE_BUILD_MAX_ADAPTERS:
        return True
    with _state.lock:
        if _state.building:
            return False
        _state.building = True
    threading.Thread(target=_build_in_background, name="recommendation-index", daemon=True).start()
    return False


def _build_in_background() -> None:
    try:
        index_current(semantic=True)
    except Exception:
        logger.exception("Building the recommendation index failed")
    finally:
        _state.building = False
        connection.close()  # this thread's own database connection


def index_peek() -> RecoIndex | None:
    """The index this process holds, as it is (no rebuild)."""
    return _state.index


def index_is_current() -> bool:
    index = _state.index
    return index is not None and index.fingerprint == catalogue_fingerprint()


def cache_hit_rate() -> float:
    return _state.hits / _state.requests if _state.requests else 0.0


def index_reset() -> None:
    """Drop the index and the counters (tests)."""
    with _state.lock:
        _state.index, _state.hits, _state.requests = None, 0, 0
