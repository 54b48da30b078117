"""What the apps' database triggers share (``adapters``, ``analytics``, ``recommendations``: each app's
``db_triggers`` module holds its own SQL): running an app's statements once its tables exist, and again after every
``migrate``. SQLite drops a table's triggers whenever a migration rebuilds the table, and ``flush`` (which sends
``post_migrate`` too) empties the tables that hold trigger-kept state, so no app trusts a migration that ran once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from typing import Any

from django.apps import AppConfig
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.signals import post_migrate


def statements_install(
    connection: BaseDatabaseWrapper,
    tables: Iterable[str],
    statements: Mapping[str, Callable[[], list[str]]],
    *,
    atomic: bool = False,
) -> None:
    """Execute ``statements[connection.vendor]()`` once every table of ``tables`` exists (a no-op before they do, and
    on a database without triggers here); with ``atomic``, in one transaction."""
    build = statements.get(connection.vendor)
    if build is None:
        return
    context = transaction.atomic(using=connection.alias) if atomic else nullcontext()
    with context, connection.cursor() as cursor:
        if not set(tables) <= set(connection.introspection.table_names(cursor)):
            return
        for statement in build():
            cursor.execute(statement)


def install_after_migrate(app_config: AppConfig, install: Callable[[BaseDatabaseWrapper], None]) -> None:
    """Run ``install`` on the database ``migrate`` (or ``flush``) just worked on, after every run for this app."""

    def receiver(sender: Any, using: str = "default", **kwargs: Any) -> None:
        install(connections[using])

    post_migrate.connect(receiver, sender=app_config, weak=False, dispatch_uid=f"{app_config.label}.db_triggers")
