"""The ASGI application: HTTP (Django), WebSocket (Channels) and the lifespan of the server.

A real ASGI server sends ``lifespan.startup``: that is how the process knows it is the server,
and when ``LORAFORGE_EMBEDDED_WORKER=auto`` and no ``REDIS_URL`` is set it starts the embedded
Celery worker then (``loraforge.lifespan``).

HTTP is served by Django's WSGI handler on a fixed pool of ``LORAFORGE_HTTP_THREADS`` threads
(``loraforge.wsgi_pool``): the middleware chain runs synchronously, once, in a long-lived thread that keeps its
database connection, instead of being adapted between async and sync several times per request on a new thread
(what made a request that does no work cost 4 ms); a request and its response cross between the event loop and the
thread once each way. The two endpoints that wait for a generation on the event loop (``waiting_view``) keep
Django's ASGI handler, so a waiting client never holds a pool thread. WebSockets stay with Channels.

Run it with ``uvicorn loraforge.asgi:application --lifespan on`` (``make run``).
"""

from __future__ import annotations

import os
import re
from typing import Any, cast

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loraforge.settings")
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from loraforge.lifespan import handle_lifespan  # noqa: E402
from loraforge.memory import limit_malloc_arenas  # noqa: E402
from loraforge.routing import websocket_urlpatterns  # noqa: E402
from loraforge.wsgi_pool import WsgiPool  # noqa: E402

limit_malloc_arenas()  # before the HTTP pool and the embedded worker start their threads

# Served by Django's ASGI handler: the views that await a generation (generation.jobs.views.waiting_view).
EVENT_LOOP_PATHS = re.compile(r"^/(?:api/)?v1/generation/(?:generate|compose-and-generate)/?$")
django_wsgi = WsgiPool(cast(Any, get_wsgi_application()), threads=settings.LORAFORGE_HTTP_THREADS)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    handler = django_asgi if EVENT_LOOP_PATHS.match(scope["path"]) else django_wsgi
    await handler(scope, receive, send)


router = ProtocolTypeRouter({"http": http, "websocket": URLRouter(websocket_urlpatterns)})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await handle_lifespan(receive, send)
        return
    await router(scope, receive, send)
