"""Concurrent writers keep the PostgreSQL rollups exact (upserts serialise on the rollup rows)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction

from analytics.rollups import rollups_rebuild
from tests.analytics.report_jobs import NOW, make_job, rollup_rows
from tests.factories import AdapterFactory

WRITERS = 4
JOBS_EACH = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_job_writers_stay_exact():
    adapters = AdapterFactory.create_batch(3)
    barrier = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            barrier.wait()
            for number in range(JOBS_EACH):
                with transaction.atomic():
                    job = make_job(NOW + timedelta(seconds=number), "pending", adapters=adapters[: 1 + number % 3])
                    job.start(worker=f"w{index}")
                    if number % 2:
                        job.fail(error="boom", error_code="x")
                    else:
                        job.succeed(result={})
        except BaseException as error:
            failures.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    incremental = rollup_rows()
    assert sum(row[1] for row in incremental["jobs"]) == WRITERS * JOBS_EACH
    rollups_rebuild()
    assert rollup_rows() == incremental
