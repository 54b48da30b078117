"""Rendered adapter pages are cached per catalogue version and never served stale."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from adapters.models import Adapter, CatalogueState
from adapters.selectors import catalogue_version
from loraforge.response_cache import ResponseCache, response_cache
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/adapters"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache = response_cache("adapters")
    cache.clear()
    return cache


def names(api, query: str = "") -> list[str]:
    return [item["name"] for item in api.get(f"{URL}{query}").json()["items"]]


def test_repeated_reads_are_served_from_the_cache(api, fresh_cache):
    AdapterFactory(name="Alpha")
    assert names(api) == ["Alpha"]
    hits = fresh_cache.hits
    assert names(api) == ["Alpha"]
    assert fresh_cache.hits == hits + 1


@pytest.mark.parametrize(
    "write",
    [
        lambda adapter: Adapter.objects.filter(pk=adapter.pk).update(name="Beta"),
        lambda adapter: connection.cursor().execute("UPDATE adapters_adapter SET name = 'Beta'"),
        lambda adapter: AdapterFactory(name="Beta") and Adapter.objects.filter(pk=adapter.pk).delete(),
    ],
    ids=["queryset-update", "raw-sql", "insert-and-delete"],
)
def test_every_kind_of_write_invalidates(api, write):
    adapter = AdapterFactory(name="Alpha")
    assert names(api) == ["Alpha"]
    before = catalogue_version()
    write(adapter)
    assert catalogue_version() > before
    assert names(api) == ["Beta"]


def test_detail_and_tags_follow_writes(api):
    adapter = AdapterFactory(name="Alpha", tags=["anime"])
    assert api.get(f"{URL}/{adapter.pk}").json()["adapter"]["name"] == "Alpha"
    assert api.get(f"{URL}/tags").json()["counts"] == {"anime": 1}
    body = json.dumps({"name": "Beta", "tags": ["ink"]})
    api.patch(f"{URL}/{adapter.pk}", data=body, content_type="application/json")
    assert api.get(f"{URL}/{adapter.pk}").json()["adapter"]["name"] == "Beta"
    assert api.get(f"{URL}/tags").json()["counts"] == {"ink": 1}


def test_queries_are_cached_separately(api):
    AdapterFactory(name="Alpha", active=True)
    AdapterFactory(name="Beta")
    assert names(api, "?active=true") == ["Alpha"]
    assert names(api, "?active=false") == ["Beta"]
    assert names(api) == ["Alpha", "Beta"]


def test_validation_errors_are_not_cached(api, fresh_cache):
    assert api.get(f"{URL}?sort=nope").status_code == 400
    assert api.get(f"{URL}?sort=nope").status_code == 400
    assert fresh_cache.hits == 0


def test_browsable_api_is_rendered_normally(admin_client, fresh_cache):
    AdapterFactory(name="Alpha")
    response = admin_client.get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Alpha" in response.content
    assert fresh_cache.hits == fresh_cache.misses == 0


def test_without_the_state_row_nothing_is_cached(api, fresh_cache):
    CatalogueState.objects.all().delete()
    AdapterFactory(name="Alpha")
    assert names(api) == ["Alpha"]
    assert names(api) == ["Alpha"]
    assert fresh_cache.hits == fresh_cache.misses == 0


def test_a_disabled_cache_renders_every_time():
    cache = ResponseCache(0)
    calls = []
    for _ in range(2):
        cache.get_or_render("k", lambda: calls.append(1) or b"x")
    assert len(calls) == 2


def test_the_lru_is_bounded():
    cache = ResponseCache(2)
    for key in ("a", "b", "c"):
        cache.get_or_render(key, lambda key=key: key.encode())
    assert cache.get_or_render("a", lambda: b"again") == b"again"
    assert cache.get_or_render("c", lambda: b"never") == b"c"


def test_a_new_version_drops_the_entries_of_the_old_one():
    cache = ResponseCache(10)
    for key in ("a", "b"):
        cache.get_or_render((1, key), lambda key=key: key.encode(), version=1)
    assert len(cache._entries) == 2
    assert cache.get_or_render((2, "a"), lambda: b"a2", version=2) == b"a2"
    assert list(cache._entries) == [(2, "a")]  # nobody could read the version-1 bodies any more
    assert cache.get_or_render((2, "a"), lambda: b"never", version=2) == b"a2"


def test_a_body_rendered_for_a_replaced_version_is_not_kept():
    cache = ResponseCache(10)

    def render_while_a_write_lands() -> bytes:
        cache.get_or_render((2, "other"), lambda: b"new", version=2)  # another request saw the next version
        return b"old"

    assert cache.get_or_render((1, "a"), render_while_a_write_lands, version=1) == b"old"
    assert list(cache._entries) == [(2, "other")]


def test_the_row_count_follows_every_write():
    from adapters.selectors import adapter_total

    start = adapter_total()
    first, second = AdapterFactory(), AdapterFactory()
    Adapter.objects.bulk_create(
        [Adapter(name=f"Bulk {n}", sdnext_name=f"bulk_{n}", file_path=f"/b/{n}") for n in range(3)]
    )
    assert adapter_total() == start + 5
    Adapter.objects.filter(pk__in=[first.pk, second.pk]).delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM adapters_adapter WHERE file_path = '/b/0'")
    assert adapter_total() == start + 2 == Adapter.objects.count()


def test_list_total_comes_from_the_row_count(api, django_assert_max_num_queries):
    AdapterFactory.create_batch(3)
    CatalogueState.objects.filter(pk=1).update(row_count=42)  # proves where "total" comes from
    body = api.get(f"{URL}?per_page=2").json()
    assert (body["total"], body["filtered"], len(body["items"])) == (42, 42, 2)


def test_deep_pages_match_a_plain_offset(api):
    from loraforge.pagination import DEFERRED_JOIN_OFFSET

    rows = [Adapter(name=f"Deep {n:04d}", sdnext_name=f"deep_{n}", file_path=f"/d/{n}") for n in range(560)]
    for row in rows:
        row.refresh_indexes()
    Adapter.objects.bulk_create(rows)
    page = DEFERRED_JOIN_OFFSET // 50 + 1  # the first page read by deferred join
    body = api.get(f"{URL}?per_page=50&page={page}&sort=name_desc").json()
    expected = list(Adapter.objects.order_by("-name").values_list("name", flat=True)[(page - 1) * 50 : page * 50])
    assert [item["name"] for item in body["items"]] == expected
    assert len(expected) == 50
