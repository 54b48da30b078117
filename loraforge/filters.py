"""Query-parameter parsing shared by every FilterSet (SPEC 4.3)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.drainage import set_override

from loraforge.env import FALSE_VALUES, TRUE_VALUES


class StrictBooleanFormField(forms.Field):
    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        lowered = str(value).strip().lower()
        if lowered in TRUE_VALUES:
            return True
        if lowered in FALSE_VALUES:
            return False
        raise forms.ValidationError("Must be a boolean (true/false/1/0/yes/no/on/off).")


class BoolFilter(django_filters.Filter):
    field_class = StrictBooleanFormField


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # Django's IntegerField, which the schema documents for such filters


class BoundedIntegerFormField(forms.IntegerField):
    """A base-10 integer within the compared column's range (Django's ``IntegerField`` unless narrower)."""

    def __init__(self, *args: Any, min_value: int = INT32_MIN, max_value: int = INT32_MAX, **kwargs: Any) -> None:
        super().__init__(*args, min_value=min_value, max_value=max_value, **kwargs)


class IntegerFilter(django_filters.Filter):
    """An integer query parameter (django-filter's ``NumberFilter`` would take decimals and any magnitude),
    documented with exactly the bounds it enforces."""

    field_class = BoundedIntegerFormField

    def __init__(self, *args: Any, min_value: int = INT32_MIN, max_value: int = INT32_MAX, **kwargs: Any) -> None:
        super().__init__(*args, min_value=min_value, max_value=max_value, **kwargs)
        set_override(self, "field", {"type": "integer", "minimum": min_value, "maximum": max_value})


class DateTimeBoundFormField(forms.Field):
    """ISO 8601 datetimes, or ``YYYY-MM-DD`` meaning the start (or end) of that day in UTC."""

    def __init__(self, *args: Any, end_of_day: bool = False, **kwargs: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        text = str(value).strip()
        # A date first: parse_datetime would also read "2025-03-01" (as midnight), losing the end of the day.
        try:
            day = parse_date(text)
        except ValueError:
            day = None
        if day is not None:
            moment = datetime.combine(day, time.max if self.end_of_day else time.min)
            return timezone.make_aware(moment, UTC)
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError("Enter an ISO 8601 datetime or a YYYY-MM-DD date.")
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class DateTimeBoundFilter(django_filters.Filter):
    field_class = DateTimeBoundFormField


def choice_error(name: str, choices: list[str] | tuple[str, ...]) -> dict[str, str]:
    return {"invalid_choice": f"{name} must be one of: {', '.join(choices)}"}
