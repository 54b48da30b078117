"""The insight rules of SPEC 6.8, evaluated in the table's order; descriptions state the numbers."""

from __future__ import annotations

from typing import Any

from analytics.selectors.rollups import JobTotals, time_improvement

MIN_FINISHED = 5
DECLINE_POINTS = 10
LOW_SUCCESS_RATE = 90
REGRESSION_PERCENT = -20
FREQUENT_ERROR_MIN_FAILURES = 3
FREQUENT_ERROR_SHARE = 25
EMBEDDINGS_MIN_COVERAGE = 50
RANGE_WORDS = {"24h": "the last 24 hours", "7d": "the last 7 days", "30d": "the last 30 days"}


def _insight(
    insight_id: str, title: str, description: str, severity: str, recommendation: str | None
) -> dict[str, Any]:
    return {
        "id": insight_id,
        "title": title,
        "description": description,
        "severity": severity,
        "recommendation": recommendation,
    }


def _declining(current: JobTotals, previous: JobTotals) -> dict[str, Any] | None:
    if current.finished < MIN_FINISHED or previous.finished < MIN_FINISHED:
        return None
    now_rate, before = current.success_rate, previous.success_rate
    if now_rate is None or before is None or before - now_rate <= DECLINE_POINTS:
        return None
    return _insight(
        "insight-declining-success-rate", "Declining success rate",
        f"Success rate fell from {before:.2f}% to {now_rate:.2f}% compared with the previous period.",
        "high", "review_failed_jobs",
    )  # fmt: skip


def _low(current: JobTotals) -> dict[str, Any] | None:
    rate = current.success_rate
    if current.finished < MIN_FINISHED or rate is None or rate >= LOW_SUCCESS_RATE:
        return None
    return _insight(
        "insight-low-success-rate", "Low success rate",
        f"Success rate is {rate:.2f}%: {current.failed} of {current.finished} finished generations failed.",
        "medium", "review_failed_jobs",
    )  # fmt: skip


def _regression(current: JobTotals, previous: JobTotals) -> dict[str, Any] | None:
    if current.succeeded < MIN_FINISHED or previous.succeeded < MIN_FINISHED:
        return None
    improvement = time_improvement(current, previous)
    if improvement is None or improvement > REGRESSION_PERCENT:
        return None
    return _insight(
        "insight-time-regression", "Generation time regression",
        f"Average generation time rose from {previous.mean_seconds:.2f} s to {current.mean_seconds:.2f} s "
        f"({-improvement:.2f}% slower) compared with the previous period.",
        "medium", "investigate_performance",
    )  # fmt: skip


def _frequent_error(current: JobTotals, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    if current.failed < FREQUENT_ERROR_MIN_FAILURES or not errors:
        return None
    top = errors[0]
    share = 100 * top["count"] / current.failed
    if share < FREQUENT_ERROR_SHARE:
        return None
    return _insight(
        "insight-frequent-error", f"Frequent error: {top['type']}",
        f"{top['count']} of {current.failed} failures ({share:.2f}%) were {top['type']}"
        + (f": {top['description']}" if top["description"] else "."),
        "medium", "analyse_error_trends",
    )  # fmt: skip


def _unavailable_backends() -> list[dict[str, Any]]:
    from generation.models import GenerationBackend

    backends = GenerationBackend.objects.filter(enabled=True, healthy=False).order_by("name")
    return [
        _insight(
            f"insight-backend-unavailable-{backend.name}",
            f"Generation backend unavailable: {backend.name}",
            f"Backend '{backend.name}' is unreachable: {backend.last_error or 'no reason recorded'}.",
            "high",
            "check_backend",
        )
        for backend in backends.only("name", "last_error")
    ]


def _no_activity(current: JobTotals, time_range: str) -> dict[str, Any] | None:
    if current.total:
        return None
    return _insight(
        "insight-no-activity", "No generations in this period",
        f"0 generation jobs were created in {RANGE_WORDS[time_range]}.", "low", None,
    )  # fmt: skip


def _embeddings_incomplete() -> dict[str, Any] | None:
    from recommendations.encoder import semantic_available
    from recommendations.selectors import embedding_coverage

    if not semantic_available():
        return None
    current, total = embedding_coverage()
    if total == 0 or 100 * current / total >= EMBEDDINGS_MIN_COVERAGE:
        return None
    return _insight(
        "insight-embeddings-incomplete", "Embeddings incomplete",
        f"{current} of {total} adapters ({100 * current / total:.2f}%) have a current embedding.",
        "low", "compute_embeddings",
    )  # fmt: skip


def _stable(current: JobTotals, time_range: str) -> dict[str, Any]:
    rate = current.success_rate
    outcome = f"a {rate:.2f}% success rate" if rate is not None else "none finished yet"
    return _insight(
        "insight-stable", "Stable performance",
        f"{current.total} generation jobs in {RANGE_WORDS[time_range]}, {outcome}.", "low", None,
    )  # fmt: skip


def insights(
    *, current: JobTotals, previous: JobTotals, errors: list[dict[str, Any]], time_range: str
) -> list[dict[str, Any]]:
    declining = _declining(current, previous)
    first_five = [
        declining,
        None if declining else _low(current),
        _regression(current, previous),
        _frequent_error(current, errors),
    ]
    found = [insight for insight in first_five if insight is not None] + _unavailable_backends()
    fired_early = bool(found)
    for insight in (_no_activity(current, time_range), _embeddings_incomplete()):
        if insight is not None:
            found.append(insight)
    if not fired_early and current.total:
        found.append(_stable(current, time_range))
    return found
