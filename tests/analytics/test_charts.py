"""The dashboard's server-drawn charts (SPEC 9.2): geometry from ``chart_data`` dicts shaped like the API's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics import charts

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def hourly(counts: list[int]) -> list[dict]:
    return [
        {"timestamp": START + timedelta(hours=index), "count": count, "succeeded": count, "failed": 0}
        for index, count in enumerate(counts)
    ]


def test_iso_z_writes_utc_with_a_z_suffix():
    assert charts.iso_z(datetime(2026, 3, 1, 13, 0, tzinfo=UTC)) == "2026-03-01T13:00:00Z"
    assert charts.iso_z("2026-03-01T13:00:00Z") == "2026-03-01T13:00:00Z"


def test_volume_chart_has_one_bar_per_bucket_with_its_start_and_count():
    chart = charts.volume_chart(hourly([0, 2, 4]), "24h")

    assert [(bar.bucket, bar.count) for bar in chart.bars] == [
        ("2026-03-01T00:00:00Z", 0),
        ("2026-03-01T01:00:00Z", 2),
        ("2026-03-01T02:00:00Z", 4),
    ]


def test_volume_bar_heights_are_proportional_and_zero_for_an_empty_bucket():
    chart = charts.volume_chart(hourly([0, 2, 4]), "24h")

    heights = [bar.height for bar in chart.bars]
    assert heights == [0.0, charts.PLOT_HEIGHT / 2, charts.PLOT_HEIGHT]
    assert all(bar.y + bar.height == charts.BASELINE for bar in chart.bars)


def test_volume_chart_of_an_empty_window_draws_every_bar_flat():
    chart = charts.volume_chart(hourly([0] * 24), "24h")

    assert len(chart.bars) == 24
    assert {bar.height for bar in chart.bars} == {0.0}


def test_volume_bars_share_the_plot_width_without_overlapping():
    chart = charts.volume_chart(hourly([1] * 24), "24h")

    assert chart.bars[0].x >= charts.LEFT
    assert chart.bars[-1].x + chart.bars[-1].width <= chart.right
    assert all(left.x + left.width < right.x for left, right in zip(chart.bars, chart.bars[1:], strict=False))


def test_time_chart_labels_hours_for_24h_and_days_otherwise():
    assert charts.volume_chart(hourly([1] * 24), "24h").x_labels[0].text == "00:00"
    assert charts.volume_chart(hourly([1] * 7), "7d").x_labels[0].text == "Mar 01"


def test_success_chart_has_a_point_only_for_buckets_with_finished_jobs():
    performance = [
        {"timestamp": START, "avg_time": 2.0, "success_rate": 100.0},
        {"timestamp": START + timedelta(hours=1), "avg_time": None, "success_rate": None},
        {"timestamp": START + timedelta(hours=2), "avg_time": 3.0, "success_rate": 66.67},
    ]

    chart = charts.success_chart(performance, "24h")

    assert [(point.bucket, point.value) for point in chart.points] == [
        ("2026-03-01T00:00:00Z", "100.00"),
        ("2026-03-01T02:00:00Z", "66.67"),
    ]
    assert chart.points[0].y == charts.TOP
    assert chart.polyline == " ".join(f"{point.x},{point.y}" for point in chart.points)


def test_success_chart_without_finished_jobs_has_no_points_and_an_empty_line():
    performance = [{"timestamp": START, "avg_time": None, "success_rate": None}]

    chart = charts.success_chart(performance, "24h")

    assert (chart.points, chart.polyline) == ([], "")


def test_top_loras_chart_keeps_ten_adapters_by_count_with_proportional_widths():
    usage = [
        {"adapter_id": f"id-{index}", "name": f"LoRA {index}", "count": index + 1, "success_rate": None}
        for index in range(12)
    ]

    chart = charts.top_loras_chart(usage)

    assert [bar.count for bar in chart.bars] == list(range(12, 2, -1))
    assert chart.bars[0].adapter_id == "id-11"
    assert chart.bars[0].width / chart.bars[-1].width == 12 / 3


def test_top_loras_chart_shortens_long_names_for_the_label_only():
    usage = [{"adapter_id": "a", "name": "A really quite long adapter name", "count": 1, "success_rate": 50.0}]

    [bar] = charts.top_loras_chart(usage).bars

    assert bar.name == "A really quite long adapter name"
    assert len(bar.label) == charts.TOP_NAME_CHARS
    assert bar.label.endswith("…")
    assert bar.success_rate == "50.0%"


def test_top_loras_chart_of_no_usage_has_no_bars():
    assert charts.top_loras_chart([]).bars == []
