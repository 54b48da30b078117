"""The jobs and links tables carry no index another one already serves (migrations 0003 and 0004): every job and
link inserted pays for each B-tree, and a restore inserts millions."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.backups.helpers import job_table_indexes

pytestmark = pytest.mark.django_db

DROPPED = {
    "deliveries_deliveryjob_kind_1f913512",  # served by delivery_kind_created
    "deliveries_deliveryjobadapter_job_id_52d10f29",  # served by delivery_adapter_job_position
    "deliveries_deliveryjobadapter_adapter_id_17862cc3",  # served by delivery_adapter_adapter_job
    "deliveries_deliveryjob_kind_1f913512_like",  # PostgreSQL's LIKE 'prefix%' index: no such lookup on kind
    "deliveries_deliveryjob_mode_670f61e2_like",  # nor on mode
}


def test_no_redundant_index_on_jobs_and_links():
    names = set(job_table_indexes())
    assert not names & DROPPED
    assert not [name for name in names if name.endswith("_like")]
    assert {"delivery_kind_created", "delivery_adapter_adapter_job"} <= names
    with connection.cursor() as cursor:  # a constraint: on SQLite its index is an automatic one
        constraints = connection.introspection.get_constraints(cursor, "deliveries_deliveryjobadapter")
    assert constraints["delivery_adapter_job_position"]["columns"] == ["job_id", "position"]
    assert "deliveries_deliveryjob_mode_670f61e2" in names  # the jobs list filters on mode
