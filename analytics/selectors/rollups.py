"""Exact aggregates of generation jobs over any time range, read from the rollups (``analytics.models``) for the whole
hours (or days) inside it and from the jobs themselves only for its partial first and last hour."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, IntegerField, Max, Q, Sum, Value, When

from analytics.models import AdapterDayRollup, AdapterHourRollup, JobErrorHourRollup, JobHourRollup
from analytics.windows import ceil_hour, floor_day, floor_hour, utc
from deliveries.models import DeliveryJob, DeliveryJobAdapter, DeliveryKind
from loraforge.models.jobs import JobStatus

MICROSECOND = timedelta(microseconds=1)
UNKNOWN_ERROR = "unknown"


@dataclass
class JobTotals:
    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    duration_us: int = 0
    duration_count: int = 0

    def add(self, other: JobTotals) -> None:
        self.total += other.total
        self.pending += other.pending
        self.running += other.running
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.duration_us += other.duration_us
        self.duration_count += other.duration_count

    @property
    def finished(self) -> int:
        """Jobs that count for the success rate (succeeded + failed)."""
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return round(100 * self.succeeded / self.finished, 2) if self.finished else None

    @property
    def mean_seconds(self) -> float | None:
        return self.duration_us / self.duration_count / 1_000_000 if self.duration_count else None


def summed(parts: Iterable[JobTotals]) -> JobTotals:
    total = JobTotals()
    for part in parts:
        total.add(part)
    return total


def time_improvement(current: JobTotals, previous: JobTotals) -> float | None:
    """``-100 (cur_avg - prev_avg) / prev_avg`` rounded to 2 decimals (positive = faster); null when either mean is
    undefined (or the previous one is 0)."""
    now, before = current.mean_seconds, previous.mean_seconds
    if now is None or not before:
        return None
    return round(-100 * (now - before) / before, 2)


@dataclass(frozen=True)
class Span:
    """``[start, end)``, or ``[start, end]`` when ``closed`` (a window ends at ``now``, inclusive)."""

    start: datetime
    end: datetime
    closed: bool = False

    def q(self, prefix: str = "") -> Q:
        upper = f"{prefix}created_at__{'lte' if self.closed else 'lt'}"
        return Q(**{f"{prefix}created_at__gte": self.start, upper: self.end})


def split(span: Span) -> tuple[list[Span], datetime, datetime]:
    """The partial-hour edges of ``span`` (read from the jobs) and the whole hours ``[first, last)`` between them."""
    first, last = ceil_hour(span.start), floor_hour(span.end)
    if first >= last:
        return [span], first, first
    edges = []
    if span.start < first:
        edges.append(Span(span.start, first))
    if last < span.end or span.closed:
        edges.append(Span(last, span.end, span.closed))
    return edges, first, last


# --- job totals ------------------------------------------------------------------------------------------------------

_TOTAL_FIELDS = [field.name for field in fields(JobTotals)]
_DURATION = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
_TIMED = Q(status=JobStatus.SUCCEEDED, started_at__isnull=False, finished_at__isnull=False)


def _any(edges: list[Span], prefix: str = "") -> Q:
    condition = Q()
    for edge in edges:
        condition |= edge.q(prefix)
    return condition


def _edge_totals(edges: list[Span]) -> list[JobTotals]:
    """Totals of each edge span, in one query over the jobs grouped by (edge, status)."""
    if not edges:
        return []
    edge = Case(*(When(span.q(), then=Value(index)) for index, span in enumerate(edges)), output_field=IntegerField())
    rows = (
        DeliveryJob.objects.filter(_any(edges), kind=DeliveryKind.GENERATION)
        .annotate(edge=edge)
        .order_by()
        .values("edge", "status")
        .annotate(n=Count("pk"), duration=Sum(_DURATION, filter=_TIMED), timed=Count("pk", filter=_TIMED))
    )
    totals = [JobTotals() for _ in edges]
    for row in rows:
        duration = row["duration"] or 0
        part = JobTotals(
            total=row["n"],
            duration_us=duration // MICROSECOND if isinstance(duration, timedelta) else int(duration),
            duration_count=row["timed"],
        )
        if row["status"] in JobStatus.values:
            setattr(part, row["status"], row["n"])
        totals[row["edge"]].add(part)
    return totals


def job_totals(spans: Iterable[Span], bucket_of: Callable[[datetime], datetime]) -> list[dict[datetime, JobTotals]]:
    """Per span, its jobs' totals per bucket (``bucket_of`` maps an hour to its bucket): one rollup query over the
    whole hours of all spans and one query over the jobs of their partial hours."""
    spans = list(spans)
    pieces = [split(span) for span in spans]
    edges = [edge for edge_list, _, _ in pieces for edge in edge_list]
    hours = [(first, last) for _, first, last in pieces]
    result: list[dict[datetime, JobTotals]] = [defaultdict(JobTotals) for _ in spans]
    if any(first < last for first, last in hours):
        rows = JobHourRollup.objects.filter(bucket__gte=min(h[0] for h in hours), bucket__lt=max(h[1] for h in hours))
        for bucket, *counts in rows.values_list("bucket", *_TOTAL_FIELDS):
            hour = utc(bucket)
            for index, (first, last) in enumerate(hours):
                if first <= hour < last:
                    result[index][bucket_of(hour)].add(JobTotals(*counts))
    edge_totals = iter(_edge_totals(edges))
    for index, (edge_list, _, _) in enumerate(pieces):
        for edge in edge_list:
            result[index][bucket_of(floor_hour(edge.start))].add(next(edge_totals))
    return result


# --- errors ---------------------------------------------------------------------------------------------------------


@dataclass
class ErrorText:
    count: int
    last_created_at: datetime | None


ErrorGroups = dict[str, dict[str | None, ErrorText]]


def _add_error(groups: ErrorGroups, code: str, error: str | None, count: int, newest: datetime | None) -> None:
    known = groups[code].get(error)
    if known is None:
        groups[code][error] = ErrorText(count, newest)
        return
    known.count += count
    if newest is not None and (known.last_created_at is None or newest > known.last_created_at):
        known.last_created_at = newest


def error_texts(span: Span) -> ErrorGroups:
    """Failed generation jobs of ``span``: per error code (null → ``unknown``), per error text, the count and the
    newest ``created_at``."""
    edges, first, last = split(span)
    groups: ErrorGroups = defaultdict(dict)
    if first < last:
        rows = JobErrorHourRollup.objects.filter(bucket__gte=first, bucket__lt=last, count__gt=0)
        summed = rows.values("error_code", "error_key", "error").annotate(n=Sum("count"), newest=Max("last_created_at"))
        for row in summed:
            _add_error(groups, row["error_code"], row["error"], int(row["n"]), row["newest"])
    if edges:
        failures = DeliveryJob.objects.filter(_any(edges), kind=DeliveryKind.GENERATION, status=JobStatus.FAILED)
        for failure in failures.values("error_code", "error").annotate(n=Count("pk"), newest=Max("created_at")):
            code = failure["error_code"]
            _add_error(
                groups, UNKNOWN_ERROR if code is None else code, failure["error"], failure["n"], failure["newest"]
            )
    return groups


# --- adapter usage --------------------------------------------------------------------------------------------------


@dataclass
class AdapterTotals:
    total: int = 0
    succeeded: int = 0
    failed: int = 0

    def add(self, total: int, succeeded: int, failed: int) -> None:
        self.total += total
        self.succeeded += succeeded
        self.failed += failed


def _summed(queryset: Any) -> Iterable[dict[str, Any]]:
    return queryset.values("adapter_id").annotate(t=Sum("total"), s=Sum("succeeded"), f=Sum("failed"))


def adapter_totals(span: Span, *, whole_days: bool) -> dict[Any, AdapterTotals]:
    """Per adapter id, the generation jobs of ``span`` linked to it (each job once): whole days from the day
    rollup (when ``whole_days``: ``span.start`` is a midnight), whole hours from the hour rollup, partial hours from
    the jobs."""
    edges, first, last = split(span)
    usage: dict[Any, AdapterTotals] = defaultdict(AdapterTotals)
    hours_from = first
    if whole_days and first < last:
        days_end = max(first, floor_day(last))
        if first < days_end:
            days = AdapterDayRollup.objects.filter(bucket__gte=first.date(), bucket__lt=days_end.date(), total__gt=0)
            for row in _summed(days):
                usage[row["adapter_id"]].add(int(row["t"]), int(row["s"]), int(row["f"]))
        hours_from = days_end
    if hours_from < last:
        hours = AdapterHourRollup.objects.filter(bucket__gte=hours_from, bucket__lt=last, total__gt=0)
        for row in _summed(hours):
            usage[row["adapter_id"]].add(int(row["t"]), int(row["s"]), int(row["f"]))
    if edges:
        _add_edge_links(usage, edges)
    return usage


def _add_edge_links(usage: dict[Any, AdapterTotals], edges: list[Span]) -> None:
    """Links of the generation jobs of the partial hours, each job once per adapter, counted in the database."""
    links = DeliveryJobAdapter.objects.filter(_any(edges, "job__"))
    counted = (
        links.filter(job__kind=DeliveryKind.GENERATION, adapter__isnull=False)
        .order_by()
        .values("adapter_id")
        .annotate(
            t=Count("job_id", distinct=True),
            s=Count("job_id", distinct=True, filter=Q(job__status=JobStatus.SUCCEEDED)),
            f=Count("job_id", distinct=True, filter=Q(job__status=JobStatus.FAILED)),
        )
    )
    for row in counted:
        usage[row["adapter_id"]].add(row["t"], row["s"], row["f"])
