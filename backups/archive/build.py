"""The archive's parts (SPEC 6.10.1) written from the database and the files, as ``ArchiveOptions`` select them.

``archive_write`` writes a complete archive into a file; ``archive_stream`` yields the same archive as chunks for a
streamed HTTP response. Both run the same steps: each step writes at most one chunk (1 MiB of a file, or about
1 MiB of JSON Lines) and then yields, so a stream hands every chunk on before the next is made and memory does not
grow with the archive. Rows are read in keyset pages of a bounded size (never a whole table in memory); the links of
a page of jobs are read with one query per page.

A LoRA file's SHA-256 is not recomputed when the scan cache (``ScannedFile``) holds it for the file's current size
and mtime, the test the scanner itself trusts (SPEC 6.6.3); if the file's ``fstat`` differs after the copy, the
archive is abandoned rather than listed with a digest its bytes may not have. Only the CRC-32 that ZIP needs is
computed for those files: through the server, the SHA-256 was a third of the export's CPU.

A member's record names the members written for it (``file_member``, ``sidecar_members``, ``preview_member``,
a result's ``member``), so files are written before the record that lists them: a file that cannot be read is left
out of the record too, and the archive stays consistent.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.db import models
from django.utils import timezone

import loraforge
from adapters.models import Adapter
from adapters.scanner.cache import CacheRow, rows_of
from analytics.models import ResourceSample
from backups.archive import format as fmt
from backups.archive.estimate import (
    ArchiveEstimate,
    LoraFolders,
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
from backups.archive.rows import RowEncoder
from backups.archive.writer import CHUNK, ArchiveWriter, ChunkSink, MemberStream, open_regular_file
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult
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
        self.folders = LoraFolders()
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
            yield from self.user_data()
        if options.analytics:
            yield from self.analytics()
        if options.system_config:
            yield from self.backends()

    # --- members --------------------------------------------------------------------------------------
    def file(self, name: str, path: Path, *, known: CacheRow | None = None) -> Iterator[bool]:
        """Copy ``path`` (a file inside a LoRA folder or the media root) into stored member ``name``; yields
        after each chunk, and finally True when the member was written (False: missing or unreadable). ``known``:
        the file's scan cache row, whose digest is used while the row is valid for the file (``valid_for``)."""
        opened = open_regular_file(path)
        if opened is None:
            yield False
            return
        handle, status = opened
        sha256 = known.sha256 if known is not None and known.valid_for(status, needs_header=False) else None
        with handle:
            for nbytes in self.writer.write_file(name, handle, status.st_size, sha256=sha256):
                self.advance(nbytes, name)
                yield False
            if sha256 is not None and not known_unchanged(status, os.fstat(handle.fileno())):
                raise FileChangedError(f"{path} changed while it was being archived")
        yield True

    def jsonl(
        self,
        name: str,
        encoder: RowEncoder,
        queryset: models.QuerySet[Any],
        count_key: str,
        *,
        lines: Callable[[list[tuple[Any, ...]]], list[str]] | None = None,
    ) -> Iterator[None]:
        """One JSON Lines member of ``queryset``'s rows (``lines`` makes a page's lines; default: each row's
        record), flushed about every 1 MiB."""
        make_lines = lines or (lambda page: [encoder.encode(row) for row in page])
        with self.writer.member(name, compressed=True) as stream:
            buffer: list[str] = []
            buffered = 0
            for page in encoder.pages(queryset, PAGE):
                for line in make_lines(page):
                    buffer.append(line)
                    buffered += len(line) + 1
                self.counts[count_key] += len(page)
                if buffered >= CHUNK:
                    yield from self.flush(stream, name, buffer)
                    buffer, buffered = [], 0
            yield from self.flush(stream, name, buffer)

    def flush(self, stream: MemberStream, name: str, lines: list[str]) -> Iterator[None]:
        if lines:
            data = ("\n".join(lines) + "\n").encode("utf-8")
            stream.write(data)
            self.advance(len(data), name)
        yield

    # --- adapters ---------------------------------------------------------------------------------------
    def adapters(self) -> Iterator[None]:
        encoder = RowEncoder(Adapter, exclude=ADAPTER_DERIVED)
        columns = {name: index for index, name in enumerate(encoder.attnames)}
        for page in encoder.pages(adapter_queryset(self.options), PAGE):
            known = rows_of(_file_paths(page, columns["file_path"])) if self.options.lora_files else {}
            for row in page:
                yield from self.adapter(encoder, row, columns, known)

    def adapter(
        self, encoder: RowEncoder, row: tuple[Any, ...], columns: dict[str, int], known: dict[str, CacheRow]
    ) -> Iterator[None]:
        adapter_id = str(uuid.UUID(str(row[columns["id"]])))
        members: dict[str, Any] = {"file_member": None, "sidecar_members": [], "preview_member": None}
        if self.options.lora_files or self.options.lora_metadata:
            members = yield from self.adapter_files(adapter_id, _file_columns(row, columns), known)
        text = encoder.encode(row)[:-1] + "," + dumps(members).decode("utf-8")[1:]
        name = fmt.adapter_record_member(adapter_id)
        data = text.encode("utf-8")
        self.writer.write_bytes(name, data)
        self.advance(len(data), name)
        self.counts["adapters"] += 1
        yield

    def adapter_files(
        self, adapter_id: str, row: dict[str, Any], known: dict[str, CacheRow]
    ) -> Generator[None, None, dict[str, Any]]:
        """Copy the adapter's selected files; evaluates to the record's ``*_member`` keys naming those written."""
        paths = adapter_file_paths(
            row, self.folders, model=self.options.lora_files, metadata=self.options.lora_metadata
        )
        members: dict[str, Any] = {"file_member": None, "sidecar_members": [], "preview_member": None}
        if self.options.lora_files:
            member = fmt.adapter_file_member(adapter_id, Path(row["file_path"]).name)
            digest = known.get(row["file_path"])
            if paths.model is not None and (yield from self.copied(member, paths.model, known=digest)):
                members["file_member"] = member
                self.counts["lora_files"] += 1
            else:
                self.warnings.append(FILE_UNAVAILABLE.format(path=row["file_path"]))
        if not self.options.lora_metadata:
            return members
        for path in paths.sidecars:
            member = fmt.sidecar_member(adapter_id, path.name)
            if not self.writer.has(member) and (yield from self.copied(member, path)):
                members["sidecar_members"].append({"member": member, "name": path.name})
                self.counts["sidecars"] += 1
        if self.options.lora_previews and paths.preview is not None:
            member = fmt.preview_member(adapter_id, paths.preview.suffix or "bin")
            if (yield from self.copied(member, paths.preview)):
                members["preview_member"] = member
                self.counts["previews"] += 1
        return members

    def copied(self, member: str, path: Path, *, known: CacheRow | None = None) -> Generator[None, None, bool]:
        """``yield from`` it: copies the file, yielding between chunks; evaluates to whether it was written."""
        written = False
        for written in self.file(member, path, known=known):
            if not written:
                yield
        return written

    # --- other parts -------------------------------------------------------------------------------------
    def embeddings(self) -> Iterator[None]:
        queryset = AdapterEmbedding.objects.all()
        if self.options.adapter_ids is not None:
            queryset = queryset.filter(adapter_id__in=list(self.options.adapter_ids))
        encoder = RowEncoder(AdapterEmbedding, rename={"vector": "vector_b64"})
        yield from self.jsonl(fmt.EMBEDDINGS, encoder, queryset, "embeddings")

    def user_data(self) -> Iterator[None]:
        for name, model in ((fmt.SESSIONS, RecommendationSession), (fmt.FEEDBACK, RecommendationFeedback),
                            (fmt.PREFERENCES, UserPreference)):  # fmt: skip
            yield from self.jsonl(name, RowEncoder(model), model.objects.all(), COUNT_KEY_OF[name])

    def analytics(self) -> Iterator[None]:
        encoder = RowEncoder(ResourceSample, exclude={"id"})
        yield from self.jsonl(fmt.RESOURCE_SAMPLES, encoder, ResourceSample.objects.all(), "resource_samples")

    def jobs(self) -> Iterator[None]:
        encoder = RowEncoder(DeliveryJob)
        dated = self.options.date_from is not None or self.options.date_to is not None
        links = RowEncoder(DeliveryJobAdapter, exclude={"id", "job"}, extra=["job_id"])

        def lines(page: list[tuple[Any, ...]]) -> list[str]:
            """Each job's record with its ``adapter_links`` in position order (one query per page)."""
            linked: dict[Any, list[str]] = defaultdict(list)
            for link in links.rows(links_of(page, dated=dated), "job_id", "position"):
                linked[link[-1]].append(links.encode(link))
            return [
                f'{encoder.encode(row)[:-1]},"adapter_links":[{",".join(linked.get(row[-1], ()))}]}}' for row in page
            ]

        yield from self.jsonl(fmt.JOBS, encoder, jobs_queryset(self.options), "generation_jobs", lines=lines)

    def results(self) -> Iterator[None]:
        queryset = results_queryset(self.options)
        encoder = RowEncoder(GenerationResult)
        columns = [encoder.attnames.index(name) for name in ("job_id", "index", "file")]
        if self.options.generation_images:
            for page in encoder.pages(queryset, PAGE):
                for row in page:
                    job_id, index, file = (row[column] for column in columns)
                    member = result_member(job_id, index, file)
                    path = media_path(file or "")
                    if path is not None and not self.writer.has(member) and (yield from self.copied(member, path)):
                        self.counts["images"] += 1

        def lines(page: list[tuple[Any, ...]]) -> list[str]:
            made = []
            for row in page:
                member = result_member(*(row[column] for column in columns))
                stored = dumps(member).decode("utf-8") if self.writer.has(member) else "null"
                made.append(f'{encoder.encode(row)[:-1]},"member":{stored}}}')
            return made

        yield from self.jsonl(fmt.RESULTS, encoder, queryset, "generation_results", lines=lines)

    def backends(self) -> Iterator[None]:
        rows = GenerationBackend.objects.order_by("name").values()
        records = [values_record(GenerationBackend, row, exclude=BACKEND_PRIVATE) for row in rows]
        self.counts["backends"] = len(records)
        data = dumps(records)
        self.writer.write_bytes(fmt.BACKENDS, data)
        self.advance(len(data), fmt.BACKENDS)
        yield


