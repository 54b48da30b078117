"""factory_boy factories of the generation app (and the generation jobs it stores results for)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import factory
from django.utils import timezone

from deliveries.models import DeliveryJob
from generation.models import GenerationBackend, GenerationResult


class GenerationBackendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationBackend

    name = factory.Sequence(lambda n: f"backend-{n:03d}")
    url = factory.Sequence(lambda n: f"http://sdnext-{n}.test:7860")


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    """A valid, tiny grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def generation_params(prompt: str, **overrides) -> dict:
    return {
        "prompt": prompt, "negative_prompt": None, "steps": 20, "sampler_name": "DPM++ 2M", "cfg_scale": 7.0,
        "width": 512, "height": 512, "seed": -1, "batch_size": 1, "n_iter": 1, "denoising_strength": None,
        "checkpoint": None, "override_settings": None, **overrides,
    }  # fmt: skip


class GenerationJobFactory(factory.django.DjangoModelFactory):
    """A finished generation job (``status="pending"`` etc. for others)."""

    class Meta:
        model = DeliveryJob

    kind = "generation"
    mode = "sdnext"
    prompt = factory.Sequence(lambda n: f"portrait number {n}")
    params = factory.LazyAttribute(
        lambda o: {
            "generation_params": generation_params(o.prompt),
            "mode": "deferred",
            "save_images": True,
            "return_format": "url",
            "backend": "sdnext",
        }
    )
    status = "succeeded"
    progress = factory.LazyAttribute(lambda o: 1.0 if o.status == "succeeded" else 0.0)
    backend_name = "default"
    created_via = "generate"
    result = factory.LazyAttribute(
        lambda o: (
            {
                "status": "completed",
                "images": [],
                "generation_info": {"seed": 1234567},
                "warnings": [],
                "error_message": None,
                "error_code": None,
                "backend": "default",
            }
            if o.status == "succeeded"
            else None
        )
    )
    finished_at = factory.LazyAttribute(lambda o: timezone.now() if o.status == "succeeded" else None)


class GenerationResultFactory(factory.django.DjangoModelFactory):
    """A stored image; its file is written under ``settings.MEDIA_ROOT`` (``write_file=False``: not)."""

    class Meta:
        model = GenerationResult
        skip_postgeneration_save = True

    job = factory.SubFactory(GenerationJobFactory)
    index = 0
    file = factory.LazyAttribute(lambda o: f"generations/2025/03/01/{o.job.pk}/{o.index:03d}.png")
    content_type = "image/png"
    size_bytes = factory.LazyFunction(lambda: len(png_bytes()))
    width = 512
    height = 512
    seed = 1234567
    infotext = "portrait\nSteps: 20, Seed: 1234567"

    @factory.post_generation
    def write_file(self, create: bool, extracted: bool | None, **kwargs) -> None:
        if extracted is False:
            return
        from django.conf import settings

        path = Path(settings.MEDIA_ROOT) / str(self.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes())
