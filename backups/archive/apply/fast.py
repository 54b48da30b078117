"""The two hot loops of a large restore, compiled once per model: records to column values (the semantics of
``records.record_values``, with a fast path for values that already have the column's JSON type and the generic
conversion for everything else) and plain INSERTs of those values with ``executemany`` (no model instances, no
``auto_now`` rewrite: archived timestamps survive; database triggers fire for every row)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models

from backups.archive.records import RecordError, archived_fields, field_value

Converter = Callable[[Any], Any]
_MISSING = object()


def _text(field: models.Field[Any, Any]) -> Converter:
    limit = field.max_length if isinstance(field, models.CharField) else None
    choices = {choice for choice, _label in field.flatchoices} if field.choices else None

    def convert(raw: Any) -> Any:
        if type(raw) is str and (limit is None or len(raw) <= limit) and (choices is None or raw in choices):
            return raw
        return _MISSING

    return convert


def _datetime(raw: Any) -> Any:
    if type(raw) is str:
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            return _MISSING
        return value if value.tzinfo is not None else _MISSING
    return _MISSING


def _uuid(raw: Any) -> Any:
    if type(raw) is str:
        try:
            return uuid.UUID(raw)
        except ValueError:
            return _MISSING
    return _MISSING


def _float(raw: Any) -> Any:
    kind = type(raw)
    return raw if kind is float else float(raw) if kind is int else _MISSING


def _exact(kind: type) -> Converter:
    return lambda raw: raw if type(raw) is kind else _MISSING


def _fast(field: models.Field[Any, Any]) -> Converter | None:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if field.choices and not isinstance(field, models.CharField):
        return None
    if isinstance(target, models.JSONField):
        return lambda raw: raw
    if isinstance(target, models.UUIDField):
        return _uuid
    if isinstance(target, models.DateTimeField):
        return _datetime
    if isinstance(target, models.CharField | models.TextField):
        return _text(field)
    if isinstance(target, models.BooleanField):
        return _exact(bool)
    if isinstance(target, models.FloatField):
        return _float
    if isinstance(target, models.IntegerField) and not isinstance(target, models.AutoField):
        return _exact(int)
    return None


@cache
def _readers(model: type[models.Model], exclude: frozenset[str]) -> tuple[tuple[str, Any, bool, Converter | None], ...]:
    return tuple((f.attname, f, f.null, _fast(f)) for f in archived_fields(model, exclude=exclude))


def fast_record_values(
    model: type[models.Model],
    record: Mapping[str, Any],
    *,
    exclude: Collection[str] = (),
    required: Collection[str] = (),
) -> dict[str, Any]:
    """``records.record_values``, faster: the same values and the same ``RecordError`` for a bad one."""
    if not isinstance(record, Mapping):
        raise RecordError("record", "must be a JSON object")
    values: dict[str, Any] = {}
    for key, field, nullable, fast in _readers(model, frozenset(exclude)):
        raw = record.get(key, _MISSING)
        if raw is None and nullable:
            values[key] = None
            continue
        if raw is _MISSING:
            if key in required:
                raise RecordError(key, "This field is required.")
            continue
        value = fast(raw) if fast is not None else _MISSING
        values[key] = field_value(field, raw) if value is _MISSING else value
    return values


# --- inserts --------------------------------------------------------------------------------------------------------


def _db_adapter(field: models.Field[Any, Any]) -> Converter:
    ops = connection.ops
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.JSONField):
        return lambda value: None if value is None else ops.adapt_json_value(value, target.encoder)
    if isinstance(target, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(target, models.DateField):
        return ops.adapt_datefield_value
    if isinstance(target, models.UUIDField):
        if connection.features.has_native_uuid_field:
            return lambda value: value
        return lambda value: (
            None if value is None else (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).hex
        )
    if isinstance(target, models.BinaryField):
        return lambda value: target.get_db_prep_value(value, connection)
    return lambda value: value


class RowInserter:
    """``INSERT`` of value dicts (keyed by attname) into ``model``'s table; a missing key takes the column's default
    (``now`` for ``auto_now``/``auto_now_add`` columns); an auto-increment id missing from every row is left out.

    PostgreSQL gets one ``COPY ... FROM STDIN`` per batch: its analytics and catalogue triggers run once per
    statement (transition tables), so one statement per row would run them per row, and a multi-row ``VALUES`` of
    thousands of parameters costs more to parse client-side than to run. SQLite's triggers run per row anyway,
    and ``executemany`` of one prepared statement is its fastest path."""

    def __init__(self, model: type[models.Model], *, now: datetime, without: Collection[str] = ()) -> None:
        quote = connection.ops.quote_name
        fields = [field for field in model._meta.concrete_fields if field.attname not in without]
        table = quote(model._meta.db_table)
        columns = ", ".join(quote(str(field.column)) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        self.insert_sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - quoted names
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"
        self.columns = [(field.attname, self._default(field, now), _db_adapter(field)) for field in fields]
        self.copy = connection.vendor == "postgresql"

    @staticmethod
    def _default(field: models.Field[Any, Any], now: datetime) -> Callable[[], Any]:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return lambda: now
        if field.has_default():
            return field.get_default
        return lambda: None

    def insert(self, rows: Iterable[Mapping[str, Any]]) -> int:
        params = [
            [adapt(row[name] if name in row else default()) for name, default, adapt in self.columns] for row in rows
        ]
        if not params:
            return 0
        with connection.cursor() as cursor:
            if not self.copy:
                cursor.executemany(self.insert_sql, params)
                return len(params)
            with cursor.cursor.copy(self.copy_sql) as copy:  # the psycopg cursor under Django's wrapper
                for row in params:
                    copy.write_row(row)
        return len(params)
