"""Stored generation images (SPEC 5.5.4): reads, rating, favourites, deletion and the streamed ZIP export.

Deleting a row deletes its file after commit (``generation.signals``), only when it lies inside the media root.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

from django.db import transaction
from django.db.models import Avg, Count, Prefetch, Q, QuerySet
from django.utils import timezone

from deliveries.models import DeliveryJobAdapter, DeliveryKind
from generation.models import GenerationResult
from loraforge.errors import NotFound
from loraforge.media import media_path
from loraforge.progress import iso_timestamp

RESULT_NOT_FOUND = "Result not found"
FILE_UNAVAILABLE = "Result file is unavailable"
NO_RESULTS = "No results found"
EXPORT_FORMAT = "loraforge-results"
EXPORT_FORMAT_VERSION = 1
CHUNK_SIZE = 256 * 1024
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


# --- reads ---------------------------------------------------------------------------------------


def generation_results() -> QuerySet[GenerationResult]:
    """Images of generation jobs only (never of http/cli deliveries)."""
    return GenerationResult.objects.filter(job__kind=DeliveryKind.GENERATION)


def results_for_list() -> QuerySet[GenerationResult]:
    """With the job and its adapter links: a page costs two queries whatever its size."""
    links = Prefetch("job__adapter_links", queryset=DeliveryJobAdapter.objects.order_by("position"))
    return generation_results().select_related("job").prefetch_related(links)


def results_total() -> int:
    return generation_results().count()


def results_stats(queryset: QuerySet[GenerationResult]) -> dict[str, Any]:
    """Counts and the average rating of a (filtered) set, in one aggregate query."""
    stats = queryset.order_by().aggregate(
        total_results=Count("id"),
        favorites=Count("id", filter=Q(is_favorite=True)),
        rated=Count("id", filter=Q(rating__isnull=False)),
        average_rating=Avg("rating"),
    )
    average = stats["average_rating"]
    return {**stats, "average_rating": None if average is None else float(average)}


def result_file_name(result: GenerationResult) -> str:
    """``<NNN>.<ext>``: the index and the stored file's extension (else one from the content type)."""
    suffix = PurePosixPath(result.file).suffix.lstrip(".").lower()
    return f"{result.index:03d}.{suffix or EXTENSIONS.get(result.content_type, 'bin')}"


def result_download_name(result: GenerationResult) -> str:
    return f"{result.job_id}-{result_file_name(result)}"


def result_file_open(result: GenerationResult) -> IO[bytes]:
    """The stored image, opened; 404 "Result file is unavailable" when missing or outside the media root."""
    path = media_path(result.file)
    try:
        if path is None or not path.is_file():
            raise FileNotFoundError(result.file)
        return path.open("rb")
    except OSError:
        raise NotFound(FILE_UNAVAILABLE) from None


# --- writes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkOutcome:
    ids: list[str]  # found, in request order, each once
    missing: list[str]


def _split_ids(ids: Iterable[uuid.UUID]) -> tuple[list[uuid.UUID], BulkOutcome]:
    wanted = list(dict.fromkeys(ids))
    found = set(generation_results().filter(pk__in=wanted).values_list("pk", flat=True))
    present = [pk for pk in wanted if pk in found]
    outcome = BulkOutcome(ids=[str(pk) for pk in present], missing=[str(pk) for pk in wanted if pk not in found])
    return present, outcome


def result_rate(*, result: GenerationResult, rating: int | None) -> GenerationResult:
    """Set (0..5) or clear the rating; ``rating_updated_at`` follows."""
    result.rating = rating
    result.rating_updated_at = None if rating is None else timezone.now()
    result.save(update_fields=["rating", "rating_updated_at"])
    return result


def result_set_favorite(*, result: GenerationResult, is_favorite: bool) -> GenerationResult:
    result.is_favorite = is_favorite
    result.favorite_updated_at = timezone.now() if is_favorite else None
    result.save(update_fields=["is_favorite", "favorite_updated_at"])
    return result


def results_set_favorite(*, ids: Iterable[uuid.UUID], is_favorite: bool) -> BulkOutcome:
    """One ``UPDATE`` of the existing ids; unknown ids are reported as missing."""
    present, outcome = _split_ids(ids)
    GenerationResult.objects.filter(pk__in=present).update(
        is_favorite=is_favorite, favorite_updated_at=timezone.now() if is_favorite else None
    )
    return outcome


