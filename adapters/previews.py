"""Preview images of adapters (SPEC 5.2): only files inside the LoRA folders are ever served."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rest_framework.renderers import BaseRenderer

from adapters.models import Adapter
from adapters.scanner.paths import root_of

SERVED_TYPES = ("image/", "video/")  # a preview_path naming any other file is not served


@dataclass(frozen=True)
class PreviewFile:
    path: Path
    content_type: str


def adapter_preview(adapter: Adapter) -> PreviewFile | None:
    """The adapter's preview when it is set, exists, is an image (or video) and lies inside a LoRA folder."""
    if not adapter.preview_path:
        return None
    path = Path(adapter.preview_path)
    if root_of(path) is None or not path.is_file():
        return None
    content_type, _encoding = mimetypes.guess_type(path.name)
    if content_type is None or not content_type.startswith(SERVED_TYPES):
        return None
    return PreviewFile(path=path, content_type=content_type)


class PreviewRenderer(BaseRenderer):
    """Lets ``Accept: image/*`` negotiate; the view answers with the file itself, never rendered data."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
        return data
