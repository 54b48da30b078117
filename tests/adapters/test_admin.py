"""The adapters admin as a staff user sees it (SPEC 9.1): list, filters, inline edits, change form, actions."""

from __future__ import annotations

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import format_html

from adapters.admin import extensions
from adapters.admin.filters import TagFilter
from adapters.models import Adapter, ScannedFile
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/adapters/adapter/"
QUERY_BUDGET = 8


def change_url(adapter: Adapter) -> str:
    return f"/admin/adapters/adapter/{adapter.pk}/change/"


def changelist_queries(client) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries), response


def inline_post(adapter: Adapter, **values):
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(adapter.pk),
        "form-0-weight": str(adapter.weight),
        "form-0-ordinal": "" if adapter.ordinal is None else str(adapter.ordinal),
        "_save": "Save",
    }
    if adapter.active:
        data["form-0-active"] = "on"
    data.update({f"form-0-{name}": value for name, value in values.items()})
    return data


def tag_filter_of(response) -> TagFilter:
    return next(spec for spec in response.context["cl"].filter_specs if isinstance(spec, TagFilter))


def change_form_data(response) -> dict[str, object]:
    """The POST body the rendered change form would submit unchanged."""
    form = response.context["adminform"].form
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[name] = "on"
        elif isinstance(field.widget, forms.CheckboxSelectMultiple):
            data[name] = list(value or [])
        else:
            data[name] = "" if value is None else value
    return data


# --- changelist -----------------------------------------------------------------------------


def test_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    AdapterFactory.create_batch(5, tags=["anime"], preview_path="/srv/loras/p.png")
    small, _ = changelist_queries(admin_client)
    AdapterFactory.create_batch(115, tags=["anime", "style"], header_metadata={"ss_note": "x" * 1000})
    with django_assert_max_num_queries(QUERY_BUDGET):
        large, response = changelist_queries(admin_client)
    assert large == small
    content = response.content.decode()
    assert 'name="form-99-weight"' in content
    assert 'name="form-100-weight"' not in content


def test_changelist_shows_thumbnail_placeholder_and_file_state_badges(admin_client):
    with_preview = AdapterFactory(preview_path="/srv/loras/a.png")
    AdapterFactory(missing_since=timezone.now())
    AdapterFactory(duplicate_paths=["/srv/loras/copy.safetensors"])
    AdapterFactory(header_error="header is not valid JSON")
    response = admin_client.get(CHANGELIST)
    content = response.content.decode()
    assert f'src="/api/v1/adapters/{with_preview.pk}/preview"' in content
    assert 'width="48"' in content
    assert "lf-thumb-empty" in content
    for badge in ("lf-badge-ok", "lf-badge-missing", "lf-badge-duplicate", "lf-badge-header-error"):
        assert badge in content


def test_changelist_does_not_load_header_metadata(admin_client):
    AdapterFactory(header_metadata={"ss_note": "secret-marker"})
    response = admin_client.get(CHANGELIST)
    adapter = response.context["cl"].result_list[0]
    assert "header_metadata" in adapter.get_deferred_fields()


def test_tag_filter_offers_most_used_tags_and_filters(admin_client):
    tagged = AdapterFactory(tags=["anime", "night sky"])
    AdapterFactory(tags=["anime"])
    AdapterFactory(tags=["photo"])
    response = admin_client.get(CHANGELIST, {"tag": "night sky"})
    assert [adapter.pk for adapter in response.context["cl"].result_list] == [tagged.pk]
    tag_filter = tag_filter_of(response)
    assert [value for value, _ in tag_filter.lookup_choices] == ["anime", "night sky", "photo"]


def test_tag_filter_offers_at_most_fifty_tags(admin_client):
    AdapterFactory(tags=[f"tag {index:03d}" for index in range(60)])
    response = admin_client.get(CHANGELIST)
    tag_filter = tag_filter_of(response)
    assert len(tag_filter.lookup_choices) == 50


def test_file_missing_filter(admin_client):
    missing = AdapterFactory(missing_since=timezone.now())
    AdapterFactory()
    response = admin_client.get(CHANGELIST, {"missing": "yes"})
    assert [adapter.pk for adapter in response.context["cl"].result_list] == [missing.pk]


def test_search_by_sha256_prefix(admin_client):
    wanted = AdapterFactory(sha256="ab12cd" + "0" * 58)
    AdapterFactory(sha256="ff" * 32)
    response = admin_client.get(CHANGELIST, {"q": "AB12CD"})
    assert [adapter.pk for adapter in response.context["cl"].result_list] == [wanted.pk]


