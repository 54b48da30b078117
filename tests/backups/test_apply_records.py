"""The compiled record conversion of large restores gives what ``records.record_values`` gives, errors included."""

from __future__ import annotations

import json

import pytest
from django.db import connection, models

from adapters.models import Adapter
from analytics.models import ResourceSample
from backups.archive.apply.fast import RowInserter, fast_record_values
from backups.archive.reader import json_loads
from backups.archive.records import (
    ADAPTER_DERIVED,
    BACKEND_PRIVATE,
    RecordError,
    archived_fields,
    record_values,
    row_record,
)
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference
from tests.analytics.report_jobs import NOW, make_job
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


def both(model, record, **kwargs):
    outcomes = []
    for convert in (record_values, fast_record_values):
        try:
            outcomes.append(("ok", convert(model, record, **kwargs)))
        except RecordError as exc:
            outcomes.append(("error", (exc.field, exc.message)))
    return outcomes


def test_valid_rows_convert_identically():
    adapter = AdapterFactory(tags=["a"], weight=0.5, published_at=NOW, header_metadata={"k": "v"}, network_dim=32)
    job = make_job(NOW, "failed", seconds=2, error_code="x", error="e")
    for model, record, exclude in (
        (Adapter, row_record(adapter, exclude=ADAPTER_DERIVED), ADAPTER_DERIVED),
        (DeliveryJob, row_record(job), frozenset()),
    ):
        plain, fast = both(model, record, exclude=exclude)
        assert plain == fast
        assert plain[0] == "ok"


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("status", "exploded"),
        ("status", 3),
        ("attempts", True),
        ("attempts", "two"),
        ("progress", "half"),
        ("id", "not-a-uuid"),
        ("created_at", "yesterday"),
        ("created_at", "2026-01-01T00:00:00"),
        ("prompt", None),
        ("error_code", "x" * 65),
        ("backend_id", 12),
        ("params", [1, 2]),
    ],
)
def test_invalid_values_fail_alike(key, raw):
    record = {**row_record(make_job(NOW)), key: raw}
    plain, fast = both(DeliveryJob, record, required=("id", "prompt"))
    assert plain == fast


def test_a_missing_required_key_fails_alike():
    record = row_record(make_job(NOW))
    del record["prompt"]
    plain, fast = both(DeliveryJob, record, required=("prompt",))
    assert plain == fast == ("error", ("prompt", "This field is required."))


@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "x", "weight": 0.5, "tags": ["a", "\\u00fc"], "n": null}',
        b'{"weight": NaN, "alpha": Infinity}',  # json accepts these constants, orjson does not
        b'{"big": 123456789012345678901234567890}',  # beyond 64 bits
        b'{"lone": "\\ud800"}',  # a lone surrogate
        b'{"dup": 1, "dup": 2}',
    ],
    ids=["plain", "constants", "big-int", "lone-surrogate", "duplicate-key"],
)
def test_records_parse_as_json_parses_them(data):
    parsed = json_loads(data)
    expected = json.loads(data)
    assert json.dumps(parsed, sort_keys=True) == json.dumps(expected, sort_keys=True)  # NaN != NaN: compare text


@pytest.mark.parametrize("data", [b'{"a": 1', b'{"a": "\xff"}', b"[1, 2] trailing"], ids=["cut", "utf8", "trailing"])
def test_records_refused_as_json_refuses_them(data):
    outcomes = []
    for parse in (json_loads, json.loads):
        try:
            parse(data)
        except ValueError as exc:  # JSONDecodeError or UnicodeDecodeError, both ValueErrors (reader.jsonl catches)
            outcomes.append(type(exc))
    assert len(outcomes) == 2
    assert outcomes[0] is outcomes[1]


