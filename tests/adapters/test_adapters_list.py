"""``GET /adapters``: pagination envelope, filters, sorts and query count (SPEC 4.5, 5.2, 7)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adapters.models import Adapter
from loraforge.response_cache import response_cache
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/adapters"
SORT_ERROR = "sort must be one of: name, name_desc, created_at, created_at_asc, updated_at, file_size, ordinal, usage"


def listing(api, query: str = "") -> dict:
    response = api.get(f"{URL}?{query}" if query else URL)
    assert response.status_code == 200, response.content
    return response.json()


def names(api, query: str = "") -> list[str]:
    return [item["name"] for item in listing(api, query)["items"]]


def ids(api, query: str = "") -> list[str]:
    return [item["id"] for item in listing(api, query)["items"]]


def error(api, query: str) -> dict:
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:loraforge:problem:validation-error"
    return body


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n, version=4)


# --- envelope -----------------------------------------------------------------------------


def test_envelope_members(api):
    AdapterFactory.create_batch(3)
    body = listing(api)
    assert list(body) == ["items", "total", "filtered", "page", "pages", "per_page"]
    assert (body["total"], body["filtered"], body["page"], body["pages"], body["per_page"]) == (3, 3, 1, 1, 24)
    assert len(body["items"]) == 3


def test_list_items_are_adapters_without_header_metadata(api):
    adapter = AdapterFactory(header_metadata={"ss_network_dim": "32"})
    item = listing(api)["items"][0]
    assert item["id"] == str(adapter.pk)
    assert "header_metadata" not in item
    assert "tag_index" not in item
    assert "search_index" not in item


def test_default_page_size_is_24(api):
    AdapterFactory.create_batch(30)
    body = listing(api)
    assert (len(body["items"]), body["per_page"], body["pages"]) == (24, 24, 2)
    second = listing(api, "page=2")
    assert (len(second["items"]), second["page"]) == (6, 2)


def test_pages_do_not_overlap(api):
    AdapterFactory.create_batch(7)
    seen = ids(api, "per_page=3&page=1") + ids(api, "per_page=3&page=2") + ids(api, "per_page=3&page=3")
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(("page", "expected"), [("0", 1), ("-3", 1), ("1", 1)])
def test_page_below_one_is_one(api, page, expected):
    AdapterFactory()
    body = listing(api, f"page={page}")
    assert body["page"] == expected
    assert len(body["items"]) == 1


@pytest.mark.parametrize(("per_page", "expected"), [("1000", 200), ("201", 200), ("200", 200), ("0", 1), ("-5", 1)])
def test_per_page_is_clamped(api, per_page, expected):
    AdapterFactory.create_batch(2)
    assert listing(api, f"per_page={per_page}")["per_page"] == expected


def test_page_size_is_an_alias_of_per_page(api):
    AdapterFactory.create_batch(5)
    body = listing(api, "page_size=2")
    assert (body["per_page"], body["pages"], len(body["items"])) == (2, 3, 2)


def test_per_page_wins_over_page_size(api):
    AdapterFactory.create_batch(5)
    assert listing(api, "per_page=4&page_size=2")["per_page"] == 4


def test_page_beyond_the_last_is_empty_with_the_requested_page(api):
    AdapterFactory.create_batch(3)
    body = listing(api, "per_page=2&page=9")
    assert body == {"items": [], "total": 3, "filtered": 3, "page": 9, "pages": 2, "per_page": 2}


def test_huge_page_number_is_an_empty_page_not_an_error(api):
    AdapterFactory()
    body = listing(api, "page=99999999999999999999")
    assert body["items"] == []
    assert body["page"] == 99999999999999999999


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("per_page=ten", "per_page"),
        ("page_size=2.0", "page_size"),
        ("per_page=10&page_size=x", "page_size"),  # validated even when per_page wins
    ],
)
def test_non_integer_paging_is_400_keyed_by_the_parameter(api, query, key):
    body = error(api, query)
    assert list(body["errors"]) == [key]


def test_nothing_matching_has_zero_pages(api):
    AdapterFactory.create_batch(2)
    body = listing(api, "search=no-such-adapter")
    assert body == {"items": [], "total": 2, "filtered": 0, "page": 1, "pages": 0, "per_page": 24}


def test_empty_catalogue(api):
    assert listing(api) == {"items": [], "total": 0, "filtered": 0, "page": 1, "pages": 0, "per_page": 24}


def test_total_counts_all_rows_and_filtered_counts_matches(api):
    AdapterFactory.create_batch(3)
    AdapterFactory(active=True)
    body = listing(api, "active=true&per_page=1")
    assert (body["total"], body["filtered"], body["pages"]) == (4, 1, 1)


def test_pages_is_the_ceiling_of_filtered_over_per_page(api):
    AdapterFactory.create_batch(7)
    assert listing(api, "per_page=3")["pages"] == 3
    assert listing(api, "per_page=7")["pages"] == 1


# --- search -------------------------------------------------------------------------------


def test_search_matches_name_substring_case_insensitively(api):
    AdapterFactory(name="Celestial Anime Portraits")
    AdapterFactory(name="Ink Sketch")
    assert names(api, "search=ANIME") == ["Celestial Anime Portraits"]
    assert names(api, "search=stial an") == ["Celestial Anime Portraits"]


def test_search_matches_sdnext_name(api):
    AdapterFactory(name="One", sdnext_name="celestial_anime_v2")
    AdapterFactory(name="Two")
    assert names(api, "search=Anime_V2") == ["One"]


def test_search_matches_author_username(api):
    AdapterFactory(name="One", author_username="Stellar")
    AdapterFactory(name="Two", author_username="someone")
    assert names(api, "search=stellar") == ["One"]


def test_search_does_not_match_other_fields(api):
    AdapterFactory(name="One", description="anime", tags=["anime"], file_path="/srv/loras/anime.safetensors")
    assert names(api, "search=anime") == []


def test_search_does_not_match_across_field_boundaries(api):
    AdapterFactory(name="abc", sdnext_name="def", author_username=None)
    assert names(api, "search=abcdef") == []
    assert names(api, "search=cdef") == []


def test_search_treats_percent_literally(api):
    AdapterFactory(name="100% Detail")
    AdapterFactory(name="1000 Detail")
    assert names(api, "search=0%25 D") == ["100% Detail"]
    assert names(api, "search=%25") == ["100% Detail"]


def test_search_treats_underscore_literally(api):
    AdapterFactory(name="A", sdnext_name="add_detail")
    AdapterFactory(name="B", sdnext_name="addxdetail")
    assert names(api, "search=d_d") == ["A"]
    assert names(api, "search=_") == ["A"]


def test_search_treats_backslash_literally(api):
    AdapterFactory(name="back\\slash")
    AdapterFactory(name="backslash")
    assert names(api, "search=k%5Cs") == ["back\\slash"]


def test_search_is_case_insensitive_beyond_ascii(api):
    AdapterFactory(name="Über Style")
    AdapterFactory(name="Other")
    assert names(api, "search=%C3%9CBER") == ["Über Style"]
    assert names(api, "search=%C3%BCber") == ["Über Style"]


def test_blank_search_matches_everything(api):
    AdapterFactory.create_batch(2)
    assert listing(api, "search=%20%20")["filtered"] == 2
    assert listing(api, "search=")["filtered"] == 2


def test_search_longer_than_200_characters_is_400(api):
    body = error(api, "search=" + "x" * 201)
    assert list(body["errors"]) == ["search"]


def test_search_of_200_characters_is_accepted(api):
    assert listing(api, "search=" + "x" * 200)["filtered"] == 0


# --- active -------------------------------------------------------------------------------


@pytest.fixture
def active_and_inactive():
    AdapterFactory(name="On", active=True)
    AdapterFactory(name="Off", active=False)


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "TRUE"])
def test_active_only(api, active_and_inactive, value):
    assert names(api, f"active_only={value}") == ["On"]


@pytest.mark.parametrize("value", ["false", "0", "no", "off"])
def test_active_only_false_filters_nothing(api, active_and_inactive, value):
    assert names(api, f"active_only={value}") == ["Off", "On"]


def test_active_true(api, active_and_inactive):
    assert names(api, "active=true") == ["On"]


def test_active_false(api, active_and_inactive):
    assert names(api, "active=false") == ["Off"]


def test_active_only_and_active_false_match_nothing(api, active_and_inactive):
    assert names(api, "active_only=true&active=false") == []


@pytest.mark.parametrize("query", ["active=maybe", "active_only=2", "missing=perhaps", "duplicates=y", "active=truee"])
def test_invalid_booleans_are_400_keyed_by_the_parameter(api, query):
    body = error(api, query)
    assert list(body["errors"]) == [query.split("=")[0]]


# --- tags ---------------------------------------------------------------------------------


@pytest.fixture
def tagged():
    AdapterFactory(name="Anime", tags=["anime"])
    AdapterFactory(name="Anime Portrait", tags=["anime", "portrait"])
    AdapterFactory(name="Portrait", tags=["portrait"])
    AdapterFactory(name="Anime Style", tags=["anime style"])
    AdapterFactory(name="Untagged", tags=[])


def test_tags_any_is_the_default(api, tagged):
    assert names(api, "tags=anime,portrait") == ["Anime", "Anime Portrait", "Portrait"]
    assert names(api, "tags=anime,portrait&tags_mode=any") == ["Anime", "Anime Portrait", "Portrait"]


def test_tags_all(api, tagged):
    assert names(api, "tags=anime,portrait&tags_mode=all") == ["Anime Portrait"]


def test_tags_are_exact_matches(api, tagged):
    assert names(api, "tags=anim") == []
    assert names(api, "tags=anime style") == ["Anime Style"]


def test_tags_are_trimmed_and_lower_cased(api, tagged):
    assert names(api, "tags=%20ANIME%20,%20Portrait%20&tags_mode=all") == ["Anime Portrait"]


def test_tag_inner_whitespace_is_collapsed(api, tagged):
    assert names(api, "tags=Anime%20%20%20Style") == ["Anime Style"]


def test_empty_tag_entries_are_ignored(api, tagged):
    assert names(api, "tags=,anime,,&tags_mode=all") == ["Anime", "Anime Portrait"]


@pytest.mark.parametrize("value", ["", ",", " , ,"])
def test_only_empty_tag_entries_filter_nothing(api, tagged, value):
    assert listing(api, f"tags={value}")["filtered"] == 5


def test_tags_with_like_wildcards_are_literal(api):
    AdapterFactory(name="Percent", tags=["100%"])
    AdapterFactory(name="Plain", tags=["1000"])
    assert names(api, "tags=100%25") == ["Percent"]
    assert names(api, "tags=10_0") == []


def test_tags_mode_without_tags_filters_nothing(api, tagged):
    assert listing(api, "tags_mode=all")["filtered"] == 5


def test_invalid_tags_mode_is_400(api):
    body = error(api, "tags=anime&tags_mode=some")
    assert body["errors"] == {"tags_mode": ["tags_mode must be one of: any, all"]}


# --- base family / model, missing, duplicates, hash status ---------------------------------


def test_base_family(api):
    AdapterFactory(name="XL", base_family="sdxl")
    AdapterFactory(name="Fifteen", base_family="sd1")
    AdapterFactory(name="Unknown")
    assert names(api, "base_family=sdxl") == ["XL"]
    assert names(api, "base_family=unknown") == ["Unknown"]


@pytest.mark.parametrize("value", ["xx", "SDXL", "sdxl,sd1"])
def test_invalid_base_family_is_400(api, value):
    body = error(api, f"base_family={value}")
    assert list(body["errors"]) == ["base_family"]
    assert body["detail"].startswith("base_family must be one of: sd1, sd2, sdxl")


def test_base_model_is_a_case_insensitive_exact_match(api):
    AdapterFactory(name="XL", base_model="SDXL 1.0")
    AdapterFactory(name="Pony", base_model="Pony")
    AdapterFactory(name="None", base_model=None)
    assert names(api, "base_model=sdxl%201.0") == ["XL"]
    assert names(api, "base_model=SDXL") == []
    assert names(api, "base_model=pony") == ["Pony"]


def test_base_model_wildcards_are_literal(api):
    AdapterFactory(name="XL", base_model="SDXL 1.0")
    assert names(api, "base_model=SDXL_1.0") == []
    assert names(api, "base_model=SDXL%25") == []


def test_missing(api):
    AdapterFactory(name="Gone", missing_since=timezone.now())
    AdapterFactory(name="Here")
    assert names(api, "missing=true") == ["Gone"]
    assert names(api, "missing=false") == ["Here"]


def test_duplicates(api):
    AdapterFactory(name="Twin", duplicate_paths=["/srv/loras/copy.safetensors"])
    AdapterFactory(name="Single")
    assert names(api, "duplicates=true") == ["Twin"]
    assert names(api, "duplicates=false") == ["Single"]


def test_duplicates_follow_updates(api):
    adapter = AdapterFactory(name="Twin", duplicate_paths=["/srv/loras/copy.safetensors"])
    adapter.duplicate_paths = []
    adapter.save()
    assert names(api, "duplicates=true") == []


def test_hash_status(api):
    AdapterFactory(name="Done")
    AdapterFactory(name="Pending", hash_status="pending", sha256=None, autov2=None)
    assert names(api, "hash_status=pending") == ["Pending"]
    assert names(api, "hash_status=done") == ["Done"]


def test_invalid_hash_status_is_400(api):
    body = error(api, "hash_status=finished")
    assert body["errors"] == {"hash_status": ["hash_status must be one of: pending, done, error, skipped"]}


def test_filters_combine(api):
    AdapterFactory(name="Match", active=True, base_family="sdxl", tags=["anime"])
    AdapterFactory(name="Inactive", active=False, base_family="sdxl", tags=["anime"])
    AdapterFactory(name="Other Family", active=True, base_family="sd1", tags=["anime"])
    AdapterFactory(name="Untagged", active=True, base_family="sdxl")
    assert names(api, "active=true&base_family=sdxl&tags=anime&search=mat") == ["Match"]


def test_unknown_query_parameters_are_ignored(api):
    AdapterFactory()
    assert listing(api, "colour=blue")["filtered"] == 1


def test_several_invalid_parameters_are_all_reported(api):
    body = error(api, "active=maybe&sort=foo&page=x")
    assert {"active", "sort"} <= set(body["errors"])


# --- sorting ------------------------------------------------------------------------------


def test_invalid_sort_is_400_with_the_exact_message(api):
    body = error(api, "sort=foo")
    assert body["errors"] == {"sort": [SORT_ERROR]}
    assert body["detail"] == SORT_ERROR


@pytest.mark.parametrize("value", ["NAME", "name,usage", "-name"])
def test_sort_values_are_exact(api, value):
    assert error(api, f"sort={value}")["errors"] == {"sort": [SORT_ERROR]}


def test_default_sort_is_name(api):
    for name in ("beta", "Gamma", "alpha"):
        AdapterFactory(name=name)
    assert names(api) == ["alpha", "beta", "Gamma"]
    assert names(api, "sort=") == ["alpha", "beta", "Gamma"]


def test_sort_name_is_case_insensitive_with_ties_broken_by_id(api):
    AdapterFactory(id=uid(3), name="alpha")
    AdapterFactory(id=uid(1), name="Alpha")
    AdapterFactory(id=uid(2), name="ALPHA")
    AdapterFactory(id=uid(4), name="Beta")
    assert names(api, "sort=name") == ["Alpha", "ALPHA", "alpha", "Beta"]


def test_sort_name_desc(api):
    AdapterFactory(id=uid(3), name="alpha")
    AdapterFactory(id=uid(1), name="Alpha")
    AdapterFactory(id=uid(2), name="beta")
    AdapterFactory(id=uid(4), name="Gamma")
    assert names(api, "sort=name_desc") == ["Gamma", "beta", "Alpha", "alpha"]


def _set(adapter: Adapter, **fields) -> None:
    Adapter.objects.filter(pk=adapter.pk).update(**fields)


@pytest.fixture
def timeline():
    """Four adapters: two share a timestamp (tie broken by name, then id)."""
    now = timezone.now()
    old = AdapterFactory(id=uid(1), name="Old")
    tie_b = AdapterFactory(id=uid(2), name="tie")
    tie_a = AdapterFactory(id=uid(3), name="Tie")
    new = AdapterFactory(id=uid(4), name="New")
    for adapter, moment in ((old, now - timedelta(days=3)), (tie_b, now - timedelta(days=1)), (new, now)):
        _set(adapter, created_at=moment, updated_at=moment)
    _set(tie_a, created_at=now - timedelta(days=1), updated_at=now - timedelta(days=1))


def test_sort_created_at_newest_first(api, timeline):
    assert names(api, "sort=created_at") == ["New", "tie", "Tie", "Old"]


def test_sort_created_at_asc_oldest_first(api, timeline):
    assert names(api, "sort=created_at_asc") == ["Old", "tie", "Tie", "New"]


def test_sort_updated_at_newest_first(api, timeline):
    assert names(api, "sort=updated_at") == ["New", "tie", "Tie", "Old"]


def test_sort_updated_at_follows_edits(api, timeline):
    Adapter.objects.get(name="Old").save()
    assert names(api, "sort=updated_at")[0] == "Old"


def test_sort_file_size_largest_first_nulls_last(api):
    AdapterFactory(id=uid(1), name="Unknown size", file_size=None)
    AdapterFactory(id=uid(2), name="Small", file_size=10)
    AdapterFactory(id=uid(3), name="big b", file_size=5_000_000_000)
    AdapterFactory(id=uid(4), name="Big A", file_size=5_000_000_000)
    AdapterFactory(id=uid(5), name="Another unknown", file_size=None)
    assert names(api, "sort=file_size") == ["Big A", "big b", "Small", "Another unknown", "Unknown size"]


def test_sort_ordinal_is_composition_order(api):
    AdapterFactory(id=uid(1), name="No ordinal b", ordinal=None)
    AdapterFactory(id=uid(2), name="Second", ordinal=2)
    AdapterFactory(id=uid(3), name="Negative", ordinal=-5)
    AdapterFactory(id=uid(4), name="first tie", ordinal=1)
    AdapterFactory(id=uid(5), name="First tie", ordinal=1)
    AdapterFactory(id=uid(6), name="No ordinal A", ordinal=None)
    assert names(api, "sort=ordinal") == [
        "Negative",
        "first tie",
        "First tie",
        "Second",
        "No ordinal A",
        "No ordinal b",
    ]


def test_sort_usage_most_used_first(api):
    AdapterFactory(id=uid(1), name="Rare", usage_count=1)
    AdapterFactory(id=uid(2), name="popular", usage_count=50)
    AdapterFactory(id=uid(3), name="Popular", usage_count=50)
    AdapterFactory(id=uid(4), name="Never", usage_count=0)
    assert names(api, "sort=usage") == ["popular", "Popular", "Rare", "Never"]


@pytest.mark.parametrize(
    "sort", ["name", "name_desc", "created_at", "created_at_asc", "updated_at", "file_size", "ordinal", "usage"]
)
def test_every_sort_is_total_across_pages(api, sort):
    """Equal sort keys must not make rows repeat or vanish between pages."""
    for n in range(9):
        AdapterFactory(id=uid(n + 1), name=f"Same {n % 2}", version=str(n), file_size=None, usage_count=3)
    Adapter.objects.update(created_at=timezone.now(), updated_at=timezone.now())
    seen = [item for page in (1, 2, 3) for item in ids(api, f"sort={sort}&per_page=4&page={page}")]
    assert sorted(seen) == sorted(str(uid(n + 1)) for n in range(9))
    assert seen == ids(api, f"sort={sort}&per_page=9")


# --- query count --------------------------------------------------------------------------


def _list_queries(api, query: str) -> int:
    response_cache("adapters").clear()
    with CaptureQueriesContext(connection) as captured:
        response = api.get(f"{URL}?{query}")
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("query", ["per_page=200", "per_page=200&active=true&tags=anime&search=adapter&sort=usage"])
def test_query_count_does_not_grow_with_the_page(api, query, django_assert_max_num_queries):
    AdapterFactory.create_batch(5, active=True, tags=["anime"], duplicate_paths=["/x"], sidecars=[{"kind": "a1111"}])
    api.get(URL)  # the key's first use writes last_used_at; measure steady state
    small = _list_queries(api, query)
    AdapterFactory.create_batch(55, active=True, tags=["anime"], duplicate_paths=["/x"], sidecars=[{"kind": "a1111"}])
    assert len(listing(api, query)["items"]) == 60
    large = _list_queries(api, query)
    assert small == large
    response_cache("adapters").clear()
    with django_assert_max_num_queries(6):
        api.get(f"{URL}?{query}")