def test_search_by_tag_and_file_path(admin_client):
    tagged = AdapterFactory(tags=["watercolor"])
    by_path = AdapterFactory(file_path="/srv/loras/inkwash/brush.safetensors")
    AdapterFactory()
    by_tag = admin_client.get(CHANGELIST, {"q": "watercolor"})
    assert [adapter.pk for adapter in by_tag.context["cl"].result_list] == [tagged.pk]
    path_hit = admin_client.get(CHANGELIST, {"q": "inkwash"})
    assert [adapter.pk for adapter in path_hit.context["cl"].result_list] == [by_path.pk]


# --- inline edits -----------------------------------------------------------------------------


def test_inline_weight_edit_is_saved(admin_client):
    adapter = AdapterFactory(weight=1.0)
    response = admin_client.post(CHANGELIST, inline_post(adapter, weight="0.65"))
    assert response.status_code == 302
    adapter.refresh_from_db()
    assert adapter.weight == 0.65
    assert adapter.locked_fields == []


def test_inline_weight_out_of_range_is_rejected(admin_client):
    adapter = AdapterFactory(weight=1.0)
    response = admin_client.post(CHANGELIST, inline_post(adapter, weight="7"))
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 5.0." in response.content.decode()
    adapter.refresh_from_db()
    assert adapter.weight == 1.0


def test_inline_ordinal_out_of_range_is_rejected(admin_client):
    adapter = AdapterFactory(ordinal=None)
    response = admin_client.post(CHANGELIST, inline_post(adapter, ordinal="1000001"))
    assert response.status_code == 200
    adapter.refresh_from_db()
    assert adapter.ordinal is None


def test_inline_activation_and_ordinal_are_saved(admin_client):
    adapter = AdapterFactory(active=False)
    response = admin_client.post(CHANGELIST, inline_post(adapter, active="on", ordinal="3"))
    assert response.status_code == 302
    adapter.refresh_from_db()
    assert (adapter.active, adapter.ordinal) == (True, 3)


# --- actions ------------------------------------------------------------------------------------


def test_activate_and_deactivate_actions(admin_client):
    first, second = AdapterFactory(active=False), AdapterFactory(active=False)
    selected = [str(first.pk), str(second.pk)]
    response = admin_client.post(CHANGELIST, {"action": "activate_selected", "_selected_action": selected})
    assert response.status_code == 302
    assert set(Adapter.objects.values_list("active", flat=True)) == {True}
    admin_client.post(CHANGELIST, {"action": "deactivate_selected", "_selected_action": [str(first.pk)]})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.active, second.active) == (False, True)


def test_delete_action_excludes_the_file(admin_client):
    adapter = AdapterFactory()
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [str(adapter.pk)], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Adapter.objects.exists()
    assert ScannedFile.objects.get(path=adapter.file_path).excluded is True


# --- change form --------------------------------------------------------------------------------


def test_change_form_renders_sections_and_escapes_header_metadata(admin_client):
    adapter = AdapterFactory(
        header_metadata={"ss_note": "<script>alert('x')</script>"},
        sidecars=[{"kind": "civitai_info", "path": "/srv/loras/a.civitai.info", "mtime": None, "size": 3}],
        preview_path="/srv/loras/a.png",
    )
    response = admin_client.get(change_url(adapter))
    assert response.status_code == 200
    content = response.content.decode()
    assert "<script>alert(" not in content
    assert "&lt;script&gt;alert(" in content
    assert f'src="/api/v1/adapters/{adapter.pk}/preview"' in content
    for section in ("Curation", "File", "Hash", "Header", "Sidecars", "Civitai"):
        assert f'class="fieldset-heading">{section}</h2>' in content
    assert 'name="locked_fields"' in content
    assert 'type="checkbox"' in content


