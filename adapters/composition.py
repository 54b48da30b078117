"""Prompt composition (SPEC 6.1): adapters in, ``<lora:NAME:W>`` tokens, triggers and warnings out.

Pure apart from the one query that loads the input set: no writes, no other app.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from adapters.models import Adapter, BaseFamily
from loraforge.prepared import PreparedQuery

NO_ACTIVE_ADAPTERS = "No active adapters found for composition"
NO_ADAPTERS = "No adapters found for composition"
TRIGGER_WORDS_TAKEN = 3
_RESERVED = re.compile(r"[:<>\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_THOUSANDTH = Decimal("0.001")
_FAMILIES_IGNORED = frozenset({BaseFamily.UNKNOWN.value, BaseFamily.OTHER.value})


class ComposedAdapter(NamedTuple):
    """The columns composition reads, as one row (its fields name the columns selected): no model instance to build
    (a tenth of an uncached compose was ``Model.from_db`` for ten rows)."""

    id: UUID
    name: str
    sdnext_name: str
    weight: float
    ordinal: int | None
    triggers: list[str] | None
    activation_text: str | None
    trained_words: list[str] | None
    missing_since: datetime | None
    base_family: str

    @property
    def pk(self) -> UUID:
        return self.id

    @property
    def file_missing(self) -> bool:
        return self.missing_since is not None


_FIELDS = ComposedAdapter._fields


class Orderable(Protocol):
    """What composition orders by: an ``Adapter`` or a ``ComposedAdapter``."""

    @property
    def ordinal(self) -> int | None: ...

    @property
    def name(self) -> str: ...

    @property
    def pk(self) -> Any: ...


@dataclass(frozen=True)
class Composition:
    prompt: str
    tokens: list[str]
    triggers: list[str]
    warnings: list[str]
    adapters: list[dict[str, Any]]  # {"id": UUID, "name", "sdnext_name", "weight": float}, in token order


@dataclass(frozen=True)
class _Candidate:
    adapter: ComposedAdapter
    weight: float


@dataclass(frozen=True)
class _Duplicate:
    sdnext_name: str
    members: list[_Candidate]
    kept: _Candidate


def format_weight(weight: float) -> str:
    """Round half away from zero to 3 decimals on the shortest repr; no trailing zeros; ``-0`` is ``0``."""
    rounded = Decimal(repr(float(weight))).quantize(_THOUSANDTH, rounding=ROUND_HALF_UP)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def lora_token(sdnext_name: str, weight: float) -> str:
    return f"<lora:{sdnext_name}:{format_weight(weight)}>"


def is_reserved_sdnext_name(sdnext_name: str) -> bool:
    """The one ``sdnext_name`` rule (SPEC 5.2, 6.1): names composition cannot print in ``<lora:NAME:W>`` (SDNext's
    tag parser would not read them back), which the API therefore refuses: empty, with ``:``, ``<``, ``>`` or a line
    break (any that ``str.splitlines`` breaks on), or starting with ``/``."""
    return not sdnext_name or sdnext_name.startswith("/") or _RESERVED.search(sdnext_name) is not None


def composition_order_key(adapter: Orderable) -> tuple[bool, int, str, UUID]:
    """Ordinal ascending with nulls last, then ``casefold(name)``, then id."""
    return (adapter.ordinal is None, adapter.ordinal or 0, adapter.name.casefold(), adapter.pk)


_ACTIVE: PreparedQuery[Adapter] = PreparedQuery(
    lambda: Adapter.objects.order_by().filter(active=True).values_list(*_FIELDS)
)


def _load(adapter_ids: Sequence[UUID] | None) -> tuple[list[ComposedAdapter], list[UUID]]:
    """The input set in composition order (one query) and the requested ids that do not exist."""
    if adapter_ids is None:
        adapters = [ComposedAdapter(*row) for row in _ACTIVE.rows()]
        unknown: list[UUID] = []
    else:
        requested = list(dict.fromkeys(adapter_ids))
        rows = Adapter.objects.order_by().filter(pk__in=requested).values_list(*_FIELDS)
        adapters = [ComposedAdapter(*row) for row in rows]
        found = {adapter.pk for adapter in adapters}
        unknown = [adapter_id for adapter_id in requested if adapter_id not in found]
    return sorted(adapters, key=composition_order_key), unknown


def _dedupe(candidates: list[_Candidate]) -> tuple[list[_Candidate], list[_Duplicate]]:
    """One candidate per exact ``sdnext_name``: the heaviest (ties: the earlier), at the group's first position."""
    groups: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.adapter.sdnext_name, []).append(candidate)
    kept: list[_Candidate] = []
    duplicates: list[_Duplicate] = []
    for name, members in groups.items():
        survivor = members[0]
        for member in members[1:]:
            if member.weight > survivor.weight:
                survivor = member
        kept.append(survivor)
        if len(members) > 1:
            duplicates.append(_Duplicate(name, members, survivor))
    return kept, duplicates


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _phrases_of(adapter: ComposedAdapter) -> list[str]:
    """``triggers`` if any, else ``activation_text`` as one phrase, else the first trained words."""
    if adapter.triggers:
        return list(adapter.triggers)
    if adapter.activation_text and adapter.activation_text.strip():
        return [adapter.activation_text]
    return list(adapter.trained_words or [])[:TRIGGER_WORDS_TAKEN]


