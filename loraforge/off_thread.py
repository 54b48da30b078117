"""Database work from async code in a pool thread that gives its connection back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")


def in_own_connection(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``function`` as a coroutine run in a pool thread (``thread_sensitive=False``: never behind the thread that
    serves sync views), whose database connection is closed after each call. A pool thread outlives the call, so
    without the close it would keep a connection (a pooled one stays checked out) for as long as the thread lives."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)
