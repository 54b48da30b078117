"""WebSocket routes (SPEC 6.5)."""

from __future__ import annotations

from django.urls import re_path

from loraforge.consumers import ProgressConsumer

websocket_urlpatterns = [
    re_path(r"^(?:api/)?v1/ws/progress/?$", ProgressConsumer.as_asgi()),
]
