"""``StrictCharField`` refuses surrogate characters exactly as DRF's ``CharField`` does, by a faster check; a
``CopiedFieldsSerializer`` validates as DRF's serializers do, with its fields copied instead of rebuilt."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from loraforge.fields import CopiedFieldsSerializer, StrictCharField, SurrogateCharactersValidator


def outcome(field: serializers.Field, value: str) -> tuple[str, object]:
    try:
        return "ok", field.run_validation(value)
    except serializers.ValidationError as exc:
        return "error", exc.detail


@pytest.mark.parametrize(
    "value",
    ["plain", "ünïcödé 日本 🎨", "a\ud800b", "\udfff", "é\udbff\ud800", "x" * 5000 + "\ud83d", "\ud7ff\ue000"],
    ids=["ascii", "unicode", "middle", "alone", "first-of-two", "at-the-end", "just-outside"],
)
def test_surrogates_are_refused_with_drf_s_message(value):
    assert outcome(StrictCharField(), value) == outcome(serializers.CharField(), value)


def test_the_faster_check_takes_the_place_of_drf_s_and_the_others_stay():
    ours = [type(validator) for validator in StrictCharField(max_length=3).validators]
    drf = [
        SurrogateCharactersValidator if type(validator) is ProhibitSurrogateCharactersValidator else type(validator)
        for validator in serializers.CharField(max_length=3).validators
    ]
    assert ours == drf
    assert SurrogateCharactersValidator in ours


class Bounded(CopiedFieldsSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10)
    weight = serializers.FloatField(min_value=0, max_value=1, required=False)
    flag = serializers.BooleanField(default=True)


def test_copied_fields_are_bound_to_their_own_serializer_and_the_declared_ones_stay_unbound():
    first, second = Bounded(data={"limit": 3}), Bounded(data={"limit": 60, "weight": 2})
    for name, field in first.fields.items():
        declared = Bounded._declared_fields[name]
        assert field is not declared
        assert field is not second.fields[name]
        assert field.parent is first
        assert second.fields[name].parent is second
        assert field.field_name == name
        assert declared.field_name is None  # never bound
    assert first.is_valid()
    assert dict(first.validated_data) == {"limit": 3, "flag": True}
    assert not second.is_valid()
    assert set(second.errors) == {"limit", "weight"}


def test_copied_fields_validate_as_drf_s_deep_copies_do_however_many_serializers_were_made():
    class Deep(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=50, default=10)
        weight = serializers.FloatField(min_value=0, max_value=1, required=False)
        flag = serializers.BooleanField(default=True)

    cases = [{}, {"limit": "7"}, {"limit": 0}, {"limit": 51}, {"weight": -0.1}, {"weight": "x"}, {"flag": "maybe"}]
    for _ in range(50):  # the shared validators are not added to by each copy
        Bounded(data={}).is_valid()
    for data in cases:
        ours, theirs = Bounded(data=data), Deep(data=data)
        assert ours.is_valid() == theirs.is_valid()
        assert (ours.validated_data if ours.is_valid() else ours.errors) == (
            theirs.validated_data if theirs.is_valid() else theirs.errors
        )
    assert len(Bounded().fields["limit"].validators) == len(Deep().fields["limit"].validators)
