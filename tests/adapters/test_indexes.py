"""The search and tag indexes exist on each database and the planner uses them."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, "adapters_adapter"))


@pytest.mark.postgres
def test_postgres_has_trigram_indexes_used_by_tag_filters():
    assert {"adapter_tag_index_trgm", "adapter_search_index_trgm"} <= _index_names()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT count(*) FROM adapters_adapter WHERE tag_index LIKE '%|anime|%'")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "adapter_tag_index_trgm" in plan


def test_sqlite_counts_matches_from_covering_indexes():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only index")
    assert {"adapter_tag_index_cover", "adapter_search_index_cover"} <= _index_names()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN SELECT count(*) FROM adapters_adapter WHERE search_index LIKE '%x%'")
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "COVERING INDEX adapter_search_index_cover" in plan


def test_the_active_set_is_read_through_an_index():
    from adapters.models import Adapter

    sql, params = Adapter.objects.filter(active=True).order_by().values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row) for row in cursor.fetchall())
        else:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            cursor.execute("SET enable_seqscan = on")
    assert "adapter_active_partial" in plan
