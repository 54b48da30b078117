"""The prompt composition service (SPEC 6.1), called directly."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from adapters.composition import format_weight, prompt_compose
from adapters.models import Adapter
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


def active(name: str, sdnext_name: str, weight: float = 1.0, ordinal: int | None = None, **fields):
    return AdapterFactory(name=name, sdnext_name=sdnext_name, weight=weight, ordinal=ordinal, active=True, **fields)


# --- the worked examples of SPEC 6.1 ----------------------------------------------------------


def test_example_a_ordering_dedupe_and_formatting():
    active("Celestial Anime Portraits", "celestial_anime_v2", 0.75, 2, base_family="sdxl")
    ink = active("Ink Sketch", "ink-sketch", 1.0, 1, base_family="sdxl")
    active("detail tweaker", "add_detail", 0.1234, None, base_family="sdxl")
    old = active("Old Detail", "add_detail", 0.5, None, base_family="sdxl")
    active("Zero Glow", "zero_glow", 0, None, base_family="sdxl")

    result = prompt_compose(prefix="masterpiece, 1girl", suffix="soft lighting")

    assert result.prompt == (
        "masterpiece, 1girl <lora:ink-sketch:1> <lora:celestial_anime_v2:0.75> <lora:add_detail:0.5> "
        "<lora:zero_glow:0> soft lighting"
    )
    assert result.tokens == [
        "<lora:ink-sketch:1>",
        "<lora:celestial_anime_v2:0.75>",
        "<lora:add_detail:0.5>",
        "<lora:zero_glow:0>",
    ]
    assert result.warnings == [
        "Duplicate sdnext_name 'add_detail' (detail tweaker, Old Detail): kept weight 0.5",
        "Adapters with zero weight: Zero Glow",
    ]
    assert result.triggers == []
    assert result.adapters[0] == {"id": ink.pk, "name": "Ink Sketch", "sdnext_name": "ink-sketch", "weight": 1.0}
    assert result.adapters[2]["id"] == old.pk


def test_example_b_triggers_and_base_model_mismatch():
    active("Pony Style", "pony_style", 0.8, 1, base_family="sdxl", triggers=["pony style"])
    active(
        "SD15 Ink",
        "sd15_ink",
        1.2345,
        None,
        base_family="sd1",
        triggers=[],
        activation_text="ink drawing",
        missing_since=timezone.now(),
    )

    result = prompt_compose(prefix="a cat", include_triggers=True)

    assert result.prompt == "a cat <lora:pony_style:0.8> <lora:sd15_ink:1.235> pony style, ink drawing"
    assert result.triggers == ["pony style", "ink drawing"]
    assert result.warnings == [
        "Adapter files missing: SD15 Ink",
        "Base model mismatch among active adapters: sdxl (Pony Style); sd1 (SD15 Ink)",
    ]


def test_example_c_nothing_active():
    AdapterFactory(active=False)

    result = prompt_compose(prefix="hello")

    assert result.prompt == "hello"
    assert result.tokens == []
    assert result.adapters == []
    assert result.warnings == ["No active adapters found for composition"]


# --- weight formatting (step 5) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "printed"),
    [
        (1, "1"),
        (1.0, "1"),
        (0.75, "0.75"),
        (0.1234, "0.123"),
        (0.1235, "0.124"),
        (1.2345, "1.235"),
        (-0.5, "-0.5"),
        (0, "0"),
        (-0.0004, "0"),
    ],
)
def test_weight_formatting(weight, printed):
    assert format_weight(weight) == printed


@pytest.mark.parametrize(("weight", "printed"), [(-0.0005, "-0.001"), (-1.2345, "-1.235"), (2.5, "2.5"), (-0.0, "0")])
def test_weight_rounding_is_half_away_from_zero(weight, printed):
    assert format_weight(weight) == printed


def test_tokens_use_the_formatted_weight():
    active("A", "a", 1.2345)
    active("B", "b", -0.0004)

    result = prompt_compose()

    assert result.tokens == ["<lora:a:1.235>", "<lora:b:0>"]
    assert [summary["weight"] for summary in result.adapters] == [1.235, 0.0]
    assert result.warnings == ["Adapters with zero weight: B"]


# --- input set and ordering -------------------------------------------------------------------


def test_order_is_ordinal_then_casefolded_name_then_id():
    low, high = uuid.UUID(int=1), uuid.UUID(int=2)
    active("same", "same_b", ordinal=None, id=high, version="b")
    active("same", "same_a", ordinal=None, id=low, version="a")
    active("beta", "beta", ordinal=None)
    active("Alpha", "alpha", ordinal=None)
    active("zulu", "zulu", ordinal=5)
    active("yankee", "yankee", ordinal=-3)
    active("xray", "xray", ordinal=0)

    result = prompt_compose()

    assert [summary["sdnext_name"] for summary in result.adapters] == [
        "yankee",
        "xray",
        "zulu",
        "alpha",
        "beta",
        "same_a",
        "same_b",
    ]


def test_name_order_uses_casefold():
    active("STRASSE C", "upper", ordinal=1)
    active("strasse b", "plain", ordinal=1)
    active("straße a", "eszett", ordinal=1)

    result = prompt_compose()

    assert [summary["sdnext_name"] for summary in result.adapters] == ["eszett", "plain", "upper"]


def test_without_ids_only_active_adapters_are_composed():
    active("On", "on")
    AdapterFactory(name="Off", sdnext_name="off", active=False)

    assert prompt_compose().tokens == ["<lora:on:1>"]


def test_adapter_ids_include_inactive_adapters():
    inactive = AdapterFactory(name="Off", sdnext_name="off", active=False, weight=0.5)
    active("On", "on")

    result = prompt_compose(adapter_ids=[inactive.pk])

    assert result.tokens == ["<lora:off:0.5>"]
    assert result.warnings == []


def test_unknown_adapter_ids_are_reported_in_request_order():
    known = active("Known", "known")
    first, second = uuid.uuid4(), uuid.uuid4()

    result = prompt_compose(adapter_ids=[first, known.pk, second, first])

    assert result.tokens == ["<lora:known:1>"]
    assert result.warnings == [f"Unknown adapter ids: {first}, {second}"]


def test_only_unknown_ids_warn_that_no_adapters_were_found():
    missing = uuid.uuid4()

    result = prompt_compose(adapter_ids=[missing])

    assert result.prompt == ""
    assert result.warnings == ["No adapters found for composition", f"Unknown adapter ids: {missing}"]


def test_empty_adapter_ids_compose_nothing():
    active("On", "on")

    result = prompt_compose(adapter_ids=[])

    assert result.tokens == []
    assert result.warnings == ["No adapters found for composition"]


def test_input_set_is_loaded_with_one_query(django_assert_num_queries):
    for index in range(5):
        active(f"A{index}", f"a{index}", triggers=["t"])

    with django_assert_num_queries(1):
        prompt_compose(include_triggers=True)


# --- weights ------------------------------------------------------------------------------------


def test_weight_override_replaces_the_adapter_weight():
    adapter = active("A", "a", 0.3)

    result = prompt_compose(weight_overrides={adapter.pk: -1.5})

    assert result.tokens == ["<lora:a:-1.5>"]
    assert result.adapters[0]["weight"] == -1.5


def test_weight_overrides_for_ids_not_composed_are_ignored():
    composed = active("A", "a", 0.3)
    other = AdapterFactory(name="B", sdnext_name="b", active=False)

    result = prompt_compose(adapter_ids=[composed.pk], weight_overrides={other.pk: 2.0, uuid.uuid4(): 3.0})

    assert result.tokens == ["<lora:a:0.3>"]
    assert result.warnings == []


# --- skipping and de-duplication --------------------------------------------------------------


def test_reserved_character_names_are_skipped_with_a_warning():
    active("Colon", "bad:name", ordinal=1)
    active("Angle", "a<b>", ordinal=2)
    active("Break", "line\nbreak", ordinal=3)
    active("Empty", "", ordinal=4)
    active("Fine", "fine", ordinal=5)

    result = prompt_compose()

    assert result.tokens == ["<lora:fine:1>"]
    assert result.warnings == [
        "Skipped adapters whose sdnext_name contains reserved characters: Colon, Angle, Break, Empty"
    ]


def test_duplicate_survivor_takes_the_first_members_position():
    active("First", "dup", 0.2, ordinal=1)
    active("Middle", "middle", 1.0, ordinal=2)
    heavy = active("Last", "dup", 0.9, ordinal=3)

    result = prompt_compose()

    assert result.tokens == ["<lora:dup:0.9>", "<lora:middle:1>"]
    assert result.adapters[0]["id"] == heavy.pk
    assert result.warnings == ["Duplicate sdnext_name 'dup' (First, Last): kept weight 0.9"]


def test_duplicate_tie_keeps_the_earlier_adapter():
    earlier = active("Earlier", "dup", 1.0, ordinal=1)
    active("Later", "dup", 1.0, ordinal=2)

    result = prompt_compose()

    assert [summary["id"] for summary in result.adapters] == [earlier.pk]
    assert result.warnings == ["Duplicate sdnext_name 'dup' (Earlier, Later): kept weight 1"]


def test_duplicates_compare_effective_weights():
    active("Earlier", "dup", 1.0, ordinal=1)
    later = active("Later", "dup", 0.1, ordinal=2)

    result = prompt_compose(weight_overrides={later.pk: 2.0})

    assert result.tokens == ["<lora:dup:2>"]
    assert result.warnings == ["Duplicate sdnext_name 'dup' (Earlier, Later): kept weight 2"]


def test_dedupe_is_case_sensitive():
    active("Upper", "Style", ordinal=1)
    active("Lower", "style", ordinal=2)

    result = prompt_compose()

    assert result.tokens == ["<lora:Style:1>", "<lora:style:1>"]
    assert result.warnings == []


# --- triggers ---------------------------------------------------------------------------------


def test_triggers_are_omitted_unless_requested():
    active("A", "a", triggers=["alpha look"])

    result = prompt_compose()

    assert result.triggers == []
    assert result.prompt == "<lora:a:1>"


def test_trigger_sources_fall_back_to_activation_text_then_three_trained_words():
    active("A", "a", ordinal=1, triggers=["curated"], activation_text="ignored", trained_words=["ignored too"])
    active("B", "b", ordinal=2, activation_text="activation phrase", trained_words=["ignored"])
    active("C", "c", ordinal=3, activation_text="   ", trained_words=["w1", "w2", "w3", "w4"])

    result = prompt_compose(include_triggers=True)

    assert result.triggers == ["curated", "activation phrase", "w1", "w2", "w3"]
    assert result.prompt == "<lora:a:1> <lora:b:1> <lora:c:1> curated, activation phrase, w1, w2, w3"


def test_triggers_contained_in_prefix_or_suffix_are_dropped():
    active("A", "a", ordinal=1, triggers=["Pony Style", "night sky", "glow"])

    result = prompt_compose(prefix="a pony style cat", suffix="under the NIGHT SKY", include_triggers=True)

    assert result.triggers == ["glow"]
    assert result.prompt == "a pony style cat <lora:a:1> glow under the NIGHT SKY"


def test_triggers_contained_in_earlier_phrases_are_dropped():
    active("A", "a", ordinal=1, triggers=["ink drawing style"])
    active("B", "b", ordinal=2, triggers=["Ink Drawing", "ink drawing style", "sketch"])

    result = prompt_compose(include_triggers=True)

    assert result.triggers == ["ink drawing style", "sketch"]


def test_trigger_whitespace_is_collapsed():
    active("A", "a", triggers=["  pony \t  style\n", "   "])

    result = prompt_compose(include_triggers=True)

    assert result.triggers == ["pony style"]


def test_triggers_come_only_from_emitted_adapters():
    active("Loser", "dup", 0.1, ordinal=1, triggers=["loser phrase"])
    active("Winner", "dup", 0.9, ordinal=2, triggers=["winner phrase"])
    active("Skipped", "bad:name", ordinal=3, triggers=["skipped phrase"])

    result = prompt_compose(include_triggers=True)

    assert result.triggers == ["winner phrase"]


# --- assembly and warnings ----------------------------------------------------------------------


def test_prefix_and_suffix_are_trimmed_and_empty_parts_omitted():
    active("A", "a")

    assert prompt_compose(prefix="  hi  ", suffix="   ").prompt == "hi <lora:a:1>"


def test_missing_files_are_still_emitted_and_reported():
    active("Gone", "gone", ordinal=1, missing_since=timezone.now())
    active("Here", "here", ordinal=2)

    result = prompt_compose()

    assert result.tokens == ["<lora:gone:1>", "<lora:here:1>"]
    assert result.warnings == ["Adapter files missing: Gone"]


def test_base_model_mismatch_ignores_unknown_and_other_families():
    active("X1", "x1", ordinal=1, base_family="sdxl")
    active("U", "u", ordinal=2, base_family="unknown")
    active("O", "o", ordinal=3, base_family="other")
    active("X2", "x2", ordinal=4, base_family="sdxl")

    assert prompt_compose().warnings == []


def test_base_model_mismatch_groups_in_order_of_first_appearance():
    active("F", "f", ordinal=1, base_family="flux1")
    active("X", "x", ordinal=2, base_family="sdxl")
    active("G", "g", ordinal=3, base_family="flux1")

    assert prompt_compose().warnings == ["Base model mismatch among active adapters: flux1 (F, G); sdxl (X)"]


def test_warnings_follow_the_specified_order():
    active("Skip", "bad:name", ordinal=0)
    active("Dup One", "dup", 0.2, ordinal=1, base_family="sdxl")
    active("Dup Two", "dup", 0.0, ordinal=2, base_family="sdxl")
    active("Zero", "zero", 0.0, ordinal=3, base_family="sd1", missing_since=timezone.now())
    unknown = uuid.uuid4()
    ids = [*Adapter.objects.values_list("pk", flat=True), unknown]

    result = prompt_compose(adapter_ids=ids)

    assert result.warnings == [
        f"Unknown adapter ids: {unknown}",
        "Skipped adapters whose sdnext_name contains reserved characters: Skip",
        "Duplicate sdnext_name 'dup' (Dup One, Dup Two): kept weight 0.2",
        "Adapters with zero weight: Zero",
        "Adapter files missing: Zero",
        "Base model mismatch among active adapters: sdxl (Dup One); sd1 (Zero)",
    ]
