"""The per-process lexical index follows the catalogue without an explicit rebuild (SPEC 6.7.1): creates,
updates, deletes and scans show up in the next response; an unchanged catalogue is served from the cache."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.factories import AdapterFactory
from tests.lora_files import write_safetensors

BASE = "/api/v1/recommendations"


def prompt_names(api, prompt: str) -> list[str]:
    response = api.post(f"{BASE}/for-prompt", data=json.dumps({"prompt": prompt}), content_type="application/json")
    assert response.status_code == 200, response.content
    return [item["lora_name"] for item in response.json()["recommendations"]]


@pytest.mark.django_db
def test_a_created_adapter_is_recommended_next_time(api):
    AdapterFactory(name="Quiet Harbour", sdnext_name="harbour")
    assert prompt_names(api, "lighthouse") == []
    AdapterFactory(name="Lighthouse at Dusk", sdnext_name="lighthouse")
    assert prompt_names(api, "lighthouse") == ["Lighthouse at Dusk"]


@pytest.mark.django_db
def test_an_updated_adapter_is_recommended_by_its_new_text(api):
    adapter = AdapterFactory(name="Quiet Harbour", sdnext_name="harbour")
    assert prompt_names(api, "lighthouse") == []
    body = {"description": "A lighthouse keeping watch", "tags": ["lighthouse"]}
    response = api.patch(f"/api/v1/adapters/{adapter.pk}", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    assert prompt_names(api, "lighthouse") == ["Quiet Harbour"]


@pytest.mark.django_db
def test_a_renamed_adapter_is_listed_under_its_new_name(api):
    adapter = AdapterFactory(name="Quiet Harbour", sdnext_name="harbour")
    assert prompt_names(api, "harbour") == ["Quiet Harbour"]
    body = {"name": "Harbour at Night"}
    api.patch(f"/api/v1/adapters/{adapter.pk}", data=json.dumps(body), content_type="application/json")
    assert prompt_names(api, "harbour") == ["Harbour at Night"]


@pytest.mark.django_db
def test_a_deleted_adapter_is_no_longer_recommended(api):
    kept = AdapterFactory(name="Harbour at Dawn", sdnext_name="dawn")
    gone = AdapterFactory(name="Harbour at Dusk", sdnext_name="dusk")
    assert sorted(prompt_names(api, "harbour")) == [kept.name, gone.name]
    assert api.delete(f"/api/v1/adapters/{gone.pk}").status_code == 204
    assert prompt_names(api, "harbour") == [kept.name]


@pytest.mark.django_db
def test_a_deleted_target_is_not_found(api):
    target = AdapterFactory(name="Harbour at Dawn")
    assert api.get(f"{BASE}/similar/{target.pk}").status_code == 200
    api.delete(f"/api/v1/adapters/{target.pk}")
    assert api.get(f"{BASE}/similar/{target.pk}").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_adapters_a_scan_imports_are_recommended(api, lora_dir: Path):
    AdapterFactory(name="Quiet Harbour", sdnext_name="harbour")
    assert prompt_names(api, "lighthouse") == []
    write_safetensors(lora_dir / "lighthouse_at_dusk.safetensors", seed=3)
    call_command("import_loras", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    assert "lighthouse_at_dusk" in prompt_names(api, "lighthouse")


@pytest.mark.django_db
def test_the_cache_hit_rate_rises_while_nothing_changes(api):
    target = AdapterFactory(name="Harbour at Dawn")
    AdapterFactory(name="Harbour at Dusk")
    rates = []
    for _ in range(3):
        api.get(f"{BASE}/similar/{target.pk}")
        rates.append(api.get(f"{BASE}/stats").json()["cache_hit_rate"])
    assert rates[0] < rates[1] < rates[2]


@pytest.mark.django_db
def test_a_change_costs_a_rebuild_in_the_cache_hit_rate(api):
    target = AdapterFactory(name="Harbour at Dawn")
    api.get(f"{BASE}/similar/{target.pk}")  # built: 0 of 1
    api.get(f"{BASE}/similar/{target.pk}")  # served: 1 of 2
    AdapterFactory(name="Harbour at Dusk")
    api.get(f"{BASE}/similar/{target.pk}")  # rebuilt: 1 of 3
    assert api.get(f"{BASE}/stats").json()["cache_hit_rate"] == pytest.approx(2 / 4, abs=1e-4)  # stats: 2 of 4


@pytest.mark.django_db
@pytest.mark.parametrize("operation", ["similar", "works-well-with"])
def test_a_target_newer_than_the_index_read_is_answered_from_the_index_that_holds_it(monkeypatch, operation):
    """The index is read, then the target turns out to be newer than it (created after its fingerprint was read):
    the request uses the index that follows it, for the target's row and every other row alike."""
    from recommendations.index import index_current
    from recommendations.services import recommend
    from tests.recommendations.test_algorithms import job

    older = [AdapterFactory(name=f"Ink Harbour {n}", description="ink wash harbour at dusk") for n in range(6)]
    stale = index_current(semantic=False)
    target = AdapterFactory(name="Ink Harbour Target", description="ink wash harbour at dawn")
    job(target, older[2])
    asks = iter([stale])
    monkeypatch.setattr(recommend, "index_current", lambda **kwargs: next(asks, None) or index_current(**kwargs))
    ask = recommend.recommend_similar if operation == "similar" else recommend.recommend_works_well_with
    answer = ask(adapter=target, record=False)
    monkeypatch.undo()
    expected = ask(adapter=target, record=False)
    assert answer["recommendations"] == expected["recommendations"]
    assert answer["recommendations"]  # something was compared
