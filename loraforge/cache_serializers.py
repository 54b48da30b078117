"""JSON instead of pickle for values LoRAForge keeps in Redis: nothing read back from Redis is unpickled."""

from __future__ import annotations

import json
from typing import Any


class JSONSerializer:
    """The serializer interface of Django's Redis cache client (``dumps``/``loads``)."""

    def dumps(self, obj: Any) -> bytes | int:
        if isinstance(obj, int) and not isinstance(obj, bool):
            return obj  # stored raw, so Redis INCR/DECR work
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")

    def loads(self, data: bytes | int) -> Any:
        if isinstance(data, int):
            return data
        return json.loads(data)