class FileChangedError(RuntimeError):
    """A file whose cached digest was used changed while it was copied."""


def known_unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)


def _file_paths(page: list[tuple[Any, ...]], column: int) -> list[str]:
    return [row[column] for row in page if isinstance(row[column], str) and row[column]]


def links_of(page: list[tuple[Any, ...]], *, dated: bool) -> models.QuerySet[DeliveryJobAdapter]:
    """The links of a page of jobs (raw rows ending with the job's id, in id order). Every job in the id range of
    an undated page is in the page, so a range scan of the job index finds its links without a 500-id ``IN``;
    a page of dated jobs may skip ids, so it names them."""
    if dated:
        return DeliveryJobAdapter.objects.filter(job_id__in=[row[-1] for row in page])
    return DeliveryJobAdapter.objects.filter(job_id__gte=page[0][-1], job_id__lte=page[-1][-1])


COUNT_KEY_OF = {fmt.SESSIONS: "sessions", fmt.FEEDBACK: "feedback", fmt.PREFERENCES: "preferences"}


def _file_columns(row: tuple[Any, ...], columns: dict[str, int]) -> dict[str, Any]:
    sidecars = row[columns["sidecars"]]
    if isinstance(sidecars, str):
        try:
            sidecars = json.loads(sidecars)
        except ValueError:
            sidecars = []
    return {
        "file_path": row[columns["file_path"]],
        "sidecars": sidecars,
        "json_file_path": row[columns["json_file_path"]],
        "preview_path": row[columns["preview_path"]],
    }


def result_member(job_id: Any, index: int, file: str | None) -> str:
    extension = Path(file or "").suffix.lstrip(".") or "bin"
    return fmt.image_member(uuid.UUID(str(job_id)), index, extension)
