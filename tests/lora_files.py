"""Real, tiny LoRA files on disk for tests, written with the ``safetensors`` package, and read back as a scan does."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from adapters.scanner.ingest import make_facts
from adapters.scanner.inspect import FileFacts, header_limit_bytes
from adapters.scanner.paths import model_format
from adapters.scanner.reading import read_model_file
from adapters.scanner.walk import WalkedFile

KOHYA_METADATA: dict[str, str] = {
    "ss_output_name": "celestial_anime_v2",
    "ss_network_dim": "32",
    "ss_network_alpha": "16.0",
    "ss_network_module": "networks.lora",
    "ss_base_model_version": "sdxl_base_v1-0",
    "sshs_model_hash": "5be1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
    "ss_tag_frequency": json.dumps({"10_celestial style": {"1girl": 12, "stars": 7, "night sky": 7}}),
}


def write_safetensors(
    path: Path,
    metadata: dict[str, str] | None = None,
    *,
    seed: int = 0,
    size: int = 16,
) -> Path:
    """A real safetensors file with one small tensor; ``seed`` changes its content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = {"lora_unet_down.lora_down.weight": rng.standard_normal((size, 4)).astype(np.float32)}
    save_file(tensors, str(path), metadata=metadata)
    return path


def write_raw_header(path: Path, header: bytes, *, declared_length: int | None = None, tail: bytes = b"") -> Path:
    """A file with a hand-made (possibly broken) header, for bad-input tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    length = len(header) if declared_length is None else declared_length
    path.write_bytes(struct.pack("<Q", length) + header + tail)
    return path


def metadata_of(**extra: Any) -> dict[str, str]:
    return {**KOHYA_METADATA, **{key: str(value) for key, value in extra.items()}}


def inspect_file(path: Path, *, compute_hash: bool) -> FileFacts:
    """What a scan learns from one model file without sidecars, read and built by the scan's own functions."""
    fmt = model_format(path) or "safetensors"
    stat = path.stat()
    header_limit = header_limit_bytes()
    read = read_model_file(path, fmt=fmt, size=stat.st_size, header_limit=header_limit, compute_hash=compute_hash)
    return make_facts(WalkedFile(path=path, stat=stat), fmt, read.sha256, read.header)
