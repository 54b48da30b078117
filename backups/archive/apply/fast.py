"""The two hot loops of a large restore, compiled once per model: records to column values (the semantics of
``records.record_values``, with a fast path for values that already have the column's JSON type and the generic
conversion for everything else) and plain INSERTs of those values with ``executemany`` (no model instances, no
``auto_now`` rewrite: archived timestamps survive; database triggers fire for every row)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

from django.db import connection, models

from backups.archive.records import RecordError, archived_fields, field_value

_MISSING = object()


def _datetime(raw: Any) -> Any:
    if type(raw) is str:
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            return _MISSING
        return value if value.tzinfo is not None else _MISSING
    return _MISSING


_new_uuid = object.__new__
_set = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def _uuid(raw: Any) -> Any:
    """``uuid.UUID(raw)``; the canonical form (8-4-4-4-12) is built without ``UUID.__init__``'s clean-up of other
    forms (a third of its cost, four times per job record): the same ``int(hex, 16)``, so the same value."""
    if type(raw) is not str:
        return _MISSING
    if len(raw) == 36 and raw[8] == raw[13] == raw[18] == raw[23] == "-":
        digits = raw.replace("-", "")
        if len(digits) == 32:
            try:
                number = int(digits, 16)
            except ValueError:
                return _MISSING
            value = _new_uuid(uuid.UUID)
            _set(value, "int", number)
            _set(value, "is_safe", _SAFE_UNKNOWN)
            return value
    try:
        return uuid.UUID(raw)
    except ValueError:
        return _MISSING


def _kind(field: models.Field[Any, Any]) -> str | None:
    """How a raw value of ``field`` is taken without the generic conversion (None: always the generic one)."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if field.choices and not isinstance(field, models.CharField):
        return None
    if isinstance(target, models.JSONField):
        return "json"
    if isinstance(target, models.UUIDField):
        return "uuid"
    if isinstance(target, models.DateTimeField):
        return "datetime"
    if isinstance(target, models.CharField | models.TextField):
        return "text"
    if isinstance(target, models.BooleanField):
        return "bool"
    if isinstance(target, models.FloatField):
        return "float"
    if isinstance(target, models.IntegerField) and not isinstance(target, models.AutoField):
        return "int"
    return None


def _field_lines(index: int, field: models.Field[Any, Any], *, required: bool) -> list[str]:
    """The converter's statements for one field: the raw value taken as it is when it already has the column's
    JSON type (text within its length and choices, exact int, bool, float), parsed for UUIDs and datetimes, and
    otherwise converted by ``field_value`` (which raises the ``RecordError``)."""
    key = repr(field.attname)
    store = f"values[{key}] = "
    generic = f"{store}field_value(F{index}, raw)"
    kind = _kind(field)
    lines = [f"raw = get({key}, MISSING)", "if raw is MISSING:"]
    lines.append(f"    raise RecordError({key}, 'This field is required.')" if required else "    pass")
    if field.null:
        lines += ["elif raw is None:", f"    {store}None"]
    lines.append("else:")
    if kind == "json":  # any JSON value is the column's value; null only where the column allows it
        body = [f"{store}raw"] if field.null else ["if raw is None:", f"    {generic}", "else:", f"    {store}raw"]
    elif kind in ("uuid", "datetime"):
        body = [f"value = _{kind}(raw)", f"{store}field_value(F{index}, raw) if value is MISSING else value"]
    elif kind in ("text", "bool", "int", "float"):
        test = {"text": "type(raw) is str", "bool": "type(raw) is bool", "int": "type(raw) is int"}.get(
            kind, "type(raw) is float"
        )
        if kind == "text" and isinstance(field, models.CharField) and field.max_length is not None:
            test += f" and len(raw) <= {int(field.max_length)}"
        if kind == "text" and field.choices:
            test += f" and raw in C{index}"
        body = [f"if {test}:", f"    {store}raw"]
        if kind == "float":
            body += ["elif type(raw) is int:", f"    {store}float(raw)"]
        body += ["else:", f"    {generic}"]
    else:
        body = [generic]
    return lines + [f"    {line}" for line in body]


