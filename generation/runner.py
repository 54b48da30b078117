"""Placeholder: the SDNext runner lands with the SDNext client (issue 4)."""

from __future__ import annotations

from deliveries.models import DeliveryJob


class SDNextRunner:
    mode = "sdnext"
    queue = "generation"

    def run(self, job: DeliveryJob, *, worker: str) -> None:
        raise NotImplementedError

    def release(self, job: DeliveryJob) -> None:
        pass
