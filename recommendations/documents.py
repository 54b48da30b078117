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

_HTML_TAG = re.compile(r"<[^>]*>")
_SDNEXT_SEPARATORS = re.compile(r"[_\-.]+")
_SPACES = re.compile(r"\s+")


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


def _document(adapter: DocumentSource, description_chars: int) -> str:
    parts: list[str] = [
        adapter.name or "",
        _SDNEXT_SEPARATORS.sub(" ", adapter.sdnext_name or ""),
        adapter.base_model or "",
        *_strings(adapter.tags),
        *_strings(adapter.trained_words),
        *_strings(adapter.triggers),
        adapter.activation_text or "",
        *_strings(adapter.header_tags)[:HEADER_TAGS_USED],
        plain_description(adapter.description)[:description_chars],
    ]
    return SEPARATOR.join(part.strip() for part in parts if part and part.strip()).lower()


def lexical_document(adapter: DocumentSource) -> str:
    return _document(adapter, LEXICAL_DESCRIPTION_CHARS)


def semantic_text(adapter: DocumentSource) -> str:
    return _document(adapter, SEMANTIC_DESCRIPTION_CHARS)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def semantic_hashes(adapters: Iterable[DocumentSource]) -> list[str]:
    return [text_sha256(semantic_text(adapter)) for adapter in adapters]
