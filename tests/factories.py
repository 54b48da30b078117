"""factory_boy factories for the models under test."""

from __future__ import annotations

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
