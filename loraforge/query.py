"""Parsing single query parameters outside FilterSets; errors are keyed by the parameter (SPEC 4.3)."""

from __future__ import annotations

from typing import TypeVar, overload

from django import forms
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from loraforge.filters import StrictBooleanFormField

T = TypeVar("T")


@overload
def query_int(request: Request, name: str, default: int) -> int: ...
@overload
def query_int(request: Request, name: str, default: None = None) -> int | None: ...
def query_int(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value, 10)
    except ValueError:
        raise ValidationError({name: ["A valid integer is required."]}) from None


def query_bool(request: Request, name: str, default: bool) -> bool:
    try:
        value = StrictBooleanFormField(required=False).clean(request.query_params.get(name))
    except forms.ValidationError as exc:
        raise ValidationError({name: list(exc.messages)}) from None
    return default if value is None else bool(value)
