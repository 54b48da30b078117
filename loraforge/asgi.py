"""The ASGI application: HTTP (Django), WebSocket (Channels) and the lifespan of the server.

A real ASGI server sends ``lifespan.startup``: that is how the process knows it is the server,
and when ``LORAFORGE_EMBEDDED_WORKER=auto`` and no ``REDIS_URL`` is set it starts the embedded
Celery worker then (``loraforge.lifespan``).

Run it with ``uvicorn loraforge.asgi:application --lifespan on`` (``make run``).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loraforge.settings")
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from loraforge.lifespan import handle_lifespan  # noqa: E402
from loraforge.routing import websocket_urlpatterns  # noqa: E402

router = ProtocolTypeRouter({"http": django_asgi, "websocket": URLRouter(websocket_urlpatterns)})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    await router(scope, receive, send)
