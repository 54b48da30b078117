"""The archive's parts (SPEC 6.10.1) written from the database and the files, as ``ArchiveOptions`` select them.

``archive_write`` writes a complete archive into a file; ``archive_stream`` yields the same archive as chunks for a
streamed HTTP response. Both run the same steps: each step writes at most one chunk (1 MiB of a file, or about
1 MiB of JSON Lines) and then yields, so a stream hands every chunk on before the next is made and memory does not
grow with the archive. Rows are read in keyset pages of a bounded size (never a whole table in memory); the links of
a page of jobs are read with one query per page.

A member's record names the members written for it (``file_member``, ``sidecar_members``, ``preview_member``,
a result's ``member``), so files are written before the record that lists them: a file that cannot be read is left
out of the record too, and the archive stays consistent.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from django.db import models
from django.utils import timezone

import loraforge
from adapters.models import Adapter
from analytics.models import ResourceSample
from backups.archive import format as fmt
from backups.archive.estimate import (
    ArchiveEstimate,
    adapter_file_paths,
    adapter_queryset,
    archive_estimate,
    format_duration,
    format_size,
    jobs_queryset,
    results_queryset,
)
from backups.archive.format import ArchiveOptions, Manifest
from backups.archive.progress import ArchiveCancelled, ArchiveProgress, NoProgress
from backups.archive.records import ADAPTER_DERIVED, BACKEND_PRIVATE, values_record
from backups.archive.writer import CHUNK, ArchiveWriter, ChunkSink, open_regular_file
from deliveries.models import DeliveryJobAdapter
from generation.models import GenerationBackend
from loraforge.media import media_path
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference

__all__ = [
    "ArchiveEstimate",
    "archive_estimate",
    "archive_stream",
    "archive_write",
    "format_duration",
    "format_size",
]

PAGE = 500  # rows per keyset page
FILE_UNAVAILABLE = "File not available: {path}"
Record = dict[str, Any]


def archive_write(
    target: BinaryIO,
    options: ArchiveOptions,
    *,
    kind: str,
    backup_type: str | None = None,
    progress: ArchiveProgress | None = None,
) -> Manifest:
    """Write a complete archive into ``target``; returns its manifest. Raises ``ArchiveCancelled`` when
    ``progress.cancelled()`` turns true (the caller removes what was written)."""
    if progress is not None:
        progress.planned(archive_estimate(options).size_bytes)
    writer = ArchiveWriter(target, compresslevel=options.compresslevel)
    build = ArchiveBuild(writer, options, progress or NoProgress())
    try:
        for _step in build.steps():
            pass
        manifest = build.manifest(kind=kind, backup_type=backup_type)
        writer.close(manifest.to_dict())
    except BaseException:
        writer.abort()
        raise
    return manifest


def archive_stream(options: ArchiveOptions, *, kind: str = fmt.KIND_EXPORT) -> Iterator[bytes]:
    """The same archive as chunks (about 1 MiB each) for a streamed response."""
    sink = ChunkSink()
    writer = ArchiveWriter(sink, compresslevel=options.compresslevel)
    build = ArchiveBuild(writer, options, NoProgress())
    try:
        for _step in build.steps():
            data = sink.drain()
            if data:
                yield data
        writer.close(build.manifest(kind=kind, backup_type=None).to_dict())
    except BaseException:
        writer.abort()
        raise
    yield sink.drain()


def keyset_pages(queryset: models.QuerySet[Any], size: int = PAGE, *fields: str) -> Iterator[list[dict[str, Any]]]:
    """``.values(*fields)`` rows in primary-key order, ``size`` at a time (each page one bounded query)."""
    pk = queryset.model._meta.pk
    assert pk is not None
    ordered = queryset.order_by("pk")
    last: Any = None
    while True:
        page = ordered if last is None else ordered.filter(pk__gt=last)
        rows = list(page.values(*fields)[:size])
        if not rows:
            return
        yield rows
        last = rows[-1][pk.attname]


def dumps(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ArchiveBuild:
    """The steps that write the parts into ``writer``; ``counts`` and ``warnings`` fill as they run."""

    def __init__(self, writer: ArchiveWriter, options: ArchiveOptions, progress: ArchiveProgress) -> None:
        self.writer = writer
        self.options = options
        self.progress = progress
        self.counts = dict.fromkeys(fmt.COUNT_KEYS, 0)
        self.warnings: list[str] = []
        self.created_at = timezone.now()

    def manifest(self, *, kind: str, backup_type: str | None) -> Manifest:
        return Manifest(
            kind=kind,
            backup_type=backup_type,
            created_at=self.created_at.isoformat().replace("+00:00", "Z"),
            app_version=loraforge.__version__,
            options=self.options.manifest_options(),
            counts=dict(self.counts),
            members=list(self.writer.members),
            warnings=list(self.warnings),
        )

    def advance(self, nbytes: int, member: str) -> None:
        self.progress.advance(nbytes, member)
        if self.progress.cancelled():
            raise ArchiveCancelled()

    def steps(self) -> Iterator[None]:
        options = self.options
        if options.loras:
            yield from self.adapters()
        if options.lora_embeddings:
            yield from self.embeddings()
        if options.generations:
            yield from self.jobs()
            yield from self.results()
        if options.user_data:
            yield from self.jsonl(fmt.SESSIONS, RecommendationSession.objects.all(), "sessions")
            yield from self.jsonl(fmt.FEEDBACK, RecommendationFeedback.objects.all(), "feedback")
            yield from self.jsonl(fmt.PREFERENCES, UserPreference.objects.all(), "preferences")
        if options.analytics:
            yield from self.jsonl(
                fmt.RESOURCE_SAMPLES, ResourceSample.objects.all(), "resource_samples", exclude=frozenset({"id"})
            )
        if options.system_config:
            yield from self.backends()

    # --- members --------------------------------------------------------------------------------------
    def record(self, name: str, record: Any) -> Iterator[None]:
        data = dumps(record)
        self.writer.write_bytes(name, data)
        self.advance(len(data), name)
        yield

    def file(self, name: str, path: Path) -> Iterator[bool]:
        """Copy ``path`` (a file inside a LoRA folder or the media root) into stored member ``name``; yields
        after each chunk, and finally True when the member was written (False: missing or unreadable)."""
        opened = open_regular_file(path)
        if opened is None:
            yield False
            return
        handle, size = opened
        with handle:
            for nbytes in self.writer.write_file(name, handle, size):
                self.advance(nbytes, name)
                yield False
        yield True

    def jsonl(
        self,
        name: str,
        queryset: models.QuerySet[Any],
        count_key: str,
        *,
        exclude: frozenset[str] = frozenset(),
        to_record: Callable[[dict[str, Any]], Record] | None = None,
        pages: Iterator[list[dict[str, Any]]] | None = None,
    ) -> Iterator[None]:
        """One JSON Lines member from ``queryset`` (or given ``pages`` of rows), flushed about every 1 MiB."""
        model = queryset.model
        convert = to_record or (lambda row: values_record(model, row, exclude=exclude))
        with self.writer.member(name, compressed=True) as stream:
            buffer: list[bytes] = []
            buffered = 0
            for page in pages if pages is not None else keyset_pages(queryset):
                for row in page:
                    line = dumps(convert(row)) + b"\n"
                    buffer.append(line)
                    buffered += len(line)
                    self.counts[count_key] += 1
                if buffered >= CHUNK:
                    stream.write(b"".join(buffer))
                    self.advance(buffered, name)
                    buffer, buffered = [], 0
                    yield
            stream.write(b"".join(buffer))
        self.advance(buffered, name)
        yield

    # --- adapters ---------------------------------------------------------------------------------------
    def adapters(self) -> Iterator[None]:
        for page in keyset_pages(adapter_queryset(self.options)):
            for row in page:
                yield from self.adapter(row)

    def adapter(self, row: Mapping[str, Any]) -> Iterator[None]:
        adapter_id = row["id"]
        record = values_record(Adapter, row, exclude=ADAPTER_DERIVED)
        paths = adapter_file_paths(row)
        record["file_member"] = None
        if self.options.lora_files:
            member = fmt.adapter_file_member(adapter_id, Path(row["file_path"]).name)
            if paths.model is not None and (yield from self.copied(member, paths.model)):
                record["file_member"] = member
                self.counts["lora_files"] += 1
            else:
                self.warnings.append(FILE_UNAVAILABLE.format(path=row["file_path"]))
        record["sidecar_members"] = []
        record["preview_member"] = None
        if self.options.lora_metadata:
            for path in paths.sidecars:
                member = fmt.sidecar_member(adapter_id, path.name)
                if not self.writer.has(member) and (yield from self.copied(member, path)):
                    record["sidecar_members"].append({"member": member, "name": path.name})
                    self.counts["sidecars"] += 1
            if self.options.lora_previews and paths.preview is not None:
                member = fmt.preview_member(adapter_id, paths.preview.suffix or "bin")
                if (yield from self.copied(member, paths.preview)):
                    record["preview_member"] = member
                    self.counts["previews"] += 1
        yield from self.record(fmt.adapter_record_member(adapter_id), record)
        self.counts["adapters"] += 1

    def copied(self, member: str, path: Path) -> Generator[None, None, bool]:
        """``yield from`` it: copies the file, yielding between chunks; evaluates to whether it was written."""
        written = False
        for written in self.file(member, path):
            if not written:
                yield
        return written

    # --- other parts -------------------------------------------------------------------------------------
    def embeddings(self) -> Iterator[None]:
        queryset = AdapterEmbedding.objects.all()
        if self.options.adapter_ids is not None:
            queryset = queryset.filter(adapter_id__in=list(self.options.adapter_ids))
        yield from self.jsonl(fmt.EMBEDDINGS, queryset, "embeddings", to_record=embedding_record)

    def jobs(self) -> Iterator[None]:
        queryset = jobs_queryset(self.options)
        pages = jobs_with_links(queryset)
        yield from self.jsonl(fmt.JOBS, queryset, "generation_jobs", pages=pages, to_record=lambda record: record)

    def results(self) -> Iterator[None]:
        queryset = results_queryset(self.options)
        if self.options.generation_images:
            for page in keyset_pages(queryset, PAGE, "id", "job_id", "index", "file"):
                for row in page:
                    path = media_path(row["file"] or "")
                    member = result_member(row)
                    if path is not None and not self.writer.has(member) and (yield from self.copied(member, path)):
                        self.counts["images"] += 1

        def to_record(row: dict[str, Any]) -> Record:
            record = values_record(queryset.model, row)
            member = result_member(row)
            record["member"] = member if self.writer.has(member) else None
            return record

        yield from self.jsonl(fmt.RESULTS, queryset, "generation_results", to_record=to_record)

    def backends(self) -> Iterator[None]:
        rows = GenerationBackend.objects.order_by("name").values()
        records = [values_record(GenerationBackend, row, exclude=BACKEND_PRIVATE) for row in rows]
        self.counts["backends"] = len(records)
        yield from self.record(fmt.BACKENDS, records)


def embedding_record(row: dict[str, Any]) -> Record:
    record = values_record(AdapterEmbedding, row)
    record["vector_b64"] = record.pop("vector")
    return record


def result_member(row: Mapping[str, Any]) -> str:
    extension = Path(row["file"] or "").suffix.lstrip(".") or "bin"
    return fmt.image_member(row["job_id"], row["index"], extension)


def jobs_with_links(queryset: models.QuerySet[Any]) -> Iterator[list[dict[str, Any]]]:
    """Pages of job records, each with its ``adapter_links`` (one query per page)."""
    model = queryset.model
    for page in keyset_pages(queryset):
        links: dict[Any, list[Record]] = defaultdict(list)
        rows = DeliveryJobAdapter.objects.filter(job_id__in=[row["id"] for row in page]).order_by("job_id", "position")
        for link in rows.values():
            links[link["job_id"]].append(values_record(DeliveryJobAdapter, link, exclude={"id", "job"}))
        yield [{**values_record(model, row), "adapter_links": links.get(row["id"], [])} for row in page]
