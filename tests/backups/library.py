"""A small but complete library for the export tests: adapters with real safetensors files, sidecars and previews,
embeddings, generation jobs with links, results and image files, user data, a resource sample and a backend."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from analytics.models import ResourceSample
from backups.archive.format import MANIFEST
from deliveries.models import DeliveryJob
from generation.models import GenerationBackend
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference
from tests.factories import AdapterFactory, link_adapters
from tests.generation.factories import GenerationJobFactory, GenerationResultFactory, png_bytes
from tests.lora_files import write_safetensors


@dataclass
class Library:
    adapters: list[Any]  # Adapter (factory_boy's types are not the models')
    jobs: list[Any]  # DeliveryJob
    results: list[Any]  # GenerationResult
    files: dict[str, Path] = field(default_factory=dict)  # adapter id -> its LoRA file


def make_adapter(lora_dir: Path, name: str, *, seed: int, sidecar: bool = True, preview: bool = True) -> Any:
    path = write_safetensors(lora_dir / f"{name}.safetensors", seed=seed, size=64)
    sidecars: list[dict[str, Any]] = []
    json_file_path = None
    if sidecar:
        info = lora_dir / f"{name}.civitai.info"
        info.write_text(json.dumps({"name": name, "trainedWords": ["word"]}), encoding="utf-8")
        sidecars.append({"kind": "civitai_info", "path": str(info), "mtime": None, "size": info.stat().st_size})
        json_file_path = str(info)
    preview_path = None
    if preview:
        image = lora_dir / f"{name}.preview.png"
        image.write_bytes(png_bytes(16, 16))
        preview_path = str(image)
    return AdapterFactory(
        name=name,
        sdnext_name=name,
        file_path=str(path),
        file_size=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        sidecars=sidecars,
        json_file_path=json_file_path,
        preview_path=preview_path,
        tags=["anime", name],
        header_metadata={"ss_network_dim": "32"},
        locked_fields=["name"],
    )


def make_library(lora_dir: Path, media_root: Path) -> Library:
    first = make_adapter(lora_dir, "celestial", seed=1)
    second = make_adapter(lora_dir, "ink_wash", seed=2, preview=False)
    third = make_adapter(lora_dir, "plain", seed=3, sidecar=False, preview=False)
    vector = np.arange(4, dtype="<f4")
    AdapterEmbedding.objects.create(
        adapter=first, model_name="all-MiniLM-L6-v2", dim=4, vector=vector.tobytes(), text_sha256="a" * 64,
        computed_at=timezone.now(),
    )  # fmt: skip
    AdapterEmbedding.objects.create(
        adapter=second, model_name="all-MiniLM-L6-v2", dim=4, vector=(vector + 1).tobytes(), text_sha256="b" * 64,
        computed_at=timezone.now(),
    )  # fmt: skip
    old: Any = GenerationJobFactory(prompt="old portrait")
    DeliveryJob.objects.filter(pk=old.pk).update(created_at=datetime(2024, 1, 10, 12, tzinfo=UTC))
    new: Any = GenerationJobFactory(prompt="new portrait")
    DeliveryJob.objects.filter(pk=new.pk).update(created_at=datetime(2025, 3, 1, 12, tzinfo=UTC))
    link_adapters(old, [(first, 0.8)])
    link_adapters(new, [(second, 1.0), (first, 0.5)])
    results: list[Any] = [GenerationResultFactory(job=old, index=0), GenerationResultFactory(job=new, index=0)]
    results.append(GenerationResultFactory(job=new, index=1))
    session = RecommendationSession.objects.create(kind="similar", context_key="similar:x", target_adapter=first)
    RecommendationFeedback.objects.create(session=session, adapter=second, feedback_type="positive")
    UserPreference.objects.create(preference_type="tag", preference_value="anime", last_evidence_at=timezone.now())
    ResourceSample.objects.create(
        recorded_at=timezone.now(), host="host-1", cpu_percent=12.5, memory_percent=40.0, memory_used_mb=2048
    )
    GenerationBackend.objects.create(name="studio", url="http://sdnext.test:7860", username="u", password="secret-pw")
    adapters = [first, second, third]
    return Library(
        adapters=adapters,
        jobs=[old, new],
        results=results,
        files={str(adapter.pk): Path(adapter.file_path) for adapter in adapters},
    )


def read_archive(data: bytes | Path) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    archive = zipfile.ZipFile(data if isinstance(data, Path) else _bytes_io(data))
    return archive, json.loads(archive.read(MANIFEST))


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def jsonl_records(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive.read(name).splitlines() if line.strip()]


def verify_members(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> None:
    """Every member but the manifest is listed with its real size and SHA-256 (computed here, independently)."""
    names = [info.filename for info in archive.infolist()]
    assert names[-1] == MANIFEST
    listed = {member["path"]: member for member in manifest["members"]}
    assert set(listed) == set(names[:-1])
    for name in names[:-1]:
        data = archive.read(name)
        assert listed[name]["size"] == len(data), name
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest(), name
    assert manifest["total_bytes"] == sum(member["size"] for member in manifest["members"])


# --- fixtures (imported by the export test modules) ---------------------------------------------------------


@pytest.fixture
def media(tmp_path: Path, settings) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def library(db, lora_dir: Path, media: Path) -> Library:
    return make_library(lora_dir, media)
