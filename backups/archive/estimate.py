"""How big an export will be and how long it takes (SPEC 5.9 ``/export/estimate``), and the queries that select
the rows of each part (shared with the writer, so the estimate counts what the archive holds).

Method: files count with their real size (``stat`` of every LoRA file, sidecar and preview that would be copied);
generated images with the ``size_bytes`` their result row recorded when the file was written (a ``SUM`` in SQL:
a million ``stat`` calls would make the estimate as slow as the export). Rows count exactly (``COUNT``); their
serialised size is the mean size of the records of a sample (the first ``SAMPLE`` rows in primary-key order,
serialised exactly as the archive writes them) times the count. Each member adds its ZIP headers and its
manifest entry. JSON members are counted uncompressed, so the estimate is an upper bound of the archive's size
(deflate makes JSON several times smaller) and exactly the bytes the progress of a write reports. Time is the size
at ``THROUGHPUT`` (50 MiB/s).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from django.db import models
from django.db.models import Sum

from adapters.models import Adapter
from adapters.scanner.paths import lora_roots
from backups.archive import format as fmt
from backups.archive.format import ArchiveOptions
from backups.archive.records import ADAPTER_DERIVED, BACKEND_PRIVATE, values_record

THROUGHPUT = 50 * 1024 * 1024  # bytes per second (SPEC 5.9)
SAMPLE = 100
PAGE = 500
# Local header + data descriptor + ZIP64 extra + central directory entry, without the name (written twice).
ZIP_MEMBER_OVERHEAD = 30 + 24 + 20 + 46 + 28
MANIFEST_ENTRY_OVERHEAD = 120  # {"path": ..., "size": ..., "sha256": "<64 hex>"} around the path
ESTIMATE_COUNT_KEYS = (
    "adapters", "lora_files", "embeddings", "generation_jobs", "generation_results", "resource_samples",
)  # fmt: skip
UNITS = ("Bytes", "KB", "MB", "GB", "TB")


@dataclass
class ArchiveEstimate:
    size_bytes: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def format_size(size: float) -> str:
    """``"0 Bytes"``, ``"512 Bytes"``, ``"1.50 MB"``: 1024-based units, bytes as an integer, others with two
    decimals (SPEC 5.9)."""
    if size <= 0:
        return "0 Bytes"
    exponent = min(int(math.log(size, 1024)), len(UNITS) - 1) if size >= 1 else 0
    if exponent == 0:
        return f"{int(size)} Bytes"
    return f"{size / 1024**exponent:.2f} {UNITS[exponent]}"


def format_duration(seconds: float) -> str:
    """``"0 seconds"``; under a minute ``ceil(s)`` seconds; else ``ceil(s/60)`` minutes; singular for 1."""
    if seconds <= 0:
        return "0 seconds"
    if seconds < 60:
        value, unit = math.ceil(seconds), "second"
    else:
        value, unit = math.ceil(seconds / 60), "minute"
    return f"{value} {unit}" if value == 1 else f"{value} {unit}s"


# --- what each part selects ------------------------------------------------------------------------------


def _bound(value: datetime | date | None, *, end: bool) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time.max if end else time.min, tzinfo=UTC)


def jobs_queryset(options: ArchiveOptions) -> models.QuerySet[Any]:
    from deliveries.models import DeliveryJob

    return DeliveryJob.objects.filter(**_created_range(options, "created_at"))


def results_queryset(options: ArchiveOptions) -> models.QuerySet[Any]:
    from generation.models import GenerationResult

    return GenerationResult.objects.filter(**_created_range(options, "job__created_at"))


def _created_range(options: ArchiveOptions, column: str) -> dict[str, datetime]:
    bounds: dict[str, datetime] = {}
    start, end = _bound(options.date_from, end=False), _bound(options.date_to, end=True)
    if start is not None:
        bounds[f"{column}__gte"] = start
    if end is not None:
        bounds[f"{column}__lte"] = end
    return bounds


def adapter_queryset(options: ArchiveOptions) -> models.QuerySet[Adapter]:
    queryset = Adapter.objects.all()
    if options.adapter_ids is not None:
        queryset = queryset.filter(pk__in=list(options.adapter_ids))
    return queryset


@dataclass(frozen=True)
class AdapterPaths:
    """The files of an adapter that an archive may copy: only paths inside a LoRA folder."""

    model: Path | None
    sidecars: tuple[Path, ...]
    preview: Path | None


class LoraFolders:
    """``value`` as a path inside a LoRA folder (symlinks followed, like ``adapters.scanner.paths.root_of``), or
    None. The real path of each folder holding a file is resolved once: an export of 100,000 adapters resolves a
    few folders instead of 300,000 paths component by component."""

    def __init__(self) -> None:
        self._roots = [os.path.realpath(root).rstrip(os.sep) + os.sep for root in lora_roots()]
        self._folders: dict[str, str] = {}

    def __call__(self, value: Any) -> Path | None:
        if not isinstance(value, str) or not value or "\x00" in value or not os.path.isabs(value):
            return None
        try:
            real = self._real(value)
        except (OSError, ValueError):
            return None
        inside = any(real.startswith(root) or real + os.sep == root for root in self._roots)
        return Path(value) if inside else None

    def _real(self, value: str) -> str:
        folder, name = os.path.split(value)
        if name in ("", ".", ".."):
            return os.path.realpath(value)
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = self._folders[folder] = os.path.realpath(folder)
        candidate = os.path.join(real_folder, name)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate


def adapter_file_paths(
    row: Mapping[str, Any], folders: LoraFolders, *, model: bool = True, metadata: bool = True
) -> AdapterPaths:
    """The paths (each checked against the LoRA folders, symlinks followed) of the LoRA file (``model``) and of
    the sidecars and preview (``metadata``); the others are not looked at."""
    model_path = folders(row.get("file_path")) if model else None
    if not metadata:
        return AdapterPaths(model=model_path, sidecars=(), preview=None)
    listed = [item.get("path") for item in row.get("sidecars") or [] if isinstance(item, dict)]
    candidates = dict.fromkeys(value for value in [*listed, row.get("json_file_path")] if value)
    sidecars = tuple(path for value in candidates if (path := folders(value)))
    return AdapterPaths(model=model_path, sidecars=sidecars, preview=folders(row.get("preview_path")))


# --- the estimate ----------------------------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.size = 0
        self.counts = dict.fromkeys(ESTIMATE_COUNT_KEYS, 0)

    def member(self, name_length: int, data_bytes: int) -> None:
        self.size += data_bytes + ZIP_MEMBER_OVERHEAD + 2 * name_length + MANIFEST_ENTRY_OVERHEAD + name_length

    def rows(self, name: str, queryset: models.QuerySet[Any], to_record: Callable[[dict[str, Any]], Any]) -> int:
        """A JSON Lines member of ``queryset``'s rows: count, and the mean size of a sample's lines times it."""
        count = queryset.count()
        sample = list(queryset.order_by("pk").values()[:SAMPLE])
        mean = sum(_line_size(to_record(row)) for row in sample) / len(sample) if sample else 0
        self.member(len(name), round(mean * count))
        return count


def _line_size(record: Any) -> int:
    return len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) + 1


def _file_size(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def archive_estimate(options: ArchiveOptions) -> ArchiveEstimate:
    tally = _Tally()
    if options.loras:
        _estimate_adapters(tally, options)
    if options.lora_embeddings:
        _estimate_embeddings(tally, options)
    if options.generations:
        _estimate_generations(tally, options)
    if options.user_data:
        from recommendations.models import RecommendationFeedback, RecommendationSession, UserPreference

        for name, model in ((fmt.SESSIONS, RecommendationSession), (fmt.FEEDBACK, RecommendationFeedback),
                            (fmt.PREFERENCES, UserPreference)):  # fmt: skip
            tally.rows(name, model.objects.all(), _plain(model))
    if options.analytics:
        from analytics.models import ResourceSample

        queryset = ResourceSample.objects.all()
        tally.counts["resource_samples"] = tally.rows(fmt.RESOURCE_SAMPLES, queryset, _plain(ResourceSample, {"id"}))
    if options.system_config:
        _estimate_backends(tally)
    tally.size += 1024  # manifest header fields, end of central directory
    return ArchiveEstimate(size_bytes=tally.size, seconds=tally.size / THROUGHPUT, counts=tally.counts)


def _plain(model: type[models.Model], exclude: Iterable[str] = ()) -> Callable[[dict[str, Any]], Any]:
    excluded = frozenset(exclude)
    return lambda row: values_record(model, row, exclude=excluded)


def _estimate_adapters(tally: _Tally, options: ArchiveOptions) -> None:
    queryset = adapter_queryset(options)
    count = queryset.count()
    tally.counts["adapters"] = count
    sample = list(queryset.order_by("pk").values()[:SAMPLE])
    if sample:
        extra = len(',"file_member":null,"sidecar_members":[],"preview_member":null')
        total = sum(_line_size(values_record(Adapter, row, exclude=ADAPTER_DERIVED)) + extra for row in sample)
        mean = total / len(sample)
        tally.size += round(mean * count) + count * (ZIP_MEMBER_OVERHEAD + MANIFEST_ENTRY_OVERHEAD + 3 * 60)
    if options.lora_files or options.lora_metadata:
        _estimate_adapter_files(tally, queryset, options)


def _estimate_adapter_files(tally: _Tally, queryset: models.QuerySet[Adapter], options: ArchiveOptions) -> None:
    fields = ("id", "file_path", "sidecars", "json_file_path", "preview_path")
    folders = LoraFolders()
    last: Any = None
    while True:
        page = queryset.order_by("pk") if last is None else queryset.order_by("pk").filter(pk__gt=last)
        rows = list(page.values(*fields)[:PAGE])
        if not rows:
            return
        last = rows[-1]["id"]
        for row in rows:
            paths = _AdapterFiles(row, options, folders)
            for path, counted in paths.selected():
                size = _file_size(path)
                if size is not None:
                    tally.member(len(fmt.adapter_file_member(row["id"], path.name)), size)
                    if counted:
                        tally.counts["lora_files"] += 1


class _AdapterFiles:
    def __init__(self, row: Mapping[str, Any], options: ArchiveOptions, folders: LoraFolders) -> None:
        self.paths = adapter_file_paths(row, folders, model=options.lora_files, metadata=options.lora_metadata)
        self.options = options

    def selected(self) -> list[tuple[Path, bool]]:
        """``(path, is the LoRA file)`` of the files the options copy."""
        chosen: list[tuple[Path, bool]] = []
        if self.options.lora_files and self.paths.model is not None:
            chosen.append((self.paths.model, True))
        if self.options.lora_metadata:
            chosen += [(path, False) for path in self.paths.sidecars]
            if self.options.lora_previews and self.paths.preview is not None:
                chosen.append((self.paths.preview, False))
        return chosen


def _estimate_embeddings(tally: _Tally, options: ArchiveOptions) -> None:
    from recommendations.models import AdapterEmbedding

    queryset = AdapterEmbedding.objects.all()
    if options.adapter_ids is not None:
        queryset = queryset.filter(adapter_id__in=list(options.adapter_ids))

    def to_record(row: dict[str, Any]) -> Any:
        record = values_record(AdapterEmbedding, row)
        record["vector_b64"] = record.pop("vector")
        return record

    tally.counts["embeddings"] = tally.rows(fmt.EMBEDDINGS, queryset, to_record)


def _estimate_generations(tally: _Tally, options: ArchiveOptions) -> None:
    from deliveries.models import DeliveryJob, DeliveryJobAdapter

    jobs = jobs_queryset(options)
    links = DeliveryJobAdapter.objects.filter(job__in=jobs)
    link_count = links.count()
    link_sample = list(links.order_by("pk").values()[:SAMPLE])
    link_mean = (
        sum(_line_size(values_record(DeliveryJobAdapter, row, exclude={"id", "job"})) for row in link_sample)
        / len(link_sample)
        if link_sample
        else 0
    )
    tally.counts["generation_jobs"] = tally.rows(fmt.JOBS, jobs, _plain(DeliveryJob))
    tally.size += round(link_mean * link_count)
    results = results_queryset(options)
    tally.counts["generation_results"] = tally.rows(fmt.RESULTS, results, _plain(results.model))
    if options.generation_images:
        images = results.aggregate(total=Sum("size_bytes"))["total"] or 0
        name_length = len(fmt.image_member("0" * 36, 0, "png"))
        tally.size += images + tally.counts["generation_results"] * (
            ZIP_MEMBER_OVERHEAD + 3 * name_length + MANIFEST_ENTRY_OVERHEAD + len(',"member":""') + name_length
        )


def _estimate_backends(tally: _Tally) -> None:
    from generation.models import GenerationBackend

    rows = GenerationBackend.objects.values()
    records = [values_record(GenerationBackend, row, exclude=BACKEND_PRIVATE) for row in rows]
    tally.member(len(fmt.BACKENDS), len(json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode()))