def result_delete(*, result: GenerationResult) -> None:
    result.delete()


def results_delete(*, ids: Iterable[uuid.UUID]) -> BulkOutcome:
    """Delete the existing rows in one transaction (their files follow after commit)."""
    with transaction.atomic():
        present, outcome = _split_ids(ids)
        GenerationResult.objects.filter(pk__in=present).delete()
    return outcome


# --- export (a ZIP streamed while it is written) -----------------------------------------------------


def results_for_export(ids: Iterable[uuid.UUID]) -> list[GenerationResult]:
    """The existing results of ``ids`` in request order; 404 "No results found" when none exists."""
    wanted = list(dict.fromkeys(ids))
    rows = {row.pk: row for row in results_for_list().filter(pk__in=wanted)}
    results = [rows[pk] for pk in wanted if pk in rows]
    if not results:
        raise NotFound(NO_RESULTS)
    return results


def export_file_name() -> str:
    return f"generation-results-{timezone.now():%Y%m%d-%H%M%S}.zip"


class _Sink:
    """A write-only, unseekable stream: ``zipfile`` writes into it, the generator hands the bytes on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _asset(archive_path: str, content_type: str, size: int, digest: str) -> dict[str, Any]:
    return {"archive_path": archive_path, "content_type": content_type, "size": size, "sha256": digest}


def _write_member(
    archive: zipfile.ZipFile, sink: _Sink, name: str, source: IO[bytes]
) -> Iterator[bytes | tuple[int, str]]:
    """Copy ``source`` into the archive chunk by chunk, yielding the archive bytes as they come; the last
    item is ``(size, sha256)``."""
    info = zipfile.ZipInfo(name, date_time=timezone.now().timetuple()[:6])
    info.file_size = os.fstat(source.fileno()).st_size  # decides whether the member needs ZIP64
    info.external_attr = 0o644 << 16
    digest, size = hashlib.sha256(), 0
    with source, archive.open(info, "w") as member:
        while chunk := source.read(CHUNK_SIZE):
            member.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            yield sink.drain()
    yield sink.drain()
    yield (size, digest.hexdigest())


def _write_bytes(archive: zipfile.ZipFile, name: str, data: bytes) -> tuple[int, str]:
    archive.writestr(name, data)
    return len(data), hashlib.sha256(data).hexdigest()


def _result_assets(
    archive: zipfile.ZipFile,
    sink: _Sink,
    result: GenerationResult,
    metadata: dict[str, Any] | None,
) -> Iterator[bytes | dict[str, Any]]:
    """The image (when its file is still there) and the optional ``metadata.json`` of one result."""
    folder = f"results/{result.pk}"
    path = media_path(result.file)
    try:
        source = path.open("rb") if path is not None and path.is_file() else None
    except OSError:
        source = None
    if source is not None:
        name = f"{folder}/{result_file_name(result)}"
        for item in _write_member(archive, sink, name, source):
            if isinstance(item, tuple):
                yield _asset(name, result.content_type, *item)
            else:
                yield item
    if metadata is not None:
        name = f"{folder}/metadata.json"
        size, digest = _write_bytes(archive, name, json.dumps(metadata, indent=2, default=str).encode())
        yield sink.drain()
        yield _asset(name, "application/json", size, digest)


def results_export_stream(
    results: list[GenerationResult],
    *,
    metadata_of: Callable[[GenerationResult], dict[str, Any]] | None,
) -> Iterator[bytes]:
    """The ZIP of 5.5.4, produced while it is sent: images and metadata first, ``manifest.json`` (with the
    SHA-256 of every asset) last. ``metadata_of`` gives each result's ``metadata.json`` (None: none)."""
    sink = _Sink()
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for result in results:
            metadata = metadata_of(result) if metadata_of is not None else None
            assets: list[dict[str, Any]] = []
            for item in _result_assets(archive, sink, result, metadata):
                if isinstance(item, dict):
                    assets.append(item)
                elif item:
                    yield item
            entries.append(_manifest_entry(result, assets))
        manifest = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "generated_at": iso_timestamp(),
            "count": len(entries),
            "results": entries,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    yield sink.drain()


def _manifest_entry(result: GenerationResult, assets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(result.pk),
        "job_id": str(result.job_id),
        "prompt": result.job.prompt,
        "created_at": iso_timestamp(result.created_at),
        "assets": assets,
    }
