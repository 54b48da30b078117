"""Time-boxed probes: callables run in threads and waited for until one deadline (SPEC 5.10: the status answers
within 3 s whatever hangs). A probe that is not done by then answers its fallback; its thread ends on its own
(every probe has its own network timeouts) and is never waited for.

Only probes that touch no database run here: a thread has its own database connection, which would not see the
request's transaction and would outlive it. The database reads run in the request's thread meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

MAX_THREADS = 16


@dataclass(frozen=True)
class Probe:
    run: Callable[[], Any]
    fallback: Any  # the answer when the probe fails or is not done by the deadline


class ProbeRun:
    """Probes started now in a pool of threads; ``results`` waits until ``deadline`` (a ``time.monotonic`` value)."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self._probes = dict(probes)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(MAX_THREADS, len(self._probes))), thread_name_prefix="status"
        )
        self._futures: dict[str, Future[Any]] = {
            name: self._pool.submit(probe.run) for name, probe in self._probes.items()
        }

    def results(self, *, deadline: float) -> dict[str, Any]:
        wait(self._futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)
        return {name: self._result(name, future) for name, future in self._futures.items()}

    def _result(self, name: str, future: Future[Any]) -> Any:
        if not future.done() or future.cancelled() or future.exception() is not None:
            return self._probes[name].fallback
        return future.result()


def short_reason(exc: BaseException) -> str:
    """A short, secret-free reason for a failed connection (no exception text: it may carry a URL)."""
    text = str(exc).lower()
    if isinstance(exc, TimeoutError) or "timeout" in text or "timed out" in text:
        return "timeout"
    if "refused" in text:
        return "connection refused"
    return type(exc).__name__
