"""Rows as archive records and back (SPEC 6.10.1): one generic conversion for every model the archive holds.

A record is a JSON object keyed by the model's column names (``attname``: a foreign key is ``job_id``); UUIDs and
datetimes are strings (ISO 8601), binary values base64, JSON fields as they are. Reading a record back converts
each value with the field's own ``to_python`` and checks what the column requires (not null, length, choices), so
an archive record is refused with the field and the reason before anything is written (SPEC 6.10.2 step 9).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

# Columns that are derived from others (recomputed on save) or that describe this host only: never archived.
ADAPTER_DERIVED = frozenset({"tag_index", "search_index", "has_duplicates"})
BACKEND_PRIVATE = frozenset({"password", "lease_job", "lease_expires_at"})


class RecordError(Exception):
    """A record that does not convert: ``field`` and ``message`` name what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def json_value(value: Any) -> Any:
    """A column value as JSON: UUID and Decimal as strings, dates ISO 8601, bytes base64."""
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def archived_fields(model: type[models.Model], *, exclude: Collection[str] = ()) -> list[models.Field[Any, Any]]:
    return [field for field in model._meta.concrete_fields if field.name not in exclude]


def row_record(instance: models.Model, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """Every concrete column of ``instance`` but ``exclude`` (field names), keyed by ``attname``."""
    return {
        field.attname: json_value(field.value_from_object(instance))
        for field in archived_fields(type(instance), exclude=exclude)
    }


def values_record(
    model: type[models.Model], values: Mapping[str, Any], *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """The same record from a ``.values()`` row (keyed by ``attname``), without building model instances."""
    return {
        field.attname: json_value(values[field.attname])
        for field in archived_fields(model, exclude=exclude)
        if field.attname in values
    }


def record_values(
    model: type[models.Model],
    record: Mapping[str, Any],
    *,
    exclude: Collection[str] = (),
    required: Collection[str] = (),
) -> dict[str, Any]:
    """The Python values (keyed by ``attname``) of the columns a record carries; keys the model lacks are ignored
    (a later format may add some). ``required`` attnames must be present. Raises ``RecordError``."""
    if not isinstance(record, Mapping):
        raise RecordError("record", "must be a JSON object")
    values: dict[str, Any] = {}
    for field in archived_fields(model, exclude=exclude):
        key = field.attname
        if key not in record:
            if key in required:
                raise RecordError(key, "This field is required.")
            continue
        values[key] = field_value(field, record[key])
    return values


def field_value(field: models.Field[Any, Any], raw: Any) -> Any:
    """``raw`` converted and checked as the column requires."""
    if raw is None:
        if not field.null:
            raise RecordError(field.attname, "This field may not be null.")
        return None
    try:
        if isinstance(field, models.JSONField):
            value = raw
        elif isinstance(field, models.BinaryField):
            if not isinstance(raw, str):
                raise ValidationError("Expected base64 text.")
            value = base64.b64decode(raw.encode("ascii"), validate=True)
        else:
            if isinstance(raw, dict | list):
                raise ValidationError("Expected a single value.")
            value = field.to_python(raw)
            if isinstance(value, datetime) and timezone.is_naive(value):  # as the ORM would save it, without a warning
                value = timezone.make_aware(value)
        if isinstance(field, models.CharField) and field.max_length is not None and len(value) > field.max_length:
            raise ValidationError(f"Ensure this field has no more than {field.max_length} characters.")
        if field.choices and value not in {choice for choice, _ in field.flatchoices}:
            raise ValidationError(f'"{value}" is not a valid choice.')
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:  # Infinity into an integer column
        messages = getattr(exc, "messages", None) or [str(exc)]
        raise RecordError(field.attname, str(messages[0])) from exc
    return value