def trigger_phrases(adapters: Iterable[ComposedAdapter], *, prefix: str, suffix: str) -> list[str]:
    """Whitespace-collapsed phrases, dropping those already contained (case-insensitively) in the prompt parts."""
    seen = [_collapse(prefix).casefold(), _collapse(suffix).casefold()]
    phrases: list[str] = []
    for adapter in adapters:
        for raw in _phrases_of(adapter):
            phrase = _collapse(str(raw))
            folded = phrase.casefold()
            if not phrase or any(folded in earlier for earlier in seen):
                continue
            phrases.append(phrase)
            seen.append(folded)
    return phrases


def _names(candidates: Iterable[_Candidate]) -> str:
    return ", ".join(candidate.adapter.name for candidate in candidates)


def _family_groups(emitted: list[_Candidate]) -> dict[str, list[_Candidate]]:
    groups: dict[str, list[_Candidate]] = {}
    for candidate in emitted:
        family = candidate.adapter.base_family or BaseFamily.UNKNOWN.value
        if family not in _FAMILIES_IGNORED:
            groups.setdefault(family, []).append(candidate)
    return groups


def _warnings(
    *,
    emitted: list[_Candidate],
    explicit: bool,
    unknown: list[UUID],
    skipped: list[ComposedAdapter],
    duplicates: list[_Duplicate],
) -> list[str]:
    warnings: list[str] = []
    if not emitted:
        warnings.append(NO_ADAPTERS if explicit else NO_ACTIVE_ADAPTERS)
    if unknown:
        warnings.append(f"Unknown adapter ids: {', '.join(str(adapter_id) for adapter_id in unknown)}")
    if skipped:
        names = ", ".join(adapter.name for adapter in skipped)
        warnings.append(f"Skipped adapters whose sdnext_name contains reserved characters: {names}")
    for group in duplicates:
        kept = format_weight(group.kept.weight)
        warnings.append(f"Duplicate sdnext_name '{group.sdnext_name}' ({_names(group.members)}): kept weight {kept}")
    if zero := [candidate for candidate in emitted if format_weight(candidate.weight) == "0"]:
        warnings.append(f"Adapters with zero weight: {_names(zero)}")
    if missing := [candidate for candidate in emitted if candidate.adapter.file_missing]:
        warnings.append(f"Adapter files missing: {_names(missing)}")
    families = _family_groups(emitted)
    if len(families) > 1:
        spans = "; ".join(f"{family} ({_names(members)})" for family, members in families.items())
        warnings.append(f"Base model mismatch among active adapters: {spans}")
    return warnings


def _summary(candidate: _Candidate) -> dict[str, Any]:
    adapter = candidate.adapter
    weight = float(format_weight(candidate.weight))
    return {"id": adapter.pk, "name": adapter.name, "sdnext_name": adapter.sdnext_name, "weight": weight}


def prompt_compose(
    *,
    prefix: str | None = None,
    suffix: str | None = None,
    include_triggers: bool = False,
    adapter_ids: Sequence[UUID] | None = None,
    weight_overrides: Mapping[UUID, float] | None = None,
) -> Composition:
    """Compose a prompt from the given adapters (any active state) or, without ids, from every active adapter."""
    overrides = weight_overrides or {}
    prefix, suffix = (prefix or "").strip(), (suffix or "").strip()
    adapters, unknown = _load(adapter_ids)
    skipped = [adapter for adapter in adapters if is_reserved_sdnext_name(adapter.sdnext_name)]
    candidates = [
        _Candidate(adapter, float(overrides.get(adapter.pk, adapter.weight)))
        for adapter in adapters
        if not is_reserved_sdnext_name(adapter.sdnext_name)
    ]
    emitted, duplicates = _dedupe(candidates)
    tokens = [lora_token(candidate.adapter.sdnext_name, candidate.weight) for candidate in emitted]
    triggers = (
        trigger_phrases((candidate.adapter for candidate in emitted), prefix=prefix, suffix=suffix)
        if include_triggers
        else []
    )
    parts = [prefix, *tokens, ", ".join(triggers), suffix]
    warnings = _warnings(
        emitted=emitted, explicit=adapter_ids is not None, unknown=unknown, skipped=skipped, duplicates=duplicates
    )
    return Composition(
        prompt=" ".join(part for part in parts if part),
        tokens=tokens,
        triggers=triggers,
        warnings=warnings,
        adapters=[_summary(candidate) for candidate in emitted],
    )


def prompt_compose_request(request: Mapping[str, Any]) -> Composition:
    """``prompt_compose`` of a validated compose request: the body of ``POST /compose`` or the ``compose_request`` of
    ``compose-and-generate`` (SPEC 5.3)."""
    return prompt_compose(
        prefix=request["prefix"],
        suffix=request["suffix"],
        include_triggers=request["include_triggers"],
        adapter_ids=request["adapter_ids"],
        weight_overrides=request["weight_overrides"],
    )
