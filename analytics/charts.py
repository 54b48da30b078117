"""Server-drawn SVG charts of the dashboard (SPEC 9.2): geometry from the analytics summary's ``chart_data``.

Pure functions of plain dicts (the bodies of ``GET /analytics/summary``), so they are tested without a database and
the template only writes out the numbers computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The viewBox of the time charts (the volume chart is wide, the success rate chart half as wide) and the margins
# of the plot area inside it (room for the axis labels).
VOLUME_WIDTH, SUCCESS_WIDTH, HEIGHT = 640, 360, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 26
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BASELINE = TOP + PLOT_HEIGHT
BAR_FILL = 0.72  # share of a bucket's slot its bar covers
X_LABEL_SPACING = 60  # viewBox units between two bucket labels under a time chart
# The top LoRAs chart: one row per adapter, names on the left.
TOP_WIDTH, TOP_LABEL, TOP_ROW, TOP_BAR = 360, 140, 26, 16
TOP_COUNT_ROOM = 36
TOP_NAME_CHARS = 20
TOP_LIMIT = 10


def iso_z(value: datetime | str) -> str:
    """A bucket start as the API writes it: ISO 8601 UTC with ``Z`` (strings are taken as already written)."""
    if isinstance(value, str):
        return value
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def bucket_label(value: datetime | str, time_range: str) -> str:
    """``14:00`` for hourly buckets, ``Dec 05`` for daily ones."""
    moment = _as_datetime(value)
    return moment.strftime("%H:%M") if time_range == "24h" else moment.strftime("%b %d")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    bucket: str
    count: int
    title: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    bucket: str
    value: str
    title: str


@dataclass(frozen=True)
class AxisLabel:
    x: float
    y: float
    text: str
    minor: bool = False  # every other bucket label: hidden where the chart is drawn small


@dataclass(frozen=True)
class TimeChart:
    width: int
    height: int
    baseline: float
    left: float
    right: float
    top: float
    bars: list[Bar]
    points: list[Point]
    polyline: str
    x_labels: list[AxisLabel]
    y_labels: list[AxisLabel]
    gridlines: list[float]

    @property
    def center(self) -> tuple[float, float]:
        """The middle of the plot area (where a "no data" note goes)."""
        return (self.left + self.right) / 2, self.top + PLOT_HEIGHT / 2


def _plot_width(width: int) -> int:
    return width - LEFT - RIGHT


@dataclass(frozen=True)
class LoraBar:
    y: float
    width: float
    label_y: float
    count_x: float
    adapter_id: str
    name: str
    label: str
    count: int
    success_rate: str


@dataclass(frozen=True)
class LoraChart:
    width: int
    height: int
    bar_x: int
    label_x: int
    bar_height: int
    bars: list[LoraBar]


def _slot(width: int, count: int) -> float:
    return _plot_width(width) / max(1, count)


def _x_labels(width: int, timestamps: list[Any], time_range: str) -> list[AxisLabel]:
    """Labels under every n-th bucket, spaced so they never overlap."""
    if not timestamps:
        return []
    slot = _slot(width, len(timestamps))
    step = max(1, -(-X_LABEL_SPACING // max(1, int(slot))))
    labelled = [(index, stamp) for index, stamp in enumerate(timestamps) if index % step == 0]
    return [
        AxisLabel(
            x=round(LEFT + slot * (index + 0.5), 2),
            y=HEIGHT - 8,
            text=bucket_label(stamp, time_range),
            minor=position % 2 == 1,
        )
        for position, (index, stamp) in enumerate(labelled)
    ]


def _frame(width: int, timestamps: list[Any], time_range: str, y_ticks: list[tuple[float, str]]) -> dict[str, Any]:
    """What both time charts share: size, plot edges, x labels and horizontal gridlines at ``y_ticks`` (0..1)."""
    return {
        "width": width,
        "height": HEIGHT,
        "baseline": BASELINE,
        "left": LEFT,
        "right": width - RIGHT,
        "top": TOP,
        "x_labels": _x_labels(width, timestamps, time_range),
        "y_labels": [
            AxisLabel(x=LEFT - 6, y=round(BASELINE - share * PLOT_HEIGHT + 4, 2), text=t) for share, t in y_ticks
        ],
        "gridlines": [round(BASELINE - share * PLOT_HEIGHT, 2) for share, _text in y_ticks],
    }


def volume_chart(volume: list[dict[str, Any]], time_range: str, width: int = VOLUME_WIDTH) -> TimeChart:
    """One bar per bucket of ``chart_data.generation_volume``; heights proportional to ``count`` (0 → height 0)."""
    peak = max((int(bucket["count"]) for bucket in volume), default=0)
    slot = _slot(width, len(volume))
    bar_width = round(slot * BAR_FILL, 2)
    bars = []
    for index, bucket in enumerate(volume):
        count = int(bucket["count"])
        height = round(PLOT_HEIGHT * count / peak, 2) if peak else 0.0
        bars.append(
            Bar(
                x=round(LEFT + slot * index + (slot - bar_width) / 2, 2),
                y=round(BASELINE - height, 2),
                width=bar_width,
                height=height,
                bucket=iso_z(bucket["timestamp"]),
                count=count,
                title=f"{bucket_label(bucket['timestamp'], time_range)}: {count} generation{'' if count == 1 else 's'}",
            )
        )
    ticks = [(0.0, "0")] if not peak else [(0.0, "0"), (0.5, _half(peak)), (1.0, str(peak))]
    stamps = [bucket["timestamp"] for bucket in volume]
    return TimeChart(bars=bars, points=[], polyline="", **_frame(width, stamps, time_range, ticks))


def _half(peak: int) -> str:
    half = peak / 2
    return str(int(half)) if half == int(half) else f"{half:.1f}"


def success_chart(performance: list[dict[str, Any]], time_range: str, width: int = SUCCESS_WIDTH) -> TimeChart:
    """One point per bucket of ``chart_data.performance`` that has a success rate (finished jobs), joined by a line;
    the y axis is 0..100 %."""
    slot = _slot(width, len(performance))
    points = []
    for index, bucket in enumerate(performance):
        rate = bucket.get("success_rate")
        if rate is None:
            continue
        value = f"{float(rate):.2f}"
        points.append(
            Point(
                x=round(LEFT + slot * (index + 0.5), 2),
                y=round(BASELINE - PLOT_HEIGHT * float(rate) / 100, 2),
                bucket=iso_z(bucket["timestamp"]),
                value=value,
                title=f"{bucket_label(bucket['timestamp'], time_range)}: {value}% succeeded",
            )
        )
    polyline = " ".join(f"{point.x},{point.y}" for point in points)
    ticks = [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")]
    stamps = [bucket["timestamp"] for bucket in performance]
    return TimeChart(bars=[], points=points, polyline=polyline, **_frame(width, stamps, time_range, ticks))


def top_loras_chart(usage: list[dict[str, Any]]) -> LoraChart:
    """Horizontal bars for ``chart_data.lora_usage`` (at most 10, by count desc as the API orders them)."""
    rows = sorted(usage, key=lambda row: -int(row["count"]))[:TOP_LIMIT]
    peak = max((int(row["count"]) for row in rows), default=0)
    room = TOP_WIDTH - TOP_LABEL - TOP_COUNT_ROOM
    bars = []
    for index, row in enumerate(rows):
        count = int(row["count"])
        rate = row.get("success_rate")
        width = round(room * count / peak, 2) if peak else 0.0
        bars.append(
            LoraBar(
                y=index * TOP_ROW + (TOP_ROW - TOP_BAR) / 2,
                width=width,
                label_y=index * TOP_ROW + TOP_ROW / 2 + 4,
                count_x=round(TOP_LABEL + width + 6, 2),
                adapter_id=str(row["adapter_id"]),
                name=str(row["name"]),
                label=_shorten(str(row["name"]), TOP_NAME_CHARS),
                count=count,
                success_rate="—" if rate is None else f"{float(rate):.1f}%",
            )
        )
    height = max(1, len(rows)) * TOP_ROW
    return LoraChart(
        width=TOP_WIDTH, height=height, bar_x=TOP_LABEL, label_x=TOP_LABEL - 10, bar_height=TOP_BAR, bars=bars
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
