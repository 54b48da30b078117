"""The registry of delivery runners: how a job of each mode is run (STYLE: ``deliveries`` never imports
``generation``; the generation app registers the ``sdnext`` runner from its ``AppConfig.ready()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from deliveries.models import DeliveryJob


class DeliveryRunner(Protocol):
    """Runs jobs of one mode inside a Celery worker."""

    mode: str
    queue: str  # Celery queue of ``deliveries.run_delivery`` for this mode

    def run(self, job: DeliveryJob, *, worker: str) -> None:
        """Take a ``pending`` job to a terminal state, or leave it ``pending`` and re-schedule it."""

    def release(self, job: DeliveryJob) -> None:
        """Recovery of an orphaned ``running`` job: free what it held (a backend lease), best effort."""

    def time_limit(self, job: DeliveryJob) -> int:
        """Seconds the Celery task of ``job`` may run (SPEC 6.2.5)."""


class GenerationTargets(Protocol):
    """What the API asks the generation app before creating a generation job (SPEC 5.3, 5.5.2)."""

    def is_backend_name(self, name: str) -> bool:
        """Whether ``name`` names an existing backend (``delivery.mode`` may be a backend name)."""

    def check(self, requested_backend: str, *, field: str) -> None:
        """Raise a 400 ``ValidationError`` on ``field`` for an unknown or disabled backend, or a 503 when no
        enabled backend exists; ``requested_backend`` is ``"sdnext"`` (any enabled backend) or a name."""


_runners: dict[str, DeliveryRunner] = {}
_targets: list[GenerationTargets] = []


def runner_register(runner: DeliveryRunner) -> None:
    _runners[runner.mode] = runner


def runner_for(mode: str) -> DeliveryRunner | None:
    return _runners.get(mode)


def targets_register(targets: GenerationTargets) -> None:
    _targets[:] = [targets]


def generation_targets() -> GenerationTargets | None:
    return _targets[0] if _targets else None
