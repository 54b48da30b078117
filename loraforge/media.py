"""Media files (SPEC 5.12): URLs of stored files and safe resolution of relative media paths."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from django.conf import settings


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def media_url(relative: str) -> str:
    """``/media/<relative>`` (``LORAFORGE_MEDIA_URL``), absolute when ``LORAFORGE_PUBLIC_URL`` is set."""
    path = settings.MEDIA_URL + quote(relative.lstrip("/"))
    return f"{settings.LORAFORGE_PUBLIC_URL}{path}" if settings.LORAFORGE_PUBLIC_URL else path


def media_path(relative: str) -> Path | None:
    """The absolute path of a file under the media root, or None when ``relative`` is unsafe: empty, absolute,
    with ``..``, NUL or backslashes, or resolving (symlinks included) outside the root."""
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    if any(part == ".." for part in relative.split("/")):
        return None
    root = os.path.realpath(media_root())
    candidate = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, candidate]) != root or candidate == root:
        return None
    return Path(candidate)
