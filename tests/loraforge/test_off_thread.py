"""``in_own_connection``: database work from async code runs in a pool thread that gives its connection back."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connections

from loraforge.models import BackgroundJob
from loraforge.off_thread import in_own_connection


def _create_job(seen: dict[str, Any], *, fail: bool = False) -> BackgroundJob:
    seen["thread"] = threading.current_thread()
    seen["wrapper"] = connections["default"]  # this thread's own wrapper
    job = BackgroundJob.objects.create(kind="scan", status="pending")
    if fail:
        raise RuntimeError("failed after a query")
    return job


@pytest.mark.django_db(transaction=True)
def test_the_work_runs_outside_the_callers_thread_and_its_connection_is_closed_after():
    seen: dict[str, Any] = {}

    async def scenario() -> BackgroundJob:
        return await in_own_connection(_create_job)(seen)

    job = async_to_sync(scenario)()
    assert BackgroundJob.objects.get(pk=job.pk).status == "pending"
    assert seen["thread"] is not threading.current_thread()  # not the thread that serves sync work
    assert seen["wrapper"] is not connections["default"]
    assert seen["wrapper"].connection is None  # given back: a pooled connection is no longer checked out


@pytest.mark.django_db(transaction=True)
def test_the_connection_is_closed_when_the_work_fails():
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        await in_own_connection(_create_job)(seen, fail=True)

    with pytest.raises(RuntimeError, match="failed after a query"):
        async_to_sync(scenario)()
    assert seen["wrapper"].connection is None
