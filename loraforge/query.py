"""Parsing single query parameters outside FilterSets; errors are keyed by the parameter (SPEC 4.3).

As everywhere in the API, an empty value (``?page=``) is the same as leaving the parameter out."""

from __future__ import annotations

from typing import TypeVar, overload

from django import forms
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from loraforge.filters import INT64_MAX, INT64_MIN, StrictBooleanFormField

T = TypeVar("T")


@overload
def query_int(request: Request, name: str, default: int, *, bounded: bool = True) -> int: ...
@overload
def query_int(request: Request, name: str, default: None = None, *, bounded: bool = True) -> int | None: ...
def query_int(request: Request, name: str, default: int | None = None, *, bounded: bool = True) -> int | None:
    """A base-10 integer; ``bounded`` (a value that reaches the database) keeps it within signed 64 bits."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value, 10)
    except ValueError:
        raise ValidationError({name: ["A valid integer is required."]}) from None
    if bounded and not INT64_MIN <= number <= INT64_MAX:
        raise ValidationError({name: [f"Must be between {INT64_MIN} and {INT64_MAX}."]})
    return number


def query_bool(request: Request, name: str, default: bool) -> bool:
    try:
        value = StrictBooleanFormField(required=False).clean(request.query_params.get(name))
    except forms.ValidationError as exc:
        raise ValidationError({name: list(exc.messages)}) from None
    return default if value is None else bool(value)
