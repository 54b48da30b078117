"""Validation of which generation backend a request may target (SPEC 5.3, 5.5.2): registered with the deliveries
app."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError

from deliveries.services import NO_BACKEND
from generation.models import GenerationBackend
from loraforge.errors import ServiceUnavailable

ANY_BACKEND = "sdnext"


def unknown_backend(name: str) -> str:
    return f"Unknown generation backend '{name}'"


def disabled_backend(name: str) -> str:
    return f"Generation backend '{name}' is disabled"


class BackendTargets:
    def is_backend_name(self, name: str) -> bool:
        return GenerationBackend.objects.filter(name=name).exists()

    def check(self, requested_backend: str, *, field: str) -> None:
        if requested_backend != ANY_BACKEND:
            backend = GenerationBackend.objects.filter(name=requested_backend).first()
            if backend is None:
                raise ValidationError({field: [unknown_backend(requested_backend)]})
            if not backend.enabled:
                raise ValidationError({field: [disabled_backend(requested_backend)]})
            return
        if not GenerationBackend.objects.filter(enabled=True).exists():
            raise ServiceUnavailable(NO_BACKEND)
