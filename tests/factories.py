"""factory_boy factories for the models under test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import factory

from adapters.models import Adapter


class AdapterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Adapter

    name = factory.Sequence(lambda n: f"Adapter {n:05d}")
    sdnext_name = factory.Sequence(lambda n: f"adapter_{n:05d}")
    file_path = factory.Sequence(lambda n: f"/srv/loras/adapter_{n:05d}.safetensors")
    hash_status = "done"
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    autov2 = factory.LazyAttribute(lambda o: o.sha256[:10])


def link_adapters(job: Any, links: Iterable[tuple[Adapter, float]]) -> None:
    """``DeliveryJobAdapter`` rows for ``job``: each ``(adapter, weight)`` at its position, as a job creation makes."""
    from deliveries.models import DeliveryJobAdapter

    DeliveryJobAdapter.objects.bulk_create(
        DeliveryJobAdapter(
            job=job,
            adapter=adapter,
            adapter_name=adapter.name,
            sdnext_name=adapter.sdnext_name,
            weight=weight,
            position=position,
        )
        for position, (adapter, weight) in enumerate(links)
    )
