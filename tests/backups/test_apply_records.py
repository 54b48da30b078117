"""The compiled record conversion of large restores gives what ``records.record_values`` gives, errors included."""

from __future__ import annotations

import pytest

from adapters.models import Adapter
from backups.archive.apply.fast import fast_record_values
from backups.archive.records import ADAPTER_DERIVED, RecordError, record_values, row_record
from deliveries.models import DeliveryJob
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
