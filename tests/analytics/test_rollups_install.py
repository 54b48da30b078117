"""The analytics triggers are back after every migrate, even when something dropped them (a SQLite table rebuild)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from analytics.db_triggers import uninstall
from analytics.models import JobHourRollup
from tests.analytics.report_jobs import NOW, make_job

pytestmark = pytest.mark.django_db(transaction=True)


def _analytics_triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'analytics_%'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'analytics_%' AND NOT tgisinternal")
        return {row[0] for row in cursor.fetchall()}


def test_migrate_puts_back_dropped_triggers():
    installed = _analytics_triggers()
    assert len(installed) == (6 if connection.vendor == "sqlite" else 8)
    uninstall(connection)
    assert _analytics_triggers() == set()
    call_command("migrate", verbosity=0)
    assert _analytics_triggers() == installed
    make_job(NOW, "succeeded")
    assert JobHourRollup.objects.get().total == 1
