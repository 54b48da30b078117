"""LoRA folder containment (SPEC 6.6.1): no user-given path reaches the filesystem outside them."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from django.conf import settings

MODEL_EXTENSIONS = (".safetensors", ".pt", ".ckpt")
PATH_INVALID_CHARACTERS = "file_path contains invalid characters"


class PathRejected(ValueError):
    """A user-given path that may not be used; the message is the API error text."""


def lora_roots() -> list[Path]:
    return list(settings.LORAFORGE_LORA_DIRS)


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


def is_inside(path: str | Path, root: str | Path) -> bool:
    real_path, real_root = _real(path), _real(root)
    return real_path == real_root or real_path.startswith(real_root.rstrip(os.sep) + os.sep)


def root_of(path: str | Path) -> Path | None:
    for root in lora_roots():
        if is_inside(path, root):
            return root
    return None


def has_invalid_characters(value: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in value)


def path_exists(path: Path, *, regular_file: bool = False) -> bool:
    """``exists()``/``is_file()`` that answers False for a name the system cannot even look up (too long)."""
    try:
        return path.is_file() if regular_file else path.exists()
    except OSError:
        return False


def model_format(path: str | Path) -> str | None:
    lowered = str(path).lower()
    for extension in MODEL_EXTENSIONS:
        if lowered.endswith(extension):
            return extension[1:]
    return None


def resolve_model_path(value: str) -> Path:
    """Validate an API ``file_path``: containment first, so no existence oracle outside the roots."""
    if has_invalid_characters(value):
        raise PathRejected(PATH_INVALID_CHARACTERS)
    candidates = [Path(value)] if os.path.isabs(value) else [root / value for root in lora_roots()]
    inside = [Path(os.path.normpath(candidate)) for candidate in candidates if root_of(candidate) is not None]
    if not inside:
        raise PathRejected("file_path must be inside a configured LoRA folder")
    if model_format(value) is None:
        raise PathRejected("file_path must end with .safetensors, .pt or .ckpt")
    for candidate in inside:
        if path_exists(candidate, regular_file=True) and os.access(candidate, os.R_OK):
            return candidate
    raise PathRejected("file_path does not exist or is not readable")


def sdnext_name_for(path: str | Path) -> str:
    """The name SDNext resolves in ``<lora:NAME:w>``: the file stem with every ``.`` replaced by ``_``."""
    return file_stem(path).replace(".", "_")


def file_stem(path: str | Path) -> str:
    name = os.path.basename(str(path))
    stem, _ext = os.path.splitext(name)
    return stem or name