ODD_VALUES = [
    None, "", "x", "x" * 300, "succeeded", "generation", 0, -1, 2**40, 1.5, float("inf"), True, False, [1], {"a": 1},
    "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00", "2026-13-01T00:00:00+00:00",
    "0c4f1b2e-8d8e-4b6e-9a51-2f9e6d1c0b7a", "0C4F1B2E-8D8E-4B6E-9A51-2F9E6D1C0B7A", "0C4F1B2E8D8E4B6E9A512F9E6D1C0B7A",
    "0c4f1b2e-8d8e-4b6e-9a51-2f9e6d1c0b_a", "0c4f1b2e-8d8e-4b6e-9a51-2f9e6d1c0bxa",
    "+c4f1b2e-8d8e-4b6e-9a51-2f9e6d1c0b7a",
    "{0c4f1b2e-8d8e-4b6e-9a51-2f9e6d1c0b7a}", "not-a-uuid", "aGVsbG8=",
]  # fmt: skip
ARCHIVED = [
    (Adapter, ADAPTER_DERIVED), (DeliveryJob, frozenset()), (DeliveryJobAdapter, frozenset({"id", "job"})),
    (GenerationResult, frozenset()), (AdapterEmbedding, frozenset()), (RecommendationSession, frozenset()),
    (RecommendationFeedback, frozenset()), (UserPreference, frozenset()), (ResourceSample, frozenset({"id"})),
    (GenerationBackend, BACKEND_PRIVATE),
]  # fmt: skip


@pytest.mark.parametrize(("model", "exclude"), ARCHIVED, ids=[model.__name__ for model, _exclude in ARCHIVED])
def test_every_field_of_every_archived_model_converts_odd_values_alike(model, exclude):
    """The compiled converter against the generic one, field by field, over values of every JSON type (right,
    wrong, too long, out of range), each alone in a record, required or not."""
    fields = archived_fields(model, exclude=exclude)
    compared = 0
    for field in fields:
        for raw in ODD_VALUES:
            for required in ((), (field.attname,)):
                record = {field.attname: raw}
                plain, fast = both(model, record, exclude=exclude, required=required)
                assert plain == fast, (field.attname, raw)
                compared += 1
        plain, fast = both(model, {}, exclude=exclude, required=(field.attname,))
        assert plain == fast == ("error", (field.attname, "This field is required."))
    assert compared == len(fields) * len(ODD_VALUES) * 2
    assert both(model, ["not", "an", "object"], exclude=exclude) == [("error", ("record", "must be a JSON object"))] * 2


MOMENTS = ["2026-01-02T03:04:05.000006+00:00", "2026-01-02T03:04:05+00:00", "2026-01-02T05:04:05.5+02:00"]


def _prepared(field, values):
    """What Django gives the driver for ``field`` of a row with ``values`` (missing: the column's default)."""
    if field.attname in values:
        value = values[field.attname]
    elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        value = NOW
    else:
        value = field.get_default() if field.has_default() else None
    return field.get_db_prep_save(value, connection)


def _comparable(value):
    value = getattr(value, "obj", value)  # PostgreSQL's Jsonb wrapper
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.mark.parametrize(("model", "exclude"), ARCHIVED, ids=[model.__name__ for model, _exclude in ARCHIVED])
def test_rows_are_built_as_django_prepares_them(model, exclude):
    """The compiled row builder of the inserts gives the driver what ``get_db_prep_save`` gives, column by column,
    for every value the record conversion lets through (each field alone in a row, the others defaulted)."""
    without = {"id"} if isinstance(model._meta.pk, models.AutoField) else set()
    inserter = RowInserter(model, now=NOW, without=without)
    fields = [field for field in model._meta.concrete_fields if field.attname not in without]
    # A callable default (a random id, the current time) would differ between the two: each row carries one value.
    base = {field.attname: field.get_default() for field in fields if callable(field.default)}
    rows = [base]
    for field in archived_fields(model, exclude=exclude):
        for raw in [*ODD_VALUES, *MOMENTS]:
            try:
                rows.append({**base, **record_values(model, {field.attname: raw}, exclude=exclude)})
            except RecordError:
                continue
    built = 0
    for values in rows:
        row = inserter.build(values)
        expected = [_comparable(_prepared(field, values)) for field in fields]
        assert [_comparable(value) for value in row] == expected, values
        built += 1
    assert built > len(fields)
