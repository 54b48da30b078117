"""Seed a realistic adapter catalogue quickly (bulk insert), for benchmarks."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

WORDS = [
    "anime",
    "portrait",
    "celestial",
    "ink",
    "sketch",
    "detail",
    "glow",
    "cyber",
    "neon",
    "watercolor",
    "oil",
    "pastel",
    "gothic",
    "retro",
    "pixel",
    "chibi",
    "fantasy",
    "armor",
    "dragon",
    "forest",
    "ocean",
    "city",
    "night",
    "sunset",
    "studio",
    "cinematic",
    "film",
    "noir",
    "vintage",
    "pop",
    "comic",
    "manga",
    "realistic",
    "photo",
    "skin",
    "hair",
    "eyes",
    "smile",
    "dress",
    "kimono",
    "knight",
    "witch",
    "robot",
    "mecha",
    "cat",
    "fox",
    "wolf",
    "flower",
    "garden",
]
STYLES = ("style", "lora", "concept", "character", "outfit", "pose", "background", "lighting", "detail", "effect")
FAMILIES = (("sdxl", "SDXL 1.0"), ("sd1", "SD 1.5"), ("sdxl", "Pony"), ("sdxl", "Illustrious"), ("flux1", "Flux.1 D"))


def tag_vocabulary(size: int = 200) -> list[str]:
    rng = random.Random(7)
    tags: dict[str, None] = {"anime": None, "portrait": None}
    while len(tags) < size:
        tags[f"{rng.choice(WORDS)} {rng.choice(STYLES)}" if rng.random() < 0.6 else rng.choice(WORDS)] = None
    return list(tags)[:size]


def seed_adapters(count: int, *, batch: int = 2000, seed: int = 1) -> None:
    from adapters.models import Adapter

    # Spread creation times over months, as a real library has them.
    for field_name in ("created_at", "updated_at"):
        field: Any = Adapter._meta.get_field(field_name)
        field.auto_now_add = field.auto_now = False
    rng = random.Random(seed)
    vocabulary = tag_vocabulary()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows: list[Adapter] = []
    for index in range(count):
        words = rng.sample(WORDS, 3)
        name = f"{words[0].title()} {words[1].title()} {rng.choice(STYLES).title()} {index}"
        family, label = rng.choice(FAMILIES)
        digest = uuid.UUID(int=rng.getrandbits(128)).hex * 2
        tags = rng.sample(vocabulary, rng.randint(1, 8))
        adapter = Adapter(
            name=name,
            version=f"v{rng.randint(1, 5)}.0",
            sdnext_name=f"{words[0]}_{words[1]}_{index}",
            author_username=f"author{rng.randint(1, 2000)}",
            tags=tags,
            trained_words=[f"{words[2]} style"],
            file_path=f"/srv/loras/{family}/{words[0]}_{words[1]}_{index}.safetensors",
            file_size=rng.randint(10_000_000, 400_000_000),
            sha256=digest,
            autov2=digest[:10],
            hash_status="done",
            base_family=family,
            base_model=label,
            weight=round(rng.uniform(0.3, 1.2), 2),
            usage_count=rng.randint(0, 500),
            description="<p>" + " ".join(rng.choices(WORDS, k=40)) + "</p>",
            header_metadata={"ss_network_dim": "32", "ss_output_name": name},
        )
        adapter.refresh_indexes()
        rows.append(adapter)
        if len(rows) >= batch:
            _flush(rows, start, index)
    _flush(rows, start, count)


def _flush(rows: list, start: datetime, index: int) -> None:
    from adapters.models import Adapter

    if not rows:
        return
    created = start + timedelta(minutes=index)
    for offset, row in enumerate(rows):
        row.created_at = created + timedelta(seconds=offset)
        row.updated_at = row.created_at
    Adapter.objects.bulk_create(rows)
    rows.clear()


def running_job(adapters: list[Any]) -> Any:
    """A generation job created running with its links to ``adapters``, as a worker writes one before it succeeds."""
    from deliveries.models import DeliveryJob, DeliveryJobAdapter

    job = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="bench", status="running")
    DeliveryJobAdapter.objects.bulk_create(
        DeliveryJobAdapter(
            job=job, adapter=adapter, adapter_name=adapter.name, sdnext_name=adapter.sdnext_name, weight=1.0,
            position=position,
        )
        for position, adapter in enumerate(adapters)
    )  # fmt: skip
    return job
