"""The shared ``FilterSet``: django-filter's behaviour without per-request deep copies."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from adapters.filters import AdapterFilterSet
from adapters.models import Adapter
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


def _filtered(query: str) -> list[str]:
    filterset = AdapterFilterSet(data=QueryDict(query), queryset=Adapter.objects.all())
    assert filterset.is_valid(), filterset.errors
    return [adapter.name for adapter in filterset.qs]


def test_each_filterset_has_its_own_filters_bound_to_it():
    first = AdapterFilterSet(data=QueryDict("search=a"), queryset=Adapter.objects.all())
    second = AdapterFilterSet(data=QueryDict("search=b"), queryset=Adapter.objects.all())
    for name, declared in AdapterFilterSet.base_filters.items():
        mine, theirs = first.filters[name], second.filters[name]
        assert mine is not declared
        assert mine is not theirs
        assert mine.parent is first
        assert theirs.parent is second
        assert not hasattr(declared, "parent")
    # A method filter calls its own filterset's method, not the declared filter's or another request's.
    assert first.filters["search"].filter.f is first.filters["search"]
    assert first.filters["search"].filter.method.__self__ is first


def test_the_form_class_is_built_once_and_validates_each_request_on_its_own():
    first = AdapterFilterSet(data=QueryDict("sort=usage"), queryset=Adapter.objects.all())
    second = AdapterFilterSet(data=QueryDict("sort=nonsense"), queryset=Adapter.objects.all())
    assert first.get_form_class() is second.get_form_class()
    assert first.is_valid()
    assert not second.is_valid()
    assert first.form.fields["sort"] is not second.form.fields["sort"]
    assert "sort" in second.errors
    assert not first.errors


def test_filters_still_answer_like_django_filter():
    AdapterFactory(name="Ink Portrait", description="portrait in ink", active=True)
    AdapterFactory(name="Neon City", description="city at night", active=False)
    AdapterFactory(name="Portrait Glow", description="glow", active=False)
    assert _filtered("search=portrait") == ["Ink Portrait", "Portrait Glow"]
    assert _filtered("search=portrait&active=false") == ["Portrait Glow"]
    assert _filtered("active_only=true") == ["Ink Portrait"]
    assert _filtered("sort=name_desc") == ["Portrait Glow", "Neon City", "Ink Portrait"]
