"""``indexes_suspended``: on SQLite a bulk load runs without the plain indexes of the tables it fills, which are
created again from their own SQL at the end of the block; a failure rolls the drop back; PostgreSQL is untouched."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from backups.archive.apply.context import indexes_suspended
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from tests.backups.helpers import job_table_indexes as indexes

pytestmark = pytest.mark.django_db(transaction=True)


def test_plain_indexes_are_dropped_inside_and_the_same_ones_created_after():
    before = indexes()
    assert any(name == "delivery_status_created" for name in before)
    with transaction.atomic(), indexes_suspended(DeliveryJob, DeliveryJobAdapter):
        inside = indexes()
    assert indexes() == before
    if connection.vendor == "sqlite":
        unique_or_auto = {name for name, sql in before.items() if sql == "auto" or sql.startswith("CREATE UNIQUE")}
        assert set(inside) == unique_or_auto  # constraints stay checked while rows arrive
        assert "delivery_status_created" not in inside
    else:
        assert inside == before  # PostgreSQL: DROP INDEX would lock readers out; nothing is dropped


def test_a_failure_inside_rolls_the_drop_back():
    before = indexes()
    with pytest.raises(RuntimeError, match="boom"), transaction.atomic(), indexes_suspended(DeliveryJob):
        raise RuntimeError("boom")
    assert indexes() == before


def test_outside_a_transaction_sqlite_refuses_and_postgresql_does_nothing():
    before = indexes()
    if connection.vendor == "sqlite":
        with pytest.raises(RuntimeError, match="inside a transaction"), indexes_suspended(DeliveryJob):
            pass
    else:
        with indexes_suspended(DeliveryJob):
            assert indexes() == before
    assert indexes() == before
