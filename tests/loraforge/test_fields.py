"""``StrictCharField`` refuses surrogate characters exactly as DRF's ``CharField`` does, by a faster check."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from loraforge.fields import StrictCharField, SurrogateCharactersValidator


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
