"""factory_boy factories of the generation app."""

from __future__ import annotations

import factory

from generation.models import GenerationBackend


class GenerationBackendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationBackend

    name = factory.Sequence(lambda n: f"backend-{n:03d}")
    url = factory.Sequence(lambda n: f"http://sdnext-{n}.test:7860")
