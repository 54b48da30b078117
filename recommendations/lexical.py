"""The lexical index (SPEC 6.7.1): word 1-2-gram and ``char_wb`` 3-5-gram TF-IDF over the adapters' documents,
``lexical(x, y) = 0.5·cos_word + 0.5·cos_char``; and a ``char_wb`` TF-IDF over trigger phrases for fuzzy matches.
scikit-learn is imported here, lazily, by whoever builds an index."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommendations.catalogue import Catalogue, Runs, Update
from recommendations.products import product, products, rows_view
from recommendations.triggers import PhraseLookup

WORD_PATTERN = r"\b\w+\b"  # the word vectorizer's tokens
WORD_MAX_FEATURES = 50_000
CHAR_MAX_FEATURES = 100_000
ROW_CACHE_BYTES = 32 * 2**20  # lexical rows kept per index: 419 at 10,000 adapters, 41 at 100,000
ROWS_WHOLE_SHARE = 4  # ``rows_similarity`` of more than a quarter of the rows computes the whole row


def _word_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        token_pattern=WORD_PATTERN,
        ngram_range=(1, 2),
        sublinear_tf=True,
        max_features=WORD_MAX_FEATURES,
        dtype=np.float32,
    )


def _char_vectorizer(max_features: int | None = CHAR_MAX_FEATURES) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, max_features=max_features, dtype=np.float32
    )


@dataclass
class LexicalIndex:
    word_vectorizer: Any
    char_vectorizer: Any
    word: Any  # sparse (n x word features), rows L2-normalised
    char: Any  # sparse (n x char features)
    phrase_vectorizer: Any | None
    phrases: Any | None  # sparse (phrases x char features)
    phrase_rows: np.ndarray  # the catalogue row of each phrase
    phrase_texts: list[str]
    phrase_lookup: PhraseLookup
    fitted_words: frozenset[str] = frozenset()  # every word the fit saw, those cut by ``max_features`` included
    novel: bool = False  # a document transformed since the fit has a word the fit never saw
    _rows: _RowCache = field(init=False, repr=False, compare=False)  # ``row_similarity``'s last rows

    def __post_init__(self) -> None:
        self._rows = _RowCache(max(1, ROW_CACHE_BYTES // max(1, 8 * self.word.shape[0])))

    @property
    def memory_bytes(self) -> int:
        total = 0
        for matrix in (self.word, self.char, self.phrases):
            if matrix is not None:
                total += matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
        return total

    def row_similarity(self, row: int, runs: Runs | None = None) -> np.ndarray:
        """Lexical similarity of catalogue row ``row`` to every row, or with ``runs`` to the rows of those
        ``(start, end)`` ranges only, the others left 0 (read-only: the array may be a cached one).

        The product over every row is most of a ``similar`` request. ``runs`` leaves out the rows a request cannot
        return (``same_base_only``: other base families, one run each), and each row that is computed is computed
        exactly as over every row. A target is often asked again while the catalogue stays as it is (a page reloaded,
        the same question after feedback, the admin's panel): the last rows computed are kept with this index, within
        ``ROW_CACHE_BYTES``. An index is never changed (a write makes a new one), so a kept row is exactly what the
        product would give again; a row kept whole serves any ``runs``."""
        cached = self._rows.get((row, None)) if runs is None else self._rows.get((row, None), (row, runs))
        if cached is not None:
            return cached
        scratch = self.scratch()
        if runs is None:
            [similarity] = self.blocks_similarity([RowBlock(self.word, self.char)], row, scratch)
        else:
            similarity = np.zeros(self.word.shape[0])
            blocks = [
                RowBlock(rows_view(self.word, start, end), rows_view(self.char, start, end)) for start, end in runs
            ]
            for (start, end), values in zip(runs, self.blocks_similarity(blocks, row, scratch), strict=True):
                similarity[start:end] = values
        similarity.flags.writeable = False
        self._rows.put((row, runs), similarity)
        return similarity

    def rows_similarity(self, row: int, rows: np.ndarray) -> np.ndarray:
        """``row_similarity(row)[rows]`` for a few rows (works-well-with's partners): from the whole row when it is
        kept, else from those rows alone, each computed exactly as over every row. Past a quarter of the catalogue
        the whole row is computed (and kept): extracting the rows would cost about as much."""
        cached = self._rows.get((row, None))
        if cached is None and len(rows) * ROWS_WHOLE_SHARE > self.word.shape[0]:
            cached = self.row_similarity(row)
        if cached is not None:
            return cached[rows]
        return self.block_similarity(self.block(rows), row, self.scratch())

    def block(self, rows: np.ndarray) -> RowBlock:
        """Rows ``rows`` of both matrices, for ``block_similarity``."""
        return RowBlock(self.word[rows], self.char[rows])

    def scratch(self) -> RowScratch:
        """Zeroed dense vectors as wide as both matrices, reused by ``block_similarity`` (zeroed again after use)."""
        return RowScratch(np.zeros(self.word.shape[1], self.word.dtype), np.zeros(self.char.shape[1], self.char.dtype))

    def block_similarity(self, block: RowBlock, row: int, scratch: RowScratch) -> np.ndarray:
        """Lexical similarity of each row of ``block`` to catalogue row ``row``: two sparse-times-dense products."""
        return self.blocks_similarity([block], row, scratch)[0]

    def blocks_similarity(self, blocks: list[RowBlock], row: int, scratch: RowScratch) -> list[np.ndarray]:
        """``block_similarity`` of each of ``blocks``, their products computed together (``products``: shared with
        a second thread when large)."""
        with _scattered(self.word, row, scratch.word), _scattered(self.char, row, scratch.char):
            found = products(
                [(block.word, scratch.word) for block in blocks] + [(block.char, scratch.char) for block in blocks]
            )
        return [
            self._combine(word, char) for word, char in zip(found[: len(blocks)], found[len(blocks) :], strict=True)
        ]

    def text_similarity(self, text: str) -> np.ndarray:
        """Lexical similarity of a query text to every row."""
        query = text.lower()
        word = product(self.word, self.word_vectorizer.transform([query]).toarray().ravel())
        char = product(self.char, self.char_vectorizer.transform([query]).toarray().ravel())
        return self._combine(word, char)

    def phrase_cosines(self, query: str) -> np.ndarray:
        """Char TF-IDF cosine of the query to every trigger phrase."""
        if self.phrases is None or self.phrase_vectorizer is None:
            return np.zeros(0)
        return np.asarray(self.phrases @ self.phrase_vectorizer.transform([query]).toarray().ravel())

    @staticmethod
    def _combine(word: np.ndarray, char: np.ndarray) -> np.ndarray:
        return np.clip(0.5 * np.asarray(word, dtype=np.float64) + 0.5 * np.asarray(char, dtype=np.float64), 0.0, 1.0)


RowKey = tuple[int, "Runs | None"]  # a catalogue row, and the runs it was computed over (None: every row)


class _RowCache:
    """The ``capacity`` rows used last (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[RowKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, *keys: RowKey) -> np.ndarray | None:
        """The values kept under the first of ``keys`` that has some."""
        with self._lock:
            for key in keys:
                found = self._rows.get(key)
                if found is not None:
                    self._rows.move_to_end(key)
                    return found
            return None

    def put(self, key: RowKey, values: np.ndarray) -> None:
        with self._lock:
            self._rows[key] = values
            self._rows.move_to_end(key)
            while len(self._rows) > self.capacity:
                self._rows.popitem(last=False)


@dataclass
class RowBlock:
    """Some rows of both matrices (CSR)."""

    word: Any
    char: Any


@dataclass
class RowScratch:
    word: np.ndarray
    char: np.ndarray


@contextmanager
def _scattered(matrix: Any, row: int, scratch: np.ndarray) -> Iterator[None]:
    """``matrix[row]`` scattered into ``scratch`` (all zero before and after)."""
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    columns = matrix.indices[start:end]
    scratch[columns] = matrix.data[start:end]
    try:
        yield
    finally:
        scratch[columns] = 0


def lexical_build(catalogue: Catalogue) -> LexicalIndex:
    """Fit both vectorizers on the catalogue's documents (raises ``ValueError`` on an empty catalogue)."""
    if not len(catalogue):
        raise ValueError("the catalogue is empty")
    word_vectorizer, word, seen = _fit(_word_vectorizer(), catalogue.documents, terms=True)
    char_vectorizer, char, _none = _fit(_char_vectorizer(), catalogue.documents)
    texts, rows = _phrase_rows(catalogue)
    phrase_vectorizer, phrase_matrix = None, None
    if texts:
        phrase_vectorizer = _char_vectorizer(max_features=None)
        phrase_matrix = phrase_vectorizer.fit_transform(texts).tocsr()
    words = frozenset(term for term in seen if " " not in term)  # the 1-grams of the 1-2-grams
    return LexicalIndex(
        word_vectorizer, char_vectorizer, word, char, phrase_vectorizer, phrase_matrix, rows, texts,
        PhraseLookup(texts), fitted_words=words,
    )  # fmt: skip


def lexical_update(previous: LexicalIndex, update: Update) -> LexicalIndex:
    """The index of ``update.catalogue`` with the vocabularies and weights ``previous`` was fitted with (on
    ``update.before``): the rows of documents the snapshot already had are copied, the others transformed, so a few
    writes cost milliseconds instead of a fit. A word outside the fitted vocabulary adds nothing to the word side
    until the next fit (its character n-grams still match; ``recommendations.index`` refits in the background, and
    ``novel`` says one was seen). Raises ``ValueError`` on an empty catalogue."""
    catalogue = update.catalogue
    if not len(catalogue):
        raise ValueError("the catalogue is empty")
    sources = update.sources(lambda snapshot, row: snapshot.documents[row])
    fresh = [catalogue.documents[row] for row in np.flatnonzero(sources < 0)]
    word = _take_rows(previous.word, sources, previous.word_vectorizer, fresh)
    char = _take_rows(previous.char, sources, previous.char_vectorizer, fresh)
    novel = previous.novel or _has_novel_words(fresh, previous.fitted_words)
    if catalogue.phrases == update.before.phrases:  # the same phrases in the same rows
        phrase_vectorizer, phrase_matrix = previous.phrase_vectorizer, previous.phrases
        texts, rows, lookup = previous.phrase_texts, previous.phrase_rows, previous.phrase_lookup
    else:
        texts, rows = _phrase_rows(catalogue)
        lookup = PhraseLookup(texts)
        phrase_vectorizer, phrase_matrix = previous.phrase_vectorizer, None
        if texts and phrase_vectorizer is None:  # the first phrases: fitted (short texts, cheap)
            phrase_vectorizer = _char_vectorizer(max_features=None)
            phrase_matrix = phrase_vectorizer.fit_transform(texts).tocsr()
        elif texts:
            phrase_matrix = _phrases_taken(previous, update, texts)
    return LexicalIndex(
        previous.word_vectorizer, previous.char_vectorizer, word, char, phrase_vectorizer, phrase_matrix, rows,
        texts, lookup, fitted_words=previous.fitted_words, novel=novel,
    )  # fmt: skip


_WORD = re.compile(WORD_PATTERN)


def _has_novel_words(documents: list[str], fitted: frozenset[str]) -> bool:
    return any(word not in fitted for document in documents for word in _WORD.findall(document))


def _phrase_rows(catalogue: Catalogue) -> tuple[list[str], np.ndarray]:
    """Every trigger phrase in catalogue order, and the catalogue row of each."""
    texts = [phrase for phrases in catalogue.phrases for phrase in phrases]
    rows = np.array([row for row, phrases in enumerate(catalogue.phrases) for _ in phrases], dtype=np.int64)
    return texts, rows


def _take_rows(matrix: Any, sources: np.ndarray, vectorizer: Any, fresh: list[str]) -> Any:
    """Row ``sources[i]`` of ``matrix`` for each row ``i``, and where it is -1 the next of ``fresh`` transformed.

    Built in one copy: runs of consecutive source rows are copied as slices of the matrix's arrays (a few writes make
    a few runs), where row indexing and stacking would copy every value twice."""
    from scipy.sparse import csr_matrix

    count = len(sources)
    if not fresh and count == matrix.shape[0] and bool((sources == np.arange(count)).all()):
        return matrix  # every row where it was
    added: Any = vectorizer.transform(fresh).tocsr() if fresh else None
    new = sources < 0
    breaks = np.flatnonzero(new[1:] | new[:-1] | (sources[1:] != sources[:-1] + 1)) + 1
    starts = np.concatenate(([0], breaks)).tolist()
    ends = [*starts[1:], count]
    data: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    lengths = np.zeros(count, dtype=np.int64)
    taken = 0
    for start, end in zip(starts, ends, strict=True):
        if new[start]:  # one transformed row
            part, row = added, taken
            taken += 1
        else:
            part, row = matrix, int(sources[start])
        low, high = int(part.indptr[row]), int(part.indptr[row + end - start])
        data.append(part.data[low:high])
        indices.append(part.indices[low:high])
        lengths[start:end] = np.diff(part.indptr[row : row + end - start + 1])
    indptr = np.zeros(count + 1, dtype=matrix.indptr.dtype)
    np.cumsum(lengths, out=indptr[1:])
    return csr_matrix(
        (
            np.concatenate(data).astype(matrix.dtype, copy=False),
            np.concatenate(indices).astype(matrix.indices.dtype, copy=False),
            indptr,
        ),
        shape=(count, matrix.shape[1]),
    )


def _phrases_taken(previous: LexicalIndex, update: Update, texts: list[str]) -> Any:
    """The phrase matrix of ``update.catalogue`` (phrases in catalogue order) from ``previous``'s rows where an
    adapter's phrases are unchanged."""
    starts = np.concatenate(([0], np.cumsum([len(phrases) for phrases in update.before.phrases])))
    adapters = update.sources(lambda snapshot, row: snapshot.phrases[row])
    sources = np.full(len(texts), -1, dtype=np.int64)
    position = 0
    for row, phrases in enumerate(update.catalogue.phrases):
        old = adapters[row]
        if old >= 0:
            sources[position : position + len(phrases)] = np.arange(starts[old], starts[old] + len(phrases))
        position += len(phrases)
    fresh = [texts[at] for at in np.flatnonzero(sources < 0)]
    return _take_rows(previous.phrases, sources, previous.phrase_vectorizer, fresh)


def _fit(vectorizer: Any, documents: list[str], *, terms: bool = False) -> tuple[Any, Any, set[str]]:
    """The fitted vectorizer, its matrix and (with ``terms``) every term it saw; documents without a single token
    (names of symbols only) give an empty vocabulary, which scikit-learn refuses: then a zero-width matrix that
    matches nothing."""
    from scipy.sparse import csr_matrix

    try:
        matrix = vectorizer.fit_transform(documents).tocsr()
    except ValueError:
        return _Nothing(), csr_matrix((len(documents), 1), dtype=np.float32), set()
    seen = set(vectorizer.vocabulary_) if terms else set()
    # The terms cut by ``max_features``: millions of character n-grams nobody reads (scikit-learn's advice).
    if hasattr(vectorizer, "stop_words_"):
        seen |= vectorizer.stop_words_ if terms else set()
        del vectorizer.stop_words_
    return vectorizer, matrix, seen


class _Nothing:
    def transform(self, texts: list[str]) -> Any:
        from scipy.sparse import csr_matrix

        return csr_matrix((len(texts), 1), dtype=np.float32)
