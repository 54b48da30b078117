"""The one heartbeat thread: calls ``tick()`` every ``interval`` seconds while a blocking step runs (a long
file hash, a slow HTTP delivery, an SDNext generation), so a live job never looks orphaned to recovery."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

logger = logging.getLogger("loraforge.jobs")


class Ticker:
    """``with Ticker(tick, interval=5, name=...):``. ``tick()`` returns False to stop early (the job left
    ``running``); an exception in it is logged and the ticking goes on. The thread's own database connection is
    closed when it ends; leaving the block waits for it at most ``join_timeout`` seconds."""

    def __init__(
        self,
        tick: Callable[[], bool | None],
        *,
        interval: float,
        name: str,
        join_timeout: float | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self._tick = tick
        self._interval = interval
        self._join_timeout = interval + 1 if join_timeout is None else join_timeout
        self._on_stop = on_stop
        self.halted = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.halted.set()
        self._thread.join(self._join_timeout)

    def _run(self) -> None:
        try:
            while not self.halted.wait(self._interval):
                try:
                    if self._tick() is False:
                        return
                except Exception:
                    logger.warning("A tick of %s failed", self._thread.name, exc_info=True)
        finally:
            if self._on_stop is not None:
                self._on_stop()
            connection.close()
