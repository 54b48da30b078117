"""Batch embedding in a child process, for a web server that runs its Celery worker embedded (the ``make run``
shape): the model, torch and the encoding's CPU time stay out of the server process, so the server keeps its memory
and its GIL for requests while a burst of adapters is embedded (``recommendations.encoder_process``, at the lowest
CPU priority). One child per process, started on first use, restarted if it died; JSON lines over pipes."""

from __future__ import annotations

import atexit
import base64
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from recommendations.encoder import model_name, model_source, note_unavailable

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger("loraforge.recommendations")

ROOT = Path(__file__).resolve().parent.parent


class ProcessEncoder:
    def __init__(self, process: subprocess.Popen[str], *, dim: int, device: str) -> None:
        self.process = process
        self.dim = dim
        self.device = device
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None

    def encode_rows(self, texts: list[str], *, batch_size: int = 32) -> list[bytes]:
        """One vector per text as ``dim`` little-endian float32 values, as the child wrote them: stored as they are,
        so the server handles vectors without loading numpy (issue 9's RSS)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        with self._lock:
            self.process.stdin.write(json.dumps({"texts": texts, "batch_size": batch_size}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the encoder process exited")
        answer = json.loads(line)
        if "vectors" not in answer:
            raise RuntimeError(f"the encoder process failed ({answer.get('error')})")
        data = base64.b64decode(answer["vectors"])
        size = 4 * self.dim
        if len(data) != size * len(texts):
            raise RuntimeError(f"the encoder process answered {len(data)} bytes for {len(texts)} vectors of {self.dim}")
        return [data[start : start + size] for start in range(0, len(data), size)]

    def encode(self, texts: list[str], *, batch_size: int = 32, background: bool = True) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, computed by the child."""
        import numpy as np

        data = b"".join(self.encode_rows(texts, batch_size=batch_size))
        return np.frombuffer(data, dtype="<f4").reshape(len(texts), self.dim).astype(np.float32)

    def close(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.encoder: ProcessEncoder | None = None
        self.name: str | None = None


_holder = _Holder()


def process_encoder_get() -> ProcessEncoder | None:
    """The child encoder of the configured model (started on first use), or None when it cannot load."""
    name = model_name()
    with _holder.lock:
        encoder = _holder.encoder
        if encoder is not None and encoder.alive() and _holder.name == name:
            return encoder
        if encoder is not None:
            encoder.close()
        _holder.encoder, _holder.name = _start(name), name
        return _holder.encoder


def _start(name: str) -> ProcessEncoder | None:
    source, reason = model_source()
    if source is None:
        note_unavailable(name, reason or "unavailable")
        return None
    command = [sys.executable, "-m", "recommendations.encoder_process", source, settings.LORAFORGE_EMBEDDING_DEVICE]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline() or '{"error": "exited"}')
    if "dim" not in ready:
        process.wait(timeout=10)
        logger.warning("Semantic embeddings unavailable: the encoder process could not load %s", name)
        note_unavailable(name, f"Cannot load the embedding model {name}")
        return None
    logger.info("Encoder process %d loaded %s on %s", process.pid, name, ready["device"])
    return ProcessEncoder(process, dim=int(ready["dim"]), device=str(ready["device"]))


def process_encoder_stop() -> None:
    with _holder.lock:
        if _holder.encoder is not None:
            _holder.encoder.close()
        _holder.encoder, _holder.name = None, None


atexit.register(process_encoder_stop)
