"""Hot read queries compiled by the ORM once, then run with new parameters (issue 9's profile: compiling a simple
filter costs the request path several times what SQLite takes to answer it).

``PreparedQuery(build, *samples)``: ``build(*params)`` returns the queryset for some parameters. It is built and
compiled once per process with the samples (on the first connection that runs it: one alias has one SQL); the SQL
must carry exactly the samples as its parameters, in order (checked, so a lookup whose parameter Django would
transform is refused at the first run instead of answering wrongly). A run executes that SQL on the running thread's
connection with new parameters and converts the rows with the converters Django applies on that connection;
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
from django.db.models import Model, QuerySet
from django.db.models.sql import Query

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    query: Query  # the compiled query, for the converters of the connection that runs it
    columns: list[Any]
    field_names: tuple[str, ...]


class PreparedQuery(Generic[M]):
    def __init__(self, build: Callable[..., QuerySet[M, Any]], *samples: str, using: str = "default") -> None:
        self._build = build
        self._samples = samples
        self._using = using
        self._model: type[M] | None = None
        self._lock = threading.Lock()
        self._compiled: _Compiled | None = None  # nothing here refers to a connection: none is kept alive

    def _compile(self, connection: Any) -> _Compiled:
        queryset = self._build(*self._samples)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        if tuple(params) != self._samples:
            raise ValueError(f"a prepared query must carry its parameters unchanged: {params!r} != {self._samples!r}")
        columns = [expression for expression, _sql, _alias in compiler.select]
        self._model = queryset.model
        names = tuple(getattr(getattr(column, "target", None), "attname", "") for column in columns)
        return _Compiled(sql, queryset.query, columns, names)

    def _for(self, connection: Any) -> _Compiled:
        with self._lock:
            if self._compiled is None:
                self._compiled = self._compile(connection)
            return self._compiled

    def field_names(self) -> tuple[str, ...]:
        """The attribute name of each selected column, in the order of a row."""
        return (self._compiled or self._for(connections[self._using])).field_names

    def rows(self, *params: str) -> list[tuple[Any, ...]]:
        """The rows, converted as ``values_list`` would convert them."""
        return self.convert(self.fetch(*params))

    def instances(self, *params: str) -> list[M]:
        """The rows as model instances (the selected fields loaded, the others deferred)."""
        return self.instances_from(self.fetch(*params))

    def fetch(self, *params: str) -> list[tuple[Any, ...]]:
        """The rows as the database driver returns them (no conversion): for a caller that compares rows and
        converts only some of them (``convert``, ``instances_from``)."""
        if len(params) != len(self._samples):
            raise TypeError(f"expected {len(self._samples)} parameters, got {len(params)}")
        connection = connections[self._using]
        compiled = self._compiled or self._for(connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, list(params))
            return [tuple(row) for row in cursor.fetchall()]

    def convert(self, fetched: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows from ``fetch`` converted with the converters Django applies on this thread's connection."""
        connection = connections[self._using]
        compiled = self._compiled or self._for(connection)
        compiler = compiled.query.get_compiler(connection=connection)
        converters = compiler.get_converters(compiled.columns)
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
