"""Tag normalisation and the ``|tag|`` index used by tag filters (SPEC 3.2)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_WHITESPACE = re.compile(r"\s+")


def normalize_tag(tag: str) -> str:
    return _WHITESPACE.sub(" ", tag.strip()).lower()


def normalize_tags(tags: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        normalised = normalize_tag(tag)
        if normalised and normalised not in seen:
            seen[normalised] = None
    return list(seen)


def tag_index_for(tags: Iterable[str]) -> str:
    tags = list(tags)
    return "|" + "|".join(_escape(tag) for tag in tags) + "|" if tags else ""


def tag_token(tag: str) -> str:
    return f"|{_escape(normalize_tag(tag))}|"


def _escape(tag: str) -> str:
    # "|" separates index entries; a tag containing it is indexed with "/" instead.
    return tag.replace("|", "/")
