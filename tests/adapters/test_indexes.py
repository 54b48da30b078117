"""The search and tag indexes exist on each database and the planner uses them."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, "adapters_adapter"))


def _postgres_plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    return plan


def _sqlite_plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return " ".join(str(row) for row in cursor.fetchall())


def test_substring_counts_use_the_search_indexes_of_this_database():
    """Runs in both passes of make test: trigram GIN on PostgreSQL, covering b-trees on SQLite."""
    sql = "SELECT count(*) FROM adapters_adapter WHERE search_index LIKE '%x%'"
    if connection.vendor == "postgresql":
        assert {"adapter_tag_index_trgm", "adapter_search_index_trgm"} <= _index_names()
        assert "adapter_search_index_trgm" in _postgres_plan(sql)
    else:
        assert {"adapter_tag_index_cover", "adapter_search_index_cover"} <= _index_names()
        assert "COVERING INDEX adapter_search_index_cover" in _sqlite_plan(sql)


def test_the_active_set_is_read_through_an_index():
    from adapters.models import Adapter

    query = Adapter.objects.filter(active=True).order_by().values("id").query
    sql = str(query)  # no parameters: Django writes the filter as WHERE "active"
    plan = _postgres_plan(sql) if connection.vendor == "postgresql" else _sqlite_plan(sql)
    assert "adapter_active_partial" in plan


def test_registering_a_file_finds_other_copies_through_an_index(lora_dir):
    """``remember_registered_file`` runs on every create: its look-up of other copies must not scan the table
    (the model's ordering and a plain index on the boolean made SQLite do just that; issue 9)."""
    from django.test.utils import CaptureQueriesContext

    from adapters.scanner.engine import Registered, registered_file_row, remember_registered_file
    from tests.factories import AdapterFactory
    from tests.lora_files import write_safetensors

    adapter = AdapterFactory(file_path=str(write_safetensors(lora_dir / "copy.safetensors")))
    with CaptureQueriesContext(connection) as ctx:
        row = registered_file_row(registered=Registered(adapter, [], ""))
        remember_registered_file(adapter=adapter, row=row)
    [sql] = [query["sql"] for query in ctx.captured_queries if '"duplicate_paths"' in query["sql"]]
    assert "ORDER BY" not in sql
    plan = _postgres_plan(sql) if connection.vendor == "postgresql" else _sqlite_plan(sql)
    assert "adapter_has_duplicates_partial" in plan
