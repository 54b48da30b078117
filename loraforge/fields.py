"""Serializer fields with the strict JSON typing of SPEC 4.3."""

from __future__ import annotations

import copy
import json
import math
import re
import uuid
from typing import Any

from django import forms
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from loraforge.filters import StrictBooleanFormField


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be a boolean (true or false)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class QueryBooleanField(serializers.BooleanField):
    """A query-string boolean: ``true/false/1/0/yes/no/on/off`` (SPEC 4.3)."""

    def to_internal_value(self, data: Any) -> bool:
        try:
            value = StrictBooleanFormField().clean(data)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None
        return bool(value)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A valid integer is required."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"invalid": "A valid number is required."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


_SURROGATE = re.compile("[\ud800-\udfff]")


class SurrogateCharactersValidator(ProhibitSurrogateCharactersValidator):
    """DRF's check with its message, by one regular-expression search instead of a Python loop over every character
    (a third of checking an archive's adapter records; a 2,000-character description cost 100 µs)."""

    def __call__(self, value: Any) -> None:
        text = str(value)
        if text.isascii():
            return
        found = _SURROGATE.search(text)
        if found is not None:
            raise serializers.ValidationError(self.message.format(code_point=ord(found.group())), code=self.code)


class StrictCharField(serializers.CharField):
    """Strings only; a NUL character (which PostgreSQL cannot store) is a clear 400 on the field."""

    default_error_messages = {"invalid": "Not a valid string.", "null_characters": "Null characters are not allowed."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            SurrogateCharactersValidator() if type(validator) is ProhibitSurrogateCharactersValidator else validator
            for validator in self.validators
        ]

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("null_characters")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a JSON string (DRF would also take integers and booleans: ``false`` as the zero UUID)."""

    default_error_messages = {"invalid": "Must be a valid UUID."}

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class BoundedJSONObjectField(serializers.JSONField):
    """A free-form JSON object, limited by its serialised size."""

    default_error_messages = {
        "not_an_object": "Must be a JSON object.",
        "too_large": "Must be at most {limit} KiB when serialised.",
        "null_characters": "Null characters are not allowed.",
    }

    def __init__(self, *, max_kib: int = 64, **kwargs: Any) -> None:
        self.max_kib = max_kib
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        serialised = json.dumps(data, separators=(",", ":"))
        if len(serialised) > self.max_kib * 1024:
            self.fail("too_large", limit=self.max_kib)
        if "\\u0000" in serialised:  # PostgreSQL's jsonb cannot hold NUL
            self.fail("null_characters")
        return data


class StrictSerializerMixin:
    """Reject unknown keys (``"Unknown field."``) and known read-only keys (``"This field cannot be changed."``)."""

    read_only_names: frozenset[str] = frozenset()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
            errors: dict[str, list[str]] = {}
            for key in data:
                if key in writable:
                    continue
                if key in self.read_only_names or key in self.fields:  # type: ignore[attr-defined]
                    errors[key] = ["This field cannot be changed."]
                else:
                    errors[key] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class CopiedFieldsSerializer(serializers.Serializer):
    """A serializer whose declared fields are copied for each instance, not rebuilt (the request and query
    serializers: one is made per request)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        """The declared fields, copied for this instance.

        DRF deep-copies them, which runs every field's ``__init__`` again (0.65 ms for the adapter serializers, an
        eighth of a create; 0.3 ms for ``similar``'s query, whose bounded numbers build their validators again). A
        shallow copy is enough for a field: ``bind()`` only sets attributes on the copy, and its validators,
        messages and choices are only read. Nested serializers, whose state is per instance, are still deep-copied;
        a list field's child is shared, read-only, like the validators.
        """
        return {
            name: copy.deepcopy(field) if isinstance(field, serializers.BaseSerializer) else copy.copy(field)
            for name, field in self._declared_fields.items()
        }


class StrictSerializer(StrictSerializerMixin, CopiedFieldsSerializer):
    pass