@cache
def record_converter(
    model: type[models.Model], exclude: Collection[str] = (), required: Collection[str] = ()
) -> Callable[[Any], dict[str, Any]]:
    """``records.record_values`` for ``model``, compiled once into one function of straight-line code per field
    (a restore converts a million jobs and three million links twice: the generic loop cost 14 µs a job record,
    this 5): the same values and the same ``RecordError`` for a bad one (tests compare both). ``exclude`` and
    ``required`` are hashable collections (tuples, frozensets): each combination is compiled once."""
    fields = archived_fields(model, exclude=exclude)
    namespace: dict[str, Any] = {
        "MISSING": _MISSING, "Mapping": Mapping, "RecordError": RecordError, "field_value": field_value,
        "_uuid": _uuid, "_datetime": _datetime,
    }  # fmt: skip
    body = [
        "def convert(record):",
        "    if not isinstance(record, Mapping):",
        "        raise RecordError('record', 'must be a JSON object')",
        "    values = {}",
        "    get = record.get",
    ]
    for index, field in enumerate(fields):
        namespace[f"F{index}"] = field
        if field.choices:
            namespace[f"C{index}"] = frozenset(choice for choice, _label in field.flatchoices)
        body += [f"    {line}" for line in _field_lines(index, field, required=field.attname in set(required))]
    body.append("    return values")
    exec(compile("\n".join(body), f"<record converter {model.__name__}>", "exec"), namespace)  # noqa: S102 - from field metadata only
    return cast(Callable[[Any], dict[str, Any]], namespace["convert"])


def fast_record_values(
    model: type[models.Model],
    record: Mapping[str, Any],
    *,
    exclude: Collection[str] = (),
    required: Collection[str] = (),
) -> dict[str, Any]:
    """``records.record_values``, faster: the same values and the same ``RecordError`` for a bad one."""
    return record_converter(model, _hashable(exclude), _hashable(required))(record)


def _hashable(names: Collection[str]) -> tuple[str, ...] | frozenset[str]:
    return names if isinstance(names, tuple | frozenset) else frozenset(names)


# --- inserts --------------------------------------------------------------------------------------------------------


def _db_value(field: models.Field[Any, Any], index: int, namespace: dict[str, Any]) -> str:
    """An expression turning ``v`` (the column's Python value or None) into what the driver is given, as Django's
    ``get_db_prep_value`` would: inline for the common types, through Django's own adapters otherwise."""
    ops = connection.ops
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.JSONField):
        namespace[f"J{index}"] = lambda value, encoder=target.encoder: ops.adapt_json_value(value, encoder)
        return f"None if v is None else J{index}(v)"
    if isinstance(target, models.DateTimeField):
        if connection.vendor == "sqlite":  # Django's adapter: naive in the connection's zone, then str()
            namespace[f"A{index}"] = ops.adapt_datetimefield_value
            return f"v.replace(tzinfo=None).isoformat(' ') if type(v) is datetime and v.tzinfo is TZ else A{index}(v)"
        namespace[f"A{index}"] = ops.adapt_datetimefield_value
        return f"A{index}(v)"
    if isinstance(target, models.DateField):
        namespace[f"A{index}"] = ops.adapt_datefield_value
        return f"A{index}(v)"
    if isinstance(target, models.UUIDField):
        if connection.features.has_native_uuid_field:
            return "v"
        return "v.hex if type(v) is UUID else None if v is None else UUID(str(v)).hex"
    if isinstance(target, models.BinaryField):
        namespace[f"A{index}"] = lambda value, prep=target.get_db_prep_value: prep(value, connection)
        return f"A{index}(v)"
    return "v"


def _default(field: models.Field[Any, Any], now: datetime) -> Callable[[], Any] | None:
    """What a missing key takes: ``now`` for ``auto_now``/``auto_now_add``, the field's default, else None."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda: now
    if field.has_default():
        return field.get_default
    return None


def row_builder(fields: list[models.Field[Any, Any]], now: datetime) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """One function, compiled per inserter, from a value dict (keyed by attname) to the driver's parameters in
    ``fields`` order: straight-line code per column (the generic loop over (default, adapter) pairs cost 37 µs a
    job row, most of it in Django's datetime adapter)."""
    namespace: dict[str, Any] = {
        "MISSING": _MISSING, "UUID": uuid.UUID, "datetime": datetime, "TZ": getattr(connection, "timezone", None),
    }  # fmt: skip
    body = ["def build(values):", "    get = values.get"]
    names = []
    for index, field in enumerate(fields):
        default = _default(field, now)
        if default is None:
            body.append(f"    v = get({field.attname!r})")
        else:
            namespace[f"D{index}"] = default
            body += [f"    v = get({field.attname!r}, MISSING)", "    if v is MISSING:", f"        v = D{index}()"]
        body.append(f"    c{index} = {_db_value(field, index, namespace)}")
        names.append(f"c{index}")
    body.append(f"    return ({', '.join(names)},)")
    exec(compile("\n".join(body), "<row builder>", "exec"), namespace)  # noqa: S102 - from field metadata only
    return cast(Callable[[Mapping[str, Any]], tuple[Any, ...]], namespace["build"])


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
        self.build = row_builder(fields, now)
        self.copy = connection.vendor == "postgresql"

    def insert(self, rows: Iterable[Mapping[str, Any]]) -> int:
        params = [self.build(row) for row in rows]
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
