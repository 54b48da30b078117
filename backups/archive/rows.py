"""Rows as archive records, fast: the JSON text of ``records.row_record`` made from the values the database driver
returns, without Django's per-value converters and without parsing JSON columns only to serialise them again.

Why: a backup of a million generation jobs spent two thirds of its time converting values (JSON text parsed, UUIDs
and datetimes built) that ``row_record`` then turned back into text. Here each column has one small encoder chosen
once per model: a JSON column's text is embedded as it is stored (it is JSON already), a UUID is hyphenated, a
SQLite datetime (stored as naive UTC text) becomes the same ISO 8601 text ``isoformat()`` of the aware value gives. On
PostgreSQL, timestamps and UUIDs are read as the server's text too (Django's time-zone-aware timestamp loader is
Python code: it was a sixth of a metadata backup's time there), and turned into the same text. The
record parses to exactly what ``row_record`` gives (tests compare both on both databases); a model with a column
type not listed here is refused, so nothing is ever encoded by guesswork.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, models

from backups.archive.records import archived_fields

Encoder = Callable[[Any], str]
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quote: Callable[[str], str] = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


def _text(value: Any) -> str:
    return _quote(value if isinstance(value, str) else str(value))


def _integer(value: Any) -> str:
    return str(int(value))


def _float(value: Any) -> str:
    number = float(value)
    return repr(number) if math.isfinite(number) else _dumps(number)


def _boolean(value: Any) -> str:
    return "true" if value else "false"


def _uuid(value: Any) -> str:
    if isinstance(value, str):
        if len(value) == 32:  # SQLite: 32 hex digits
            return f'"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"'
        if len(value) == 36:  # PostgreSQL's text: already the canonical form str(UUID) gives
            return f'"{value}"'
    return f'"{value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))}"'


def _datetime(value: Any) -> str:
    if isinstance(value, datetime):
        # PostgreSQL: aware, in the connection's time zone (UTC); SQLite (Django parses the declared type): naive UTC
        return f'"{value.isoformat()}"' if value.tzinfo is not None else f'"{value.isoformat()}+00:00"'
    # SQLite's text "YYYY-MM-DD HH:MM:SS[.ffffff]" (naive UTC), or PostgreSQL's text of a timestamptz in the
    # connection's UTC session, "YYYY-MM-DD HH:MM:SS[.f...]+00", whose fraction has no trailing zeros.
    text = str(value)
    if text.endswith("+00"):
        text = text[:-3]
        if len(text) > 20:
            text = text.ljust(26, "0")
    if len(text) not in (19, 26) or text[10] != " ":
        return _datetime(datetime.fromisoformat(str(value)))  # any other form: parsed (never guessed)
    return f'"{text[:10]}T{text[11:]}+00:00"'


def _date(value: Any) -> str:
    return f'"{value.isoformat() if isinstance(value, date) else value}"'


def _json(value: Any) -> str:
    if isinstance(value, str):  # the stored text (Django has both drivers return jsonb as text)
        return value
    return _dumps(value)


def _binary(value: Any) -> str:
    return '"' + base64.b64encode(bytes(value)).decode("ascii") + '"'


ENCODERS: dict[str, Encoder] = {
    "CharField": _text, "TextField": _text, "UUIDField": _uuid, "DateTimeField": _datetime, "DateField": _date,
    "JSONField": _json, "BinaryField": _binary, "BooleanField": _boolean, "FloatField": _float,
    "IntegerField": _integer, "BigIntegerField": _integer, "SmallIntegerField": _integer,
    "PositiveIntegerField": _integer, "PositiveSmallIntegerField": _integer, "PositiveBigIntegerField": _integer,
    "AutoField": _integer, "BigAutoField": _integer, "SmallAutoField": _integer,
}  # fmt: skip


class RowEncoder:
    """``model``'s archived columns (all but ``exclude``), read raw and encoded as a record's JSON text.
    ``rename`` changes keys (``{"vector": "vector_b64"}``)."""

    def __init__(
        self,
        model: type[models.Model],
        *,
        exclude: Collection[str] = (),
        rename: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.model = model
        fields = archived_fields(model, exclude=exclude)
        self.attnames = [field.attname for field in fields]
        self.extra = list(extra)  # more attnames read (not encoded): the caller uses them
        names = [(rename or {}).get(attname, attname) for attname in self.attnames]
        self._prefixes = [("{" if index == 0 else ",") + _dumps(name) + ":" for index, name in enumerate(names)]
        self._encoders = [_encoder(field) for field in fields]

    def encode(self, row: Sequence[Any]) -> str:
        """The record's JSON text (an object) from a raw row of ``columns``."""
        parts = [
            prefix + ("null" if value is None else encoder(value))
            for prefix, encoder, value in zip(self._prefixes, self._encoders, row, strict=False)
        ]
        return "".join(parts) + "}"

    def pages(self, queryset: models.QuerySet[Any], size: int) -> Iterator[list[tuple[Any, ...]]]:
        """Raw rows (the archived columns, then ``extra``, then the primary key) in primary-key order, ``size`` at
        a time; each page is one bounded query."""
        pk = self.model._meta.pk
        assert pk is not None
        columns = [*self.attnames, *self.extra, pk.attname]
        ordered = queryset.order_by("pk").values_list(*columns)
        last: Any = None
        while True:
            page = (ordered if last is None else ordered.filter(pk__gt=_key(pk, last)))[:size]
            rows = _raw(page)
            if not rows:
                return
            yield rows
            last = rows[-1][-1]

    def rows(self, queryset: models.QuerySet[Any], *order: str) -> list[tuple[Any, ...]]:
        """Raw rows (the archived columns, then ``extra``) of a bounded ``queryset`` in ``order``."""
        return _raw(queryset.order_by(*order).values_list(*self.attnames, *self.extra))


def _key(pk: models.Field[Any, Any], raw: Any) -> Any:
    return pk.to_python(raw)


def _raw(queryset: models.QuerySet[Any]) -> list[tuple[Any, ...]]:
    """The rows as the driver returns them (no Django converters; PostgreSQL timestamps and UUIDs as text)."""
    compiler = queryset.query.get_compiler(queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # a condition that matches nothing (``pk__in=[]``): Django runs no query either
        return []
    connection = connections[queryset.db]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _text_loaders(cursor.cursor)
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


TEXT_LOADED = ("timestamptz", "uuid")


def _text_loaders(cursor: Any) -> None:
    """Have this psycopg cursor return these types as the server's text."""
    from psycopg.types.string import TextLoader

    for name in TEXT_LOADED:
        cursor.adapters.register_loader(name, TextLoader)


def _encoder(field: models.Field[Any, Any]) -> Encoder:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    kind = target.get_internal_type()
    if kind not in ENCODERS:
        raise TypeError(f"No archive encoder for {field.model.__name__}.{field.name} ({kind})")
    return ENCODERS[kind]
