"""Analytics windows (SPEC 6.8): a time range becomes UTC buckets, a window and the previous window.

``24h`` = 24 hourly buckets starting at ``floor_hour(now) - 23 h``; ``7d``/``30d`` = 7/30 daily buckets starting at
midnight six/29 days ago. The window ends at ``now`` (inclusive); the previous window is the same span immediately
before ``window_start`` (end exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

TIME_RANGES = ("24h", "7d", "30d")
TIME_RANGE_INVALID = f"time_range must be one of: {', '.join(TIME_RANGES)}"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_SHAPES = {"24h": (24, HOUR), "7d": (7, DAY), "30d": (30, DAY)}


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + HOUR


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def utc(moment: datetime | None) -> datetime:
    """``moment`` (default: now) as an aware UTC datetime."""
    moment = moment or timezone.now()
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    time_range: str
    buckets: tuple[datetime, ...]
    step: timedelta
    start: datetime
    end: datetime
    previous_start: datetime

    @property
    def daily(self) -> bool:
        return self.step == DAY

    def bucket_of(self, moment: datetime) -> datetime:
        """The start of the bucket that holds ``moment`` (UTC)."""
        moment = utc(moment)
        return floor_day(moment) if self.daily else floor_hour(moment)


def window_for(time_range: str, now: datetime | None = None) -> Window:
    """The window of ``time_range`` at ``now``; ``ValueError(TIME_RANGE_INVALID)`` for an unknown range."""
    if time_range not in _SHAPES:
        raise ValueError(TIME_RANGE_INVALID)
    end = utc(now)
    count, step = _SHAPES[time_range]
    last = floor_day(end) if step == DAY else floor_hour(end)
    buckets = tuple(last - step * (count - 1 - index) for index in range(count))
    start = buckets[0]
    return Window(time_range, buckets, step, start, end, start - (end - start))
