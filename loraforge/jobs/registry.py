"""The registry of job models: each app declares its kind of job once (``job_kind_register`` in its
``AppConfig.ready()``), and the core's recovery sweep and WebSocket snapshots cover every registered kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loraforge.models.jobs import JobRecord


@dataclass(frozen=True)
class JobKind:
    """What the core needs to know of one model of job rows."""

    model: type[JobRecord]
    # The snapshot envelopes (``snapshot: true``) of one job, as a newly subscribed WebSocket client gets them.
    snapshot_events: Callable[[Any], list[dict[str, Any]]]
    # The kind's sweep (SPEC 6.2.6): ``recover(dry_run=..., requeue_all_pending=...)`` → one line per job it moved.
    recover: Callable[..., list[str]]


_kinds: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    _kinds[kind.model._meta.label] = kind


def job_kinds() -> list[JobKind]:
    """The registered kinds, in registration order (``BackgroundJob`` first: the core registers it)."""
    return list(_kinds.values())
