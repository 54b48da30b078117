"""Reading one ``adapters/<id>/adapter.json`` (SPEC 6.10.1) and checking it like the API checks a body
(SPEC 6.10.2 step 9): the column types through ``record_values``, the curatable and user-owned fields through the
adapter serializers' own fields and validators."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rest_framework import serializers

from adapters.models import Adapter
from adapters.scanner.paths import has_invalid_characters
from adapters.serializers import AdapterCreateSerializer, AdapterUpdateSerializer
from backups.archive.apply.context import ApplyContext, invalid_record, record_error
from backups.archive.apply.fast import fast_record_values
from backups.archive.records import ADAPTER_DERIVED, RecordError

KIND = "adapter"
REQUIRED = ("id", "name", "file_path", "sdnext_name")
# Create-only fields the API also checks (file_path is not among them: its target is computed, 6.10.3).
_CREATE_ONLY = (
    "canonical_version_name", "author_username", "published_at", "primary_file_name", "primary_file_size_kb",
    "primary_file_sha256", "primary_file_download_url", "stats", "extra",
)  # fmt: skip


@dataclass
class SidecarMember:
    member: str
    name: str


@dataclass
class AdapterRecord:
    member: str
    values: dict[str, Any]
    file_member: str | None = None
    sidecar_members: list[SidecarMember] = field(default_factory=list)
    preview_member: str | None = None
    normalised: dict[str, Any] = field(default_factory=dict)  # values the API's checks changed (trimmed, lower-case)

    @property
    def key(self) -> tuple[str, str]:
        return self.values["name"], self.values.get("version") or ""


@cache
def _api_fields() -> dict[str, tuple[serializers.Field, Any]]:
    """Each checked field with the serializer's ``validate_<name>`` hook (or None)."""
    checked: dict[str, tuple[serializers.Field, Any]] = {}
    for serializer_class, names in ((AdapterUpdateSerializer, None), (AdapterCreateSerializer, _CREATE_ONLY)):
        serializer = serializer_class()
        for name, api_field in serializer.fields.items():
            if names is None or name in names:
                checked[name] = (api_field, getattr(serializer, f"validate_{name}", None))
    return checked


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        return f"{key}: {_first_message(value)}" if not str(key).isdigit() else f"item {key}: {_first_message(value)}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _api_check(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Check the fields the API checks; returns those whose checked value differs (and updates ``values``)."""
    normalised: dict[str, Any] = {}
    for name, (api_field, hook) in _api_fields().items():
        if name not in raw or (raw[name] is None and name not in ("name", "sdnext_name")):
            continue
        try:
            value = api_field.run_validation(raw[name])
            if hook is not None:
                value = hook(value)
        except serializers.ValidationError as exc:
            raise RecordError(name, _first_message(exc.detail)) from None
        if values.get(name) != value:
            values[name] = normalised[name] = value
    return normalised


def _member(context: ApplyContext, raw: Any, name: str, prefix: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.startswith(prefix) or not context.archive.has(raw):
        raise RecordError(name, "Not a member of this archive.")
    return raw


def _sidecars(context: ApplyContext, raw: Any, prefix: str) -> list[SidecarMember]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise RecordError("sidecar_members", "Expected a list.")
    sidecars = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise RecordError("sidecar_members", 'Each item needs "member" and "name".')
        member = _member(context, item.get("member"), "sidecar_members", prefix)
        if member is not None:
            sidecars.append(SidecarMember(member=member, name=item["name"]))
    return sidecars


def adapter_record_read(context: ApplyContext, member: str, *, check: bool = True) -> AdapterRecord:
    """The checked record of ``member``; ``ArchiveError`` with the SPEC's message when anything is wrong.
    ``check=False`` (a record the plan already checked) converts the columns only."""
    raw = context.read_json(member)
    try:
        if not isinstance(raw, dict):
            raise RecordError("record", "must be a JSON object")
        values = fast_record_values(Adapter, raw, exclude=ADAPTER_DERIVED, required=REQUIRED)
        normalised = _api_check(raw, values) if check else {}
        if not values["file_path"] or has_invalid_characters(values["file_path"]):
            raise RecordError("file_path", "file_path contains invalid characters")
        prefix = member.rsplit("/", 1)[0] + "/"
        return AdapterRecord(
            member=member,
            values=values,
            file_member=_member(context, raw.get("file_member"), "file_member", prefix),
            sidecar_members=_sidecars(context, raw.get("sidecar_members"), prefix),
            preview_member=_member(context, raw.get("preview_member"), "preview_member", prefix),
            normalised=normalised,
        )
    except RecordError as exc:
        raise record_error(KIND, member, exc) from None


def adapter_members(context: ApplyContext) -> list[str]:
    return [name for name in context.archive.names_under("adapters/") if name.endswith("/adapter.json")]


def invalid(member: str, field_name: str, message: str) -> Exception:
    return invalid_record(KIND, member, field_name, message)
