"""System checks and start-up warnings of the project package."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register


@register()
def auth_disabled_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if settings.LORAFORGE_AUTH:
        return []
    return [
        Warning(
            "LORAFORGE_AUTH=off: the API, WebSocket, media and dashboard are open to anyone who can reach them.",
            hint="Use this only on a trusted machine.",
            id="loraforge.W001",
        )
    ]
