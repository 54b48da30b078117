"""The text an adapter is recommended by (SPEC 6.7.1): one document for the lexical index, the same with a shorter
description for sentence embeddings, and the hash that tells a stored vector is stale."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable
from typing import Any, Protocol

LEXICAL_DESCRIPTION_CHARS = 2000
SEMANTIC_DESCRIPTION_CHARS = 500
HEADER_TAGS_USED = 10
SEPARATOR = ". "

# The adapter columns a document reads (``Adapter.objects.only(*DOCUMENT_FIELDS)``).
DOCUMENT_FIELDS = (
    "id", "name", "sdnext_name", "base_model", "tags", "trained_words", "triggers", "activation_text",
    "header_tags", "description",
)  # fmt: skip
# What a catalogue snapshot reads of every adapter: the documents' columns and the score terms'.
SNAPSHOT_FIELDS = (
    "id", "name", "sdnext_name", "base_model", "base_family", "sd_version", "tags", "trained_words", "triggers",
    "activation_text", "header_tags", "header_metadata", "description", "author_username", "nsfw_level", "active",
    "stats", "published_at", "created_at",
)  # fmt: skip

_HTML_TAG = re.compile(r"<[^>]*>")
_SDNEXT_SEPARATORS = re.compile(r"[_\-.]+")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+")
# Sentences about how a LoRA was made or should be dosed ("Trained for 10 epochs on 96 images", "Works best at
# weight 0.7; stack it with a detail LoRA"): every family shares them, so a sentence embedding that keeps them
# finds adapters alike in their release notes rather than their style (bench/reco_quality.py: similar P@5 0.40 ->
# 0.49 without them). The lexical document keeps them (TF-IDF already discounts words every adapter has).
_TRAINING_NOTE = re.compile(
    r"\b(trained|training|epochs?|steps|\d+\s+(curated\s+)?images|dataset|works\s+(best\s+)?at|strength|weight\s+\d"
    r"|stack(ed)?\s+(it\s+)?with|my\s+first\s+lora|recommended\s+(weight|settings)|cfg|sampler)\b",
    re.IGNORECASE,
)


class DocumentSource(Protocol):
    name: str
    sdnext_name: str
    base_model: str | None
    tags: Any
    trained_words: Any
    triggers: Any
    activation_text: str | None
    header_tags: Any
    description: str | None


def plain_description(description: str | None) -> str:
    """The description without HTML tags, entities unescaped, whitespace collapsed."""
    if not description:
        return ""
    text = html.unescape(_HTML_TAG.sub(" ", description))
    return _SPACES.sub(" ", text).strip()


def _strings(values: Any) -> list[str]:
    return [str(value) for value in values or [] if str(value).strip()]


def style_description(description: str | None) -> str:
    """The plain description without its training and dosage notes (kept whole when every sentence is one)."""
    sentences = [sentence for sentence in _SENTENCE_END.split(plain_description(description)) if sentence]
    kept = [sentence for sentence in sentences if not _TRAINING_NOTE.search(sentence)]
    return " ".join(kept or sentences)


def _document(adapter: DocumentSource, description: str, *, base_model: bool = True) -> str:
    parts: list[str] = [
        adapter.name or "",
        _SDNEXT_SEPARATORS.sub(" ", adapter.sdnext_name or ""),
        (adapter.base_model or "") if base_model else "",
        *_strings(adapter.tags),
        *_strings(adapter.trained_words),
        *_strings(adapter.triggers),
        adapter.activation_text or "",
        *_strings(adapter.header_tags)[:HEADER_TAGS_USED],
        description,
    ]
    return SEPARATOR.join(part.strip() for part in parts if part and part.strip()).lower()


def lexical_document(adapter: DocumentSource) -> str:
    return _document(adapter, plain_description(adapter.description)[:LEXICAL_DESCRIPTION_CHARS])


def semantic_text(adapter: DocumentSource) -> str:
    """The lexical document without the base model, with the description cut to 500 characters after its training
    notes are dropped. The base model says what an adapter runs on, not what it draws: adapters of one base but
    different styles came out alike (bench/reco_quality.py: similar P@5 0.43 -> 0.50 without it); ``same_base_only``
    handles the base."""
    description = style_description(adapter.description)[:SEMANTIC_DESCRIPTION_CHARS]
    return _document(adapter, description, base_model=False)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def semantic_hashes(adapters: Iterable[DocumentSource]) -> list[str]:
    return [text_sha256(semantic_text(adapter)) for adapter in adapters]
