"""``/generation/results`` as a client sees it (SPEC 5.5.4, 5.1 ResultRead, 4.3-4.5, 7)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import DeliveryJobAdapter
from generation.models import GenerationResult
from tests.factories import AdapterFactory
from tests.generation.factories import GenerationJobFactory, GenerationResultFactory, png_bytes

URL = "/api/v1/generation/results"
RESULT_KEYS = {
    "id", "job_id", "index", "prompt", "negative_prompt", "status", "image_url", "thumbnail_url", "download_url",
    "content_type", "size_bytes", "width", "height", "steps", "cfg_scale", "sampler_name", "seed", "backend",
    "adapters", "generation_info", "infotext", "rating", "is_favorite", "rating_updated_at", "favorite_updated_at",
    "created_at", "finished_at",
}  # fmt: skip


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def field_error(response, key: str) -> str:
    body = problem(response, 400)
    assert body["type"] == "urn:loraforge:problem:validation-error"
    return body["errors"][key][0]


def put(client, url: str, body) -> object:
    return client.put(url, data=json.dumps(body), content_type="application/json")


def ids_of(body: dict) -> list[str]:
    return [item["id"] for item in body["items"]]


def make_result(minutes_ago: int = 0, **fields):
    fields.setdefault("created_at", timezone.now() - timedelta(minutes=minutes_ago))
    return GenerationResultFactory(**fields)


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


# --- list -------------------------------------------------------------------------------------------


def test_result_has_the_documented_shape(api):
    adapter = AdapterFactory(name="Celestial Anime Portraits", sdnext_name="celestial_anime_v2")
    job = GenerationJobFactory(prompt="portrait <lora:celestial_anime_v2:0.75>")
    DeliveryJobAdapter.objects.create(
        job=job, adapter=adapter, adapter_name=adapter.name, sdnext_name="celestial_anime_v2", weight=0.75, position=0
    )
    result = GenerationResultFactory(job=job)

    [item] = api.get(URL).json()["items"]

    assert set(item) == RESULT_KEYS
    image_url = f"/media/generations/2025/03/01/{job.pk}/000.png"
    assert item | {"created_at": None, "finished_at": None} == {
        "id": str(result.pk),
        "job_id": str(job.pk),
        "index": 0,
        "prompt": "portrait <lora:celestial_anime_v2:0.75>",
        "negative_prompt": None,
        "status": "completed",
        "image_url": image_url,
        "thumbnail_url": image_url,
        "download_url": f"/api/v1/generation/results/{result.pk}/download",
        "content_type": "image/png",
        "size_bytes": len(png_bytes()),
        "width": 512,
        "height": 512,
        "steps": 20,
        "cfg_scale": 7.0,
        "sampler_name": "DPM++ 2M",
        "seed": 1234567,
        "backend": "default",
        "adapters": [
            {
                "id": str(adapter.pk),
                "name": "Celestial Anime Portraits",
                "sdnext_name": "celestial_anime_v2",
                "weight": 0.75,
            }
        ],
        "generation_info": {"seed": 1234567},
        "infotext": "portrait\nSteps: 20, Seed: 1234567",
        "rating": None,
        "is_favorite": False,
        "rating_updated_at": None,
        "favorite_updated_at": None,
        "created_at": None,
        "finished_at": None,
    }
    assert item["created_at"].endswith("Z")
    assert item["finished_at"].endswith("Z")


def test_urls_are_absolute_with_a_public_url(api, settings):
    settings.LORAFORGE_PUBLIC_URL = "https://forge.example"
    result = GenerationResultFactory()

    [item] = api.get(URL).json()["items"]

    assert item["image_url"].startswith("https://forge.example/media/generations/")
    assert item["download_url"] == f"https://forge.example/api/v1/generation/results/{result.pk}/download"


def test_list_is_the_envelope_with_stats_newest_first(api):
    old = make_result(minutes_ago=30, rating=4, is_favorite=True)
    middle = make_result(minutes_ago=20, rating=5)
    new = make_result(minutes_ago=10)

    body = api.get(URL).json()

    assert ids_of(body) == [str(new.pk), str(middle.pk), str(old.pk)]
    assert {key: body[key] for key in ("total", "filtered", "page", "pages", "per_page")} == {
        "total": 3,
        "filtered": 3,
        "page": 1,
        "pages": 1,
        "per_page": 24,
    }
    assert body["stats"] == {"total_results": 3, "favorites": 1, "rated": 2, "average_rating": 4.5}


def test_empty_list_has_null_average(api):
    body = api.get(URL).json()

    assert body["items"] == []
    assert body["pages"] == 0
    assert body["stats"] == {"total_results": 0, "favorites": 0, "rated": 0, "average_rating": None}


def test_stats_cover_the_filtered_set(api):
    make_result(rating=2, is_favorite=True)
    make_result(rating=4)
    make_result()

    body = api.get(f"{URL}?min_rating=3").json()

    assert (body["total"], body["filtered"]) == (3, 1)
    assert body["stats"] == {"total_results": 1, "favorites": 0, "rated": 1, "average_rating": 4.0}


def test_images_of_other_deliveries_are_never_listed(api):
    generated = GenerationResultFactory()
    delivery = GenerationJobFactory(kind="delivery", mode="http")
    GenerationResultFactory(job=delivery)

    body = api.get(URL).json()

    assert ids_of(body) == [str(generated.pk)]
    assert body["total"] == 1


def test_list_pages_by_24_by_default(api):
    job = GenerationJobFactory()
    for index in range(25):
        GenerationResultFactory(job=job, index=index, write_file=False)

    body = api.get(URL).json()

    assert (len(body["items"]), body["pages"], body["per_page"]) == (24, 2, 24)
    assert len(api.get(f"{URL}?page=2").json()["items"]) == 1


def test_per_page_is_clamped_and_page_zero_is_one(api):
    make_result()

    body = api.get(f"{URL}?per_page=1000&page=0").json()

    assert (body["per_page"], body["page"], len(body["items"])) == (200, 1, 1)


def test_limit_and_offset_start_exactly_at_the_offset(api):
    results = [make_result(minutes_ago=minutes) for minutes in range(7)]  # newest first: results[0], results[1], …

    body = api.get(f"{URL}?limit=3&offset=4").json()

    assert ids_of(body) == [str(results[4].pk), str(results[5].pk), str(results[6].pk)]
    assert (body["per_page"], body["page"], body["pages"]) == (3, 2, 3)


def test_limit_replaces_per_page(api):
    for minutes in range(3):
        make_result(minutes_ago=minutes)

    body = api.get(f"{URL}?limit=2&per_page=50").json()

    assert (len(body["items"]), body["per_page"]) == (2, 2)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("page=abc", "page"),
        ("sort=foo", "sort"),
        ("min_rating=6", "min_rating"),
        ("min_rating=x", "min_rating"),
        ("is_favorite=maybe", "is_favorite"),
        ("width=5.5", "width"),
        ("width=-9223372036854775809", "width"),
        ("width=2147483648", "width"),
        ("offset=9223372036854775808", "offset"),
        ("height=tall", "height"),
        ("start_date=yesterday", "start_date"),
        ("end_date=2025-13-01", "end_date"),
        ("job_id=nope", "job_id"),
        ("adapter_id=nope", "adapter_id"),
    ],
)
def test_invalid_query_values_are_400_on_their_key(api, query, key):
    assert field_error(api.get(f"{URL}?{query}"), key)


@pytest.mark.parametrize(
    "query", ["width=", "sort=", "is_favorite=", "start_date=", "limit=", "offset=", "page=", "per_page=", "job_id="]
)
def test_an_empty_query_value_means_not_given(api, query):
    make_result()
    assert api.get(f"{URL}?{query}").json()["items"] == api.get(URL).json()["items"]


def test_unknown_sort_names_the_choices(api):
    message = field_error(api.get(f"{URL}?sort=foo"), "sort")

    assert message == "sort must be one of: created_at, created_at_asc, rating, rating_asc"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at", ["c", "b", "a", "none"]),
        ("created_at_asc", ["none", "a", "b", "c"]),
        ("rating", ["b", "c", "a", "none"]),
        ("rating_asc", ["a", "c", "b", "none"]),
    ],
)
def test_sort_orders(api, sort, expected):
    rows = {
        "none": make_result(minutes_ago=40),
        "a": make_result(minutes_ago=30, rating=1),
        "b": make_result(minutes_ago=20, rating=5),
        "c": make_result(minutes_ago=10, rating=3),
    }
    names = {str(row.pk): name for name, row in rows.items()}

    body = api.get(f"{URL}?sort={sort}").json()

    assert [names[pk] for pk in ids_of(body)] == expected


def test_filters_by_search_favourite_size_and_backend(api):
    wanted = make_result(job=GenerationJobFactory(prompt="A Red Fox in snow", backend_name="gpu-2"), is_favorite=True)
    make_result(job=GenerationJobFactory(prompt="a red fox", backend_name="default"), is_favorite=True)
    make_result(job=GenerationJobFactory(prompt="red fox again", backend_name="gpu-2"), width=768)

    query = "search=red%20FOX&is_favorite=true&width=512&height=512&backend=gpu-2"
    body = api.get(f"{URL}?{query}").json()

    assert ids_of(body) == [str(wanted.pk)]


def test_filters_by_job_and_adapter(api):
    adapter = AdapterFactory()
    linked = GenerationJobFactory()
    for position in range(2):  # linked twice: its image is still listed once
        DeliveryJobAdapter.objects.create(
            job=linked, adapter=adapter, adapter_name="x", sdnext_name="x", weight=1.0, position=position
        )
    first = GenerationResultFactory(job=linked, index=0)
    second = GenerationResultFactory(job=linked, index=1)
    GenerationResultFactory()

    by_adapter = api.get(f"{URL}?adapter_id={adapter.pk}&sort=created_at_asc").json()
    by_job = api.get(f"{URL}?job_id={linked.pk}&sort=created_at_asc").json()

    assert ids_of(by_adapter) == ids_of(by_job) == [str(first.pk), str(second.pk)]


def test_date_range_is_inclusive_and_a_date_end_covers_the_day(api):
    day = datetime(2025, 3, 1, tzinfo=UTC)
    before = make_result(created_at=day - timedelta(seconds=1))
    start = make_result(created_at=day)
    late = make_result(created_at=day + timedelta(hours=23, minutes=59))
    make_result(created_at=day + timedelta(days=1))

    body = api.get(f"{URL}?start_date=2025-03-01&end_date=2025-03-01&sort=created_at_asc").json()
    exact = api.get(f"{URL}?end_date=2025-02-28T23:59:59Z").json()

    assert ids_of(body) == [str(start.pk), str(late.pk)]
    assert ids_of(exact) == [str(before.pk)]


def test_list_query_count_does_not_grow_with_rows(api, django_assert_max_num_queries):
    adapter = AdapterFactory()
    for _ in range(30):
        job = GenerationJobFactory()
        DeliveryJobAdapter.objects.create(
            job=job, adapter=adapter, adapter_name="a", sdnext_name="a", weight=1.0, position=0
        )
        GenerationResultFactory(job=job, write_file=False)
    api.get(URL)  # the key's last_used_at is written once

    with django_assert_max_num_queries(5):  # key, stats, total, page, adapter links
        body = api.get(f"{URL}?per_page=50").json()

    assert len(body["items"]) == 30
    assert all(item["adapters"] for item in body["items"])


# --- detail -------------------------------------------------------------------------------------------


def test_detail_is_the_result_envelope(api):
    result = GenerationResultFactory()

    response = api.get(f"{URL}/{result.pk}")

    assert response.status_code == 200
    assert response.json()["result"]["id"] == str(result.pk)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_detail_answers_with_or_without_trailing_slash_and_on_v1(api, suffix):
    result = GenerationResultFactory()

    assert api.get(f"{URL}/{result.pk}{suffix}").status_code == 200
    assert api.get(f"/v1/generation/results/{result.pk}{suffix}").status_code == 200


@pytest.mark.parametrize("result_id", ["not-a-uuid", "123", str(uuid.uuid4())])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("delete", ""), ("put", "/rating"), ("put", "/favorite"), ("get", "/download")],
)
def test_unknown_or_invalid_id_is_result_not_found(api, result_id, method, suffix):
    body = {"rating": 1, "is_favorite": True}
    url = f"{URL}/{result_id}{suffix}"
    response = put(api, url, body) if method == "put" else getattr(api, method)(url)

    assert problem(response, 404)["detail"] == "Result not found"


def test_result_of_a_delivery_is_not_found(api):
    result = GenerationResultFactory(job=GenerationJobFactory(kind="delivery", mode="cli"))

    assert problem(api.get(f"{URL}/{result.pk}"), 404)["detail"] == "Result not found"


# --- rating and favourites ----------------------------------------------------------------------------


def test_rating_sets_and_clears_with_its_timestamp(api):
    result = GenerationResultFactory()

    rated = put(api, f"{URL}/{result.pk}/rating", {"rating": 4}).json()["result"]
    cleared = put(api, f"{URL}/{result.pk}/rating", {"rating": None}).json()["result"]

    assert (rated["rating"], rated["rating_updated_at"] is not None) == (4, True)
    assert (cleared["rating"], cleared["rating_updated_at"]) == (None, None)


@pytest.mark.parametrize("rating", [6, -1, 2.5, "3", True, [1]])
def test_invalid_rating_is_400(api, rating):
    result = GenerationResultFactory()

    message = field_error(put(api, f"{URL}/{result.pk}/rating", {"rating": rating}), "rating")

    assert message == "rating must be an integer between 0 and 5"
    result.refresh_from_db()
    assert result.rating is None


def test_rating_needs_the_key_and_refuses_unknown_keys(api):
    result = GenerationResultFactory()

    assert field_error(put(api, f"{URL}/{result.pk}/rating", {}), "rating") == "This field is required."
    assert field_error(put(api, f"{URL}/{result.pk}/rating", {"rating": 1, "x": 1}), "x") == "Unknown field."


def test_favorite_sets_and_clears_with_its_timestamp(api):
    result = GenerationResultFactory()

    favourite = put(api, f"{URL}/{result.pk}/favorite", {"is_favorite": True}).json()["result"]
    cleared = put(api, f"{URL}/{result.pk}/favorite", {"is_favorite": False}).json()["result"]

    assert (favourite["is_favorite"], favourite["favorite_updated_at"] is not None) == (True, True)
    assert (cleared["is_favorite"], cleared["favorite_updated_at"]) == (False, None)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_favorite_must_be_a_boolean(api, value):
    result = GenerationResultFactory()

    assert field_error(put(api, f"{URL}/{result.pk}/favorite", {"is_favorite": value}), "is_favorite")


def test_bulk_favorite_reports_updated_and_missing(api):
    first, second = GenerationResultFactory(), GenerationResultFactory()
    unknown = uuid.uuid4()

    response = put(
        api,
        f"{URL}/bulk-favorite",
        {"ids": [str(first.pk), str(unknown), str(second.pk), str(first.pk).upper()], "is_favorite": True},
    )

    assert response.status_code == 200
    assert response.json() == {"updated": 2, "ids": [str(first.pk), str(second.pk)], "missing": [str(unknown)]}
    assert GenerationResult.objects.filter(is_favorite=True, favorite_updated_at__isnull=False).count() == 2


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"ids": [], "is_favorite": True}, "ids"),
        ({"ids": "abc", "is_favorite": True}, "ids"),
        ({"ids": [str(uuid.uuid4()), "x"], "is_favorite": True}, "ids.1"),
        ({"ids": [str(uuid.uuid4())] * 1001, "is_favorite": True}, "ids"),
        ({"ids": [str(uuid.uuid4())]}, "is_favorite"),
        ({"ids": [str(uuid.uuid4())], "is_favorite": "true"}, "is_favorite"),
    ],
)
def test_bulk_favorite_validates_its_body(api, body, key):
    assert field_error(put(api, f"{URL}/bulk-favorite", body), key)


def test_invalid_uuid_in_ids_names_the_index(api):
    body = {"ids": [str(uuid.uuid4()), "x"], "is_favorite": True}

    assert field_error(put(api, f"{URL}/bulk-favorite", body), "ids.1") == "Must be a valid UUID."


# --- deletion --------------------------------------------------------------------------------------------


def test_delete_removes_the_row_and_its_file(api, media_root, django_capture_on_commit_callbacks):
    result = GenerationResultFactory()
    path = media_root / result.file

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"{URL}/{result.pk}")

    assert response.status_code == 204
    assert not GenerationResult.objects.filter(pk=result.pk).exists()
    assert not path.exists()


@pytest.mark.parametrize("method", ["delete", "post"])
def test_bulk_delete_reports_deleted_and_missing(api, media_root, method, django_capture_on_commit_callbacks):
    first, second, kept = GenerationResultFactory(), GenerationResultFactory(), GenerationResultFactory()
    unknown = uuid.uuid4()
    body = json.dumps({"ids": [str(first.pk), str(unknown), str(second.pk)]})

    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(api, method)(f"{URL}/bulk-delete", data=body, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"deleted": 2, "missing": [str(unknown)]}
    assert list(GenerationResult.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not (media_root / first.file).exists()
    assert (media_root / kept.file).exists()


def test_bulk_delete_needs_ids(api):
    response = api.post(f"{URL}/bulk-delete", data="{}", content_type="application/json")

    assert field_error(response, "ids") == "This field is required."


def test_delete_keeps_a_file_outside_the_media_root(api, tmp_path, django_capture_on_commit_callbacks):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes())
    result = GenerationResultFactory(file="../outside.png", write_file=False)

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{URL}/{result.pk}").status_code == 204

    assert outside.exists()


# --- download ---------------------------------------------------------------------------------------------


def test_download_returns_the_file_as_an_attachment(api):
    result = GenerationResultFactory(index=3)

    response = api.get(f"{URL}/{result.pk}/download")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(png_bytes()))
    assert response["Content-Disposition"] == f'attachment; filename="{result.job_id}-003.png"'
    assert b"".join(response.streaming_content) == png_bytes()


@pytest.mark.parametrize("accept", ["image/png", "*/*", "application/json", "text/html"])
def test_download_ignores_the_accept_header(api, accept):
    result = GenerationResultFactory()

    assert api.get(f"{URL}/{result.pk}/download", HTTP_ACCEPT=accept).status_code == 200


@pytest.mark.parametrize("file", ["generations/missing.png", "../../etc/passwd", "/etc/passwd"])
def test_download_of_an_unavailable_file_is_404(api, file):
    result = GenerationResultFactory(file=file, write_file=False)

    response = api.get(f"{URL}/{result.pk}/download", HTTP_ACCEPT="image/png")

    assert problem(response, 404)["detail"] == "Result file is unavailable"


# --- routes, methods and authorisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "", {"GET"}),
        ("post", "/{id}", {"GET", "DELETE"}),
        ("get", "/{id}/rating", {"PUT"}),
        ("post", "/{id}/favorite", {"PUT"}),
        ("post", "/{id}/download", {"GET"}),
        ("get", "/bulk-favorite", {"PUT"}),
        ("get", "/bulk-delete", {"DELETE", "POST"}),
        ("get", "/export", {"POST"}),
        ("delete", "/export", {"POST"}),
    ],
)
def test_wrong_method_is_405_with_allow(api, method, path, allowed):
    result = GenerationResultFactory()

    response = getattr(api, method)(URL + path.replace("{id}", str(result.pk)))

    assert problem(response, 405)["type"] == "urn:loraforge:problem:method-not-allowed"
    listed = {name.strip() for name in response["Allow"].split(",")}
    assert allowed <= listed
    assert method.upper() not in listed


def test_anonymous_is_401(anon):
    result = GenerationResultFactory()

    for response in (anon.get(URL), anon.get(f"{URL}/{result.pk}/download"), anon.delete(f"{URL}/{result.pk}")):
        assert problem(response, 401)["detail"] == "Authentication required"


def test_read_only_key_may_read_but_not_write(read_only_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_only_key)
    result = GenerationResultFactory()
    ids = {"ids": [str(result.pk)]}

    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}/{result.pk}/download").status_code == 200
    writes = [
        put(client, f"{URL}/{result.pk}/rating", {"rating": 1}),
        put(client, f"{URL}/{result.pk}/favorite", {"is_favorite": True}),
        put(client, f"{URL}/bulk-favorite", {**ids, "is_favorite": True}),
        client.delete(f"{URL}/{result.pk}"),
        client.post(f"{URL}/bulk-delete", data=json.dumps(ids), content_type="application/json"),
        client.post(f"{URL}/export", data=json.dumps(ids), content_type="application/json"),
    ]
    for response in writes:
        assert problem(response, 403)["detail"] == "This API key is read-only"
    result.refresh_from_db()
    assert (result.rating, result.is_favorite) == (None, False)
