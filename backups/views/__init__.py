"""The backups app's API views (SPEC 5.9): exports, imports, backups; each module lists its own routes."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver


def backup_routes() -> list[URLPattern | URLResolver]:
    from backups.views import backups, exports, imports

    return [*exports.routes(), *imports.routes(), *backups.routes()]