def test_change_form_edit_locks_only_the_edited_curatable_field(admin_client):
    adapter = AdapterFactory(tags=["anime"], locked_fields=[])
    data = change_form_data(admin_client.get(change_url(adapter)))
    data.update({"notes": "curated by hand", "_save": "Save"})
    response = admin_client.post(change_url(adapter), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    adapter.refresh_from_db()
    assert adapter.notes == "curated by hand"
    assert adapter.locked_fields == ["notes"]
    assert adapter.tags == ["anime"]


def test_change_form_normalises_tags_like_the_api(admin_client):
    adapter = AdapterFactory(tags=[])
    data = change_form_data(admin_client.get(change_url(adapter)))
    data.update({"tags": "  Night   Sky \nANIME\nanime", "_save": "Save"})
    response = admin_client.post(change_url(adapter), data)
    assert response.status_code == 302
    adapter.refresh_from_db()
    assert adapter.tags == ["night sky", "anime"]
    assert adapter.tag_index == "|night sky|anime|"
    assert adapter.locked_fields == ["tags"]


def test_change_form_unlocking_a_field(admin_client):
    adapter = AdapterFactory(locked_fields=["name", "notes"])
    data = change_form_data(admin_client.get(change_url(adapter)))
    data.update({"locked_fields": ["notes"], "_save": "Save"})
    admin_client.post(change_url(adapter), data)
    adapter.refresh_from_db()
    assert adapter.locked_fields == ["notes"]


def test_change_form_rejects_an_invalid_sdnext_name(admin_client):
    adapter = AdapterFactory()
    data = change_form_data(admin_client.get(change_url(adapter)))
    data.update({"sdnext_name": "bad:name", "_save": "Save"})
    response = admin_client.post(change_url(adapter), data)
    assert response.status_code == 200
    assert "sdnext_name must not contain" in response.content.decode()
    adapter.refresh_from_db()
    assert adapter.sdnext_name != "bad:name"


def test_change_form_rejects_a_name_version_clash(admin_client):
    AdapterFactory(name="Taken", version=None)
    adapter = AdapterFactory()
    data = change_form_data(admin_client.get(change_url(adapter)))
    data.update({"name": "Taken", "_save": "Save"})
    response = admin_client.post(change_url(adapter), data)
    assert response.status_code == 200
    assert "adapter with this name and version already exists" in response.content.decode()


def test_change_form_renders_registered_panels_and_survives_a_failing_one(admin_client, monkeypatch):
    def failing(request, adapter):
        raise RuntimeError("panel exploded")

    def working(request, adapter):
        return format_html("<p>Panel for {}</p>", adapter.name)

    monkeypatch.setattr(extensions, "_panels", {})
    extensions.change_panel_register(extensions.ChangePanel("broken", "Broken", failing))
    extensions.change_panel_register(extensions.ChangePanel("fine", "Fine", working))
    adapter = AdapterFactory(name="<Panelled>")
    content = admin_client.get(change_url(adapter)).content.decode()
    assert 'id="panel-broken"' in content
    assert "Broken unavailable" in content
    assert "<p>Panel for &lt;Panelled&gt;</p>" in content


def test_adapters_cannot_be_added_through_the_admin(admin_client):
    assert admin_client.get("/admin/adapters/adapter/add/").status_code == 403


# --- scanned files ------------------------------------------------------------------------------


def test_scanned_files_list_and_remove_exclusion(admin_client):
    now = timezone.now()
    excluded = ScannedFile.objects.create(
        path="/srv/loras/gone.safetensors", size=1, mtime_ns=1, sha256="ab" * 32, excluded=True, last_seen_at=now
    )
    copy = ScannedFile.objects.create(
        path="/srv/loras/copy.safetensors", size=1, mtime_ns=1, sha256="ab" * 32, excluded=True, last_seen_at=now
    )
    listing = admin_client.get("/admin/adapters/scannedfile/", {"excluded__exact": "1"})
    assert listing.status_code == 200
    assert "abababababab" in listing.content.decode()
    response = admin_client.post(
        "/admin/adapters/scannedfile/", {"action": "remove_exclusion", "_selected_action": [str(excluded.pk)]}
    )
    assert response.status_code == 302
    excluded.refresh_from_db()
    copy.refresh_from_db()
    assert (excluded.excluded, copy.excluded) == (False, False)


def test_scanned_files_are_read_only(admin_client):
    scanned = ScannedFile.objects.create(path="/srv/a.safetensors", size=1, mtime_ns=1, last_seen_at=timezone.now())
    assert admin_client.get("/admin/adapters/scannedfile/add/").status_code == 403
    response = admin_client.post(f"/admin/adapters/scannedfile/{scanned.pk}/change/", {"path": "/other"})
    assert response.status_code == 403


def test_scanned_files_list_query_count_does_not_grow_with_rows(admin_client):
    def add_files(start, count):
        for index in range(start, start + count):
            adapter = AdapterFactory()
            ScannedFile.objects.create(
                path=f"/srv/loras/f{index}.safetensors",
                size=1,
                mtime_ns=1,
                adapter=adapter,
                last_seen_at=timezone.now(),
            )

    add_files(0, 3)
    with CaptureQueriesContext(connection) as small:
        assert admin_client.get("/admin/adapters/scannedfile/").status_code == 200
    add_files(3, 30)
    with CaptureQueriesContext(connection) as large:
        response = admin_client.get("/admin/adapters/scannedfile/")
    assert len(large) == len(small)
    assert "Adapter 0" in response.content.decode()
