"""Hot read queries compiled by the ORM once, then run with new parameters (issue 9's profile: compiling a simple
filter costs the request path several times what SQLite takes to answer it).

``PreparedQuery(build, *samples)``: ``build(*params)`` returns the queryset for some parameters. It is built and
compiled once per process with the samples (on the first connection that runs it: one alias has one SQL); the SQL
must carry exactly the samples as its parameters, in order (checked, so a lookup whose parameter Django would
transform is refused at the first run instead of answering wrongly). A parameter whose model field is given in
``fields`` is passed through that field's ``get_db_prep_value`` first, at the check and at every run, as the ORM
would (a UUID primary key is a 32-digit hex string on SQLite, a ``uuid.UUID`` on PostgreSQL). A run executes that
SQL on the running thread's connection with new parameters and converts the rows with the converters Django applies
on that connection (worked out once per thread and connection, not per run);
``rows()`` gives tuples, ``instances()`` model instances (deferred like ``only()``); ``fetch()`` gives the rows as the
driver returns them, for a caller that converts only some (``convert``, ``instances_from``). Reads only; a queryset
whose SQL depends on its parameters beyond their values (``__in`` lists, ``None`` becoming ``IS NULL``) does not
belong here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Field, Model, QuerySet
from django.db.models.sql import Query

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    query: Query  # the compiled query, for the converters of the connection that runs it
    columns: list[Any]
    field_names: tuple[str, ...]


class PreparedQuery(Generic[M]):
    def __init__(
        self,
        build: Callable[..., QuerySet[M, Any]],
        *samples: Any,
        fields: Sequence[Field[Any, Any] | None] = (),
        using: str = "default",
    ) -> None:
        if len(fields) > len(samples):
            raise TypeError("more fields than parameters")
        self._build = build
        self._samples = samples
        self._fields = (*fields, *(None,) * (len(samples) - len(fields)))
        self._using = using
        self._local = threading.local()  # per thread: (connection, compiler, converters)
        self._model: type[M] | None = None
        self._lock = threading.Lock()
        self._compiled: _Compiled | None = None  # nothing here refers to a connection: none is kept alive

    def _compile(self, connection: Any) -> _Compiled:
        queryset = self._build(*self._samples)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        expected = tuple(self._parameters(connection, self._samples))
        if tuple(params) != expected:
            raise ValueError(f"a prepared query must carry its parameters unchanged: {params!r} != {expected!r}")
        columns = [expression for expression, _sql, _alias in compiler.select]
        self._model = queryset.model
        names = tuple(getattr(getattr(column, "target", None), "attname", "") for column in columns)
        return _Compiled(sql, queryset.query, columns, names)

    def _parameters(self, connection: Any, values: Sequence[Any]) -> list[Any]:
        return [
            value if field is None else field.get_db_prep_value(value, connection)
            for value, field in zip(values, self._fields, strict=True)
        ]

    def _converting(self, connection: Any, compiled: _Compiled) -> tuple[Any, dict[int, Any]]:
        """The compiler and converters of this thread's connection (``get_converters`` asks every column's field
        and the backend: a fifth of a one-row read when done per run)."""
        cached = getattr(self._local, "converting", None)
        if cached is None or cached[0] is not connection:
            compiler = compiled.query.get_compiler(connection=connection)
            cached = (connection, compiler, compiler.get_converters(compiled.columns))
            self._local.converting = cached
        return cached[1], cached[2]

    def _for(self, connection: Any) -> _Compiled:
        with self._lock:
            if self._compiled is None:
                self._compiled = self._compile(connection)
            return self._compiled

    def field_names(self) -> tuple[str, ...]:
        """The attribute name of each selected column, in the order of a row."""
        return (self._compiled or self._for(connections[self._using])).field_names

    def rows(self, *params: Any) -> list[tuple[Any, ...]]:
        """The rows, converted as ``values_list`` would convert them."""
        return self.convert(self.fetch(*params))

    def instances(self, *params: Any) -> list[M]:
        """The rows as model instances (the selected fields loaded, the others deferred)."""
        return self.instances_from(self.fetch(*params))

    def fetch(self, *params: Any) -> list[tuple[Any, ...]]:
        """The rows as the database driver returns them (no conversion): for a caller that compares rows and
        converts only some of them (``convert``, ``instances_from``)."""
        if len(params) != len(self._samples):
            raise TypeError(f"expected {len(self._samples)} parameters, got {len(params)}")
        connection = connections[self._using]
        compiled = self._compiled or self._for(connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, self._parameters(connection, params))
            return [tuple(row) for row in cursor.fetchall()]

    def convert(self, fetched: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows from ``fetch`` converted with the converters Django applies on this thread's connection."""
        connection = connections[self._using]
        compiled = self._compiled or self._for(connection)
        compiler, converters = self._converting(connection, compiled)
        if converters:
            return [tuple(row) for row in compiler.apply_converters(fetched, converters)]
        return list(fetched)

    def instances_from(self, fetched: Sequence[tuple[Any, ...]]) -> list[M]:
        """Rows from ``fetch`` as model instances."""
        rows = self.convert(fetched)
        compiled = self._compiled
        assert self._model is not None
        assert compiled is not None
        return [self._model.from_db(self._using, compiled.field_names, row) for row in rows]
