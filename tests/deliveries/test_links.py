"""Adapter links of delivery jobs (SPEC 6.2.7): parsed from a raw prompt, or the composed adapters."""

from __future__ import annotations

import pytest

from deliveries.models import DeliveryJob
from tests.deliveries.conftest import post
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


def links_of(job: DeliveryJob) -> list[tuple[object, str, str, float, int]]:
    return [
        (link.adapter_id, link.adapter_name, link.sdnext_name, link.weight, link.position)
        for link in job.adapter_links.order_by("position")
    ]


def deliver(client, prompt: str) -> DeliveryJob:
    response = post(client, "/api/v1/deliveries", {"prompt": prompt, "mode": "cli"})
    assert response.status_code == 201, response.content
    return DeliveryJob.objects.get(pk=response.json()["delivery_id"])


def compose(client, body: dict) -> DeliveryJob:
    response = post(client, "/api/v1/compose", {**body, "delivery": {"mode": "cli"}})
    assert response.status_code == 200, response.content
    return DeliveryJob.objects.get(pk=response.json()["delivery"]["id"])


# --- raw prompts ----------------------------------------------------------------------------


def test_prompt_tags_link_adapters_with_their_weights_in_order(api):
    ink = AdapterFactory(name="Ink", sdnext_name="ink-sketch")
    glow = AdapterFactory(name="Glow", sdnext_name="glow")

    job = deliver(api, "a cat <lora:glow:0.75> and <lora:ink-sketch> <lora:unknown:1>")

    assert links_of(job) == [(glow.pk, "Glow", "glow", 0.75, 0), (ink.pk, "Ink", "ink-sketch", 1.0, 1)]


@pytest.mark.parametrize(
    ("tag", "weight"),
    [
        ("<lora:glow:-0.5>", -0.5),
        ("<lora:glow:te=1:0.6>", 0.6),
        ("<lora:glow:abc>", 1.0),
        ("<lora:glow:1.2:0.3>", 1.2),
        ("<lora:glow:nan:0.4>", 0.4),
    ],
)
def test_weight_is_the_first_numeric_argument(api, tag, weight):
    AdapterFactory(sdnext_name="glow")

    job = deliver(api, f"x {tag}")

    assert [link.weight for link in job.adapter_links.all()] == [weight]


def test_names_match_exactly(api):
    AdapterFactory(sdnext_name="Glow")

    assert links_of(deliver(api, "<lora:glow:1>")) == []


def test_a_name_shared_by_several_adapters_links_the_first_in_composition_order(api):
    AdapterFactory(name="B late", sdnext_name="shared", ordinal=None)
    first = AdapterFactory(name="Z ordered", sdnext_name="shared", ordinal=1)
    AdapterFactory(name="A late", sdnext_name="shared", ordinal=None)

    assert [link.adapter_id for link in deliver(api, "<lora:shared:1>").adapter_links.all()] == [first.pk]


def test_a_tag_repeated_in_the_prompt_is_linked_at_each_position(api):
    glow = AdapterFactory(sdnext_name="glow")

    job = deliver(api, "<lora:glow:0.5> <lora:glow:0.7>")

    assert [(link.adapter_id, link.weight, link.position) for link in job.adapter_links.all()] == [
        (glow.pk, 0.5, 0),
        (glow.pk, 0.7, 1),
    ]


def test_linked_adapters_appear_in_the_delivery(api):
    glow = AdapterFactory(name="Glow", sdnext_name="glow")
    job = deliver(api, "<lora:glow:0.25>")

    adapters = api.get(f"/api/v1/deliveries/{job.pk}").json()["delivery"]["adapters"]

    assert adapters == [{"id": str(glow.pk), "name": "Glow", "sdnext_name": "glow", "weight": 0.25}]


def test_deleting_an_adapter_keeps_the_link_snapshot(api):
    glow = AdapterFactory(name="Glow", sdnext_name="glow")
    job = deliver(api, "<lora:glow:0.25>")
    glow.delete()

    adapters = api.get(f"/api/v1/deliveries/{job.pk}").json()["delivery"]["adapters"]

    assert adapters == [{"id": None, "name": "Glow", "sdnext_name": "glow", "weight": 0.25}]


# --- compose --------------------------------------------------------------------------------


def test_compose_links_the_composed_adapters_with_effective_weights_and_positions(api):
    ink = AdapterFactory(name="Ink", sdnext_name="ink", weight=1.0, ordinal=1, active=True)
    celestial = AdapterFactory(name="Celestial", sdnext_name="celestial", weight=0.75, ordinal=2, active=True)
    AdapterFactory(name="Off", sdnext_name="off", active=False)

    job = compose(api, {"prefix": "a cat", "weight_overrides": {str(celestial.pk): 0.4}})

    assert job.prompt == "a cat <lora:ink:1> <lora:celestial:0.4>"
    assert links_of(job) == [(ink.pk, "Ink", "ink", 1.0, 0), (celestial.pk, "Celestial", "celestial", 0.4, 1)]


def test_compose_links_only_the_survivor_of_a_duplicate_name(api):
    AdapterFactory(name="Detail A", sdnext_name="add_detail", weight=0.1234, active=True)
    kept = AdapterFactory(name="Detail B", sdnext_name="add_detail", weight=0.5, active=True)

    job = compose(api, {})

    assert links_of(job) == [(kept.pk, "Detail B", "add_detail", 0.5, 0)]


def test_compose_does_not_link_adapters_with_reserved_names(api):
    AdapterFactory(name="Broken", sdnext_name="bad:name", active=True)
    good = AdapterFactory(name="Good", sdnext_name="good", active=True)

    job = compose(api, {})

    assert [link.adapter_id for link in job.adapter_links.all()] == [good.pk]


def test_compose_links_do_not_depend_on_tags_in_the_prefix(api):
    AdapterFactory(name="Other", sdnext_name="other")
    good = AdapterFactory(name="Good", sdnext_name="good", active=True)

    job = compose(api, {"prefix": "<lora:other:1>"})

    assert [link.adapter_id for link in job.adapter_links.all()] == [good.pk]
