"""``PreparedQuery``: the same rows and instances as the ORM, on both databases, from any thread."""

from __future__ import annotations

import gc
import threading
import uuid
import weakref
from datetime import UTC, datetime

import pytest
from django.db import connection, connections

from adapters.models import Adapter
from loraforge.prepared import PreparedQuery
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db

BY_NAME = PreparedQuery(
    lambda name: Adapter.objects.order_by("id").filter(name=name).values_list("id", "triggers"), "x"
)
ACTIVE = PreparedQuery(lambda: Adapter.objects.only("id", "name", "triggers", "missing_since").filter(active=True))


def test_rows_are_the_orm_rows_with_their_types():
    first = AdapterFactory(name="Ink", triggers=["ink", "sketch"])
    AdapterFactory(name="Other")
    expected = list(Adapter.objects.order_by("id").filter(name="Ink").values_list("id", "triggers"))
    assert BY_NAME.rows("Ink") == [tuple(row) for row in expected] == [(first.pk, ["ink", "sketch"])]
    assert isinstance(BY_NAME.rows("Ink")[0][0], uuid.UUID)
    assert BY_NAME.rows("nobody") == []


def test_instances_load_the_selected_fields_and_defer_the_rest():
    missing = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    adapter = AdapterFactory(name="Glow", active=True, triggers=["glow"], missing_since=missing, description="d")
    AdapterFactory(name="Off", active=False)
    [loaded] = ACTIVE.instances()
    assert (loaded.pk, loaded.name, loaded.triggers, loaded.missing_since) == (adapter.pk, "Glow", ["glow"], missing)
    assert loaded.file_missing is True
    assert loaded.get_deferred_fields() >= {"description", "weight"}
    assert loaded.description == "d"  # read on demand, like any deferred field


def test_fetched_rows_are_the_drivers_until_converted():
    adapter = AdapterFactory(name="Raw", active=True, triggers=["raw", "ink"])
    fetched = ACTIVE.fetch()
    assert ACTIVE.field_names() == ("id", "name", "triggers", "missing_since")
    assert isinstance(fetched[0][2], str)  # the JSON column as stored, not decoded
    assert ACTIVE.convert(fetched) == ACTIVE.rows() == [(adapter.pk, "Raw", ["raw", "ink"], None)]
    [loaded] = ACTIVE.instances_from(fetched)
    assert (loaded.pk, loaded.triggers) == (adapter.pk, ["raw", "ink"])
    assert ACTIVE.instances_from([]) == []


def test_a_parameter_the_orm_would_transform_is_refused():
    by_id = PreparedQuery(lambda adapter_id: Adapter.objects.filter(pk=uuid.UUID(adapter_id)), str(uuid.uuid4()))
    with pytest.raises(ValueError, match="unchanged"):
        by_id.rows(str(uuid.uuid4()))


def test_a_wrong_number_of_parameters_is_refused():
    with pytest.raises(TypeError):
        BY_NAME.rows()


@pytest.mark.django_db(transaction=True)
def test_each_thread_runs_on_its_own_connection():
    AdapterFactory(name="Shared", triggers=["a"])
    answers: list[object] = []

    def read() -> None:
        try:
            answers.append(BY_NAME.rows("Shared")[0][1])
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == [["a"]] * 4


@pytest.mark.django_db(transaction=True)
def test_a_prepared_query_keeps_no_connection_alive():
    # A thread's connection must go when the thread does; a cache holding it would keep its session open.
    refs: list[weakref.ref[object]] = []

    def read() -> None:
        BY_NAME.rows("anyone")
        refs.append(weakref.ref(connections["default"]))
        connection.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(10)
    gc.collect()
    assert refs[0]() is None


BY_ID = PreparedQuery(
    lambda pk: Adapter.objects.order_by().filter(pk=pk).values_list("name"),
    "00000000-0000-4000-8000-000000000000",
    fields=[Adapter._meta.pk],
)


def test_a_parameter_of_a_given_field_is_prepared_as_the_orm_prepares_it():
    # A UUID key is 32 hex digits on SQLite and a uuid.UUID on PostgreSQL: the field converts it, at the check and
    # at every run, so any spelling the ORM accepts finds the row.
    adapter = AdapterFactory(name="Keyed")
    AdapterFactory(name="Other")
    for spelling in (str(adapter.pk), str(adapter.pk).upper(), adapter.pk.hex, adapter.pk):
        assert BY_ID.rows(spelling) == [("Keyed",)]
    assert BY_ID.rows(str(uuid.uuid4())) == []


def test_more_fields_than_parameters_are_refused():
    with pytest.raises(TypeError, match="more fields"):
        PreparedQuery(lambda: Adapter.objects.all(), fields=[Adapter._meta.pk])


@pytest.mark.django_db(transaction=True)
def test_converters_follow_the_connection_that_runs_the_query():
    # Converters are kept per thread and connection: a connection replaced on the same thread gets its own.
    AdapterFactory(name="Twice", triggers=["a", "b"])
    assert BY_NAME.rows("Twice")[0][1] == ["a", "b"]
    first = connections["default"]
    connections["default"] = connections.create_connection("default")
    try:
        assert connections["default"] is not first
        assert BY_NAME.rows("Twice")[0][1] == ["a", "b"]
        assert BY_NAME._local.converting[0] is connections["default"]
    finally:
        connections["default"].close()
        connections["default"] = first
