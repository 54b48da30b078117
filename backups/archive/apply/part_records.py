"""Checking the records of every part besides adapters (SPEC 6.10.2 step 9): each JSON Lines record is converted
column by column (``record_values``) and checked for what the database or the API would refuse. The check runs over
every record before anything is written; the write phase reads the members again (streamed, never all in memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from analytics.models import ResourceSample
from backups.archive.apply.context import ApplyContext, record_error
from backups.archive.apply.fast import fast_record_values as record_values
from backups.archive.format import (
    BACKENDS,
    EMBEDDINGS,
    FEEDBACK,
    JOBS,
    PREFERENCES,
    RESOURCE_SAMPLES,
    RESULTS,
    SESSIONS,
    ArchiveError,
)
from backups.archive.records import BACKEND_PRIVATE, RecordError
from deliveries.models import DeliveryJob, DeliveryJobAdapter
from generation.models import GenerationBackend, GenerationResult, backend_name_error, normalize_backend_url
from loraforge.media import media_path
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference


def _object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RecordError("record", "must be a JSON object")
    return raw


def embedding_values(raw: Any) -> dict[str, Any]:
    record = dict(_object(raw))
    if "vector_b64" in record:
        record["vector"] = record.pop("vector_b64")
    values = record_values(
        AdapterEmbedding, record, required=("adapter_id", "model_name", "dim", "vector", "text_sha256", "computed_at")
    )
    if values["dim"] <= 0 or len(values["vector"]) != 4 * values["dim"]:
        raise RecordError("vector_b64", "Expected dim little-endian float32 values.")
    return values


LINK_EXCLUDED = frozenset({"id", "job"})
LINK_REQUIRED = ("adapter_name", "sdnext_name", "weight", "position")


def job_values(raw: Any) -> dict[str, Any]:
    record = _object(raw)
    values = record_values(DeliveryJob, record, required=("id", "kind", "mode", "prompt"))
    links = record.get("adapter_links") or []
    if not isinstance(links, list):
        raise RecordError("adapter_links", "Expected a list.")
    checked = []
    for link in links:
        try:
            checked.append(
                record_values(DeliveryJobAdapter, _object(link), exclude=LINK_EXCLUDED, required=LINK_REQUIRED)
            )
        except RecordError as exc:
            raise RecordError(f"adapter_links.{exc.field}", exc.message) from None
    if len({link["position"] for link in checked}) != len(checked):
        raise RecordError("adapter_links", "Positions must be unique.")
    values["adapter_links"] = checked
    return values


def result_values(raw: Any, context: ApplyContext) -> dict[str, Any]:
    record = _object(raw)
    values = record_values(
        GenerationResult, record, required=("id", "job_id", "index", "file", "content_type", "size_bytes")
    )
    if values.get("rating") is not None and not 0 <= values["rating"] <= 5:
        raise RecordError("rating", "Must be between 0 and 5.")
    if media_path(values["file"]) is None:
        raise RecordError("file", "Must be a path inside the media folder.")
    member = record.get("member")
    if member is not None and (
        not isinstance(member, str) or not member.startswith("generations/images/") or not context.archive.has(member)
    ):
        raise RecordError("member", "Not a member of this archive.")
    values["member"] = member
    return values


def session_values(raw: Any) -> dict[str, Any]:
    return record_values(RecommendationSession, _object(raw), required=("id", "kind", "context_key"))


def feedback_values(raw: Any) -> dict[str, Any]:
    return record_values(
        RecommendationFeedback, _object(raw), required=("id", "session_id", "adapter_id", "feedback_type")
    )


def preference_values(raw: Any) -> dict[str, Any]:
    values = record_values(UserPreference, _object(raw), required=("preference_type", "preference_value"))
    confidence = values.get("confidence")
    if confidence is not None and not 0 <= confidence <= 1:
        raise RecordError("confidence", "Must be between 0 and 1.")
    values["preference_value"] = values["preference_value"].strip().lower()
    return values


def sample_values(raw: Any) -> dict[str, Any]:
    return record_values(
        ResourceSample,
        _object(raw),
        exclude=("id",),
        required=("recorded_at", "host", "cpu_percent", "memory_percent", "memory_used_mb"),
    )


def backend_values(raw: Any) -> dict[str, Any]:
    values = record_values(GenerationBackend, _object(raw), exclude=BACKEND_PRIVATE, required=("id", "name", "url"))
    error = None if values.get("is_default") else backend_name_error(values["name"])
    if error:
        raise RecordError("name", error)
    try:
        values["url"] = normalize_backend_url(values["url"])
    except ValueError as exc:
        raise RecordError("url", str(exc)) from None
    return values


@dataclass(frozen=True)
class Part:
    key: str  # the report's ``parts`` key
    member: str
    kind: str  # as the error message names it
    parse: Callable[[Any, ApplyContext], dict[str, Any]]


PARTS = (
    Part("embeddings", EMBEDDINGS, "embedding", lambda raw, _c: embedding_values(raw)),
    Part("generation_jobs", JOBS, "generation job", lambda raw, _c: job_values(raw)),
    Part("generation_results", RESULTS, "generation result", result_values),
    Part("sessions", SESSIONS, "session", lambda raw, _c: session_values(raw)),
    Part("feedback", FEEDBACK, "feedback", lambda raw, _c: feedback_values(raw)),
    Part("preferences", PREFERENCES, "preference", lambda raw, _c: preference_values(raw)),
    Part("resource_samples", RESOURCE_SAMPLES, "resource sample", lambda raw, _c: sample_values(raw)),
)
BACKENDS_PART = Part("backends", BACKENDS, "backend", lambda raw, _c: backend_values(raw))


def part_values(context: ApplyContext, part: Part) -> Iterator[dict[str, Any]]:
    """The checked values of every record of ``part`` (streamed); ``ArchiveError`` on the first invalid one."""
    if part is BACKENDS_PART:
        if not context.archive.has(part.member):
            return
        raws = context.read_json(part.member)
        if not isinstance(raws, list):
            raise ArchiveError(f"Invalid JSON in {part.member}")
        records: Iterator[Any] = iter(raws)
    else:
        records = (raw for _number, raw in context.jsonl(part.member))
    for raw in records:
        try:
            yield part.parse(raw, context)
        except RecordError as exc:
            raise record_error(part.kind, part.member, exc) from None


def parts_check(context: ApplyContext) -> dict[str, int]:
    """Check every record of every part; returns the number of records per part."""
    counts = {}
    for part in (BACKENDS_PART, *PARTS):
        if context.archive.has(part.member):
            counts[part.key] = sum(1 for _values in part_values(context, part))
    return counts
