"""Time ranges become UTC buckets, a window ending at now and the previous window of the same span (SPEC 6.8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.windows import TIME_RANGE_INVALID, window_for
from tests.analytics.report_jobs import NOW


def test_24h_is_24_hourly_buckets_ending_with_the_current_hour():
    window = window_for("24h", NOW)
    assert len(window.buckets) == 24
    assert window.buckets[0] == datetime(2026, 3, 9, 13, tzinfo=UTC)
    assert window.buckets[-1] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert (window.start, window.end) == (window.buckets[0], NOW)
    assert window.previous_start == datetime(2026, 3, 8, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(("time_range", "days"), [("7d", 7), ("30d", 30)])
def test_daily_ranges_start_at_midnight(time_range, days):
    window = window_for(time_range, NOW)
    assert len(window.buckets) == days
    assert window.buckets[-1] == datetime(2026, 3, 10, tzinfo=UTC)
    assert window.buckets[0] == datetime(2026, 3, 10, tzinfo=UTC) - timedelta(days=days - 1)
    assert window.start - window.previous_start == NOW - window.start


def test_a_naive_or_offset_now_is_read_as_utc():
    offset = NOW.astimezone(datetime.now().astimezone().tzinfo)
    assert window_for("24h", offset).end == NOW
    assert window_for("24h", NOW.replace(tzinfo=None)).end == NOW


def test_unknown_range_is_refused():
    with pytest.raises(ValueError, match=TIME_RANGE_INVALID):
        window_for("1y", NOW)
