"""The admin looks like LoRAForge (SPEC 9.1, issue 12): branding, the dashboard link, tag chips, folded sections."""

from __future__ import annotations

import pytest

from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


def test_the_admin_is_branded_and_links_the_dashboard_and_the_api_docs(admin_client):
    content = admin_client.get("/admin/").content.decode()

    assert "<title>Library administration | LoRAForge admin</title>" in content
    assert 'class="lf-brand"' in content
    assert ">LoRAForge</a>" in content
    assert '<a href="/" class="lf-brand-dashboard" id="lf-dashboard-link">Dashboard</a>' in content
    assert '<a href="/api/docs/">API docs</a>' in content
    assert "View site" not in content


def test_tags_show_three_chips_and_a_count_of_the_rest(admin_client):
    AdapterFactory(tags=["anime", "landscape", "night sky", "portrait", "neon"])

    content = admin_client.get("/admin/adapters/adapter/").content.decode()

    assert content.count('<span class="lf-chip" title="') == 3
    assert '<span class="lf-chip lf-chip-more" title="anime, landscape, night sky, portrait, neon">+2</span>' in content


def test_a_tag_is_escaped_in_its_chip(admin_client):
    AdapterFactory(tags=["<b>bold</b>"])

    content = admin_client.get("/admin/adapters/adapter/").content.decode()

    assert "&lt;b&gt;bold&lt;/b&gt;" in content
    assert "<b>bold</b>" not in content


def test_the_read_only_sections_of_the_adapter_page_start_collapsed(admin_client):
    adapter = AdapterFactory()

    content = admin_client.get(f"/admin/adapters/adapter/{adapter.pk}/change/").content.decode()

    assert content.count('class="module aligned collapse"') == 6
    assert content.index(">Curation</h2>") < content.index(">File</h2>")
    assert 'class="module aligned "' in content  # the curation and composition sections stay open
