"""A child process that embeds texts for a web server running its worker embedded (``encoder.ProcessEncoder``).

Run as ``python -m recommendations.encoder_process SOURCE DEVICE``; imports neither Django nor the project. It
lowers its own CPU priority, loads the model, writes one JSON line (``{"dim", "device"}`` or ``{"error"}``), then
answers each request line ``{"texts": [...], "batch_size": n}`` with ``{"vectors": base64 of little-endian
float32}`` (or ``{"error"}``), until its input closes. JSON lines only: nothing is pickled.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from typing import Any

LOWEST_PRIORITY = 19


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _load(source: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(source, device=device, local_files_only=True), device


def main() -> int:
    source, device = sys.argv[1], sys.argv[2]
    with contextlib.suppress(OSError):  # not allowed: normal priority
        os.nice(LOWEST_PRIORITY)
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                        ("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):  # fmt: skip
        os.environ.setdefault(name, value)
    try:
        model, device = _load(source, device)
        dim = int(model.get_embedding_dimension() or 0)
    except Exception as exc:  # reported to the parent, which marks semantic embeddings unavailable
        _write({"error": type(exc).__name__})
        return 1
    _write({"dim": dim, "device": device})
    import numpy as np

    for line in sys.stdin:
        try:
            request = json.loads(line)
            vectors = model.encode(
                request["texts"], batch_size=int(request.get("batch_size", 32)), normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )  # fmt: skip
            data = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
            _write({"vectors": base64.b64encode(data).decode("ascii")})
        except Exception as exc:
            _write({"error": type(exc).__name__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
