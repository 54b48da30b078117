"""The recommender in the admin as a staff user sees it (SPEC 9.1): the adapter page's recommendations panel, the
"compute embeddings" action, read-only sessions and feedback, editable preferences."""

from __future__ import annotations

import logging
import time

import pytest
from django.utils import timezone

from adapters.models import Adapter
from deliveries.models import DeliveryJob
from loraforge.models import BackgroundJob
from recommendations.admin.preferences import DUPLICATE
from recommendations.index import index_reset
from recommendations.models import AdapterEmbedding, RecommendationFeedback, RecommendationSession, UserPreference
from tests.factories import AdapterFactory, link_adapters

pytestmark = pytest.mark.django_db
ADAPTERS = "/admin/adapters/adapter/"
SESSIONS = "/admin/recommendations/recommendationsession/"
FEEDBACK = "/admin/recommendations/recommendationfeedback/"
PREFERENCES = "/admin/recommendations/userpreference/"
EMBEDDINGS = "/admin/recommendations/adapterembedding/"


@pytest.fixture(autouse=True)
def _fresh_index():
    """The per-process index keys on the catalogue version, which a rolled-back test reuses."""
    index_reset()
    yield
    index_reset()


def change_url(adapter: Adapter) -> str:
    return f"{ADAPTERS}{adapter.pk}/change/"


def panel_section(content: str, table_id: str) -> str:
    """The HTML of one panel table (up to the next heading)."""
    start = content.index(f'id="{table_id}"')
    return content[start : content.index("</table>", start)]


def generation_job(*adapters: Adapter, status: str = "succeeded") -> DeliveryJob:
    job = DeliveryJob.objects.create(kind="generation", mode="sdnext", prompt="a lake", status=status)
    link_adapters(job, [(adapter, 1.0) for adapter in adapters])
    return job


def watercolor_catalogue():
    """A target, an adapter sharing two of its tags, and an unrelated one."""
    target = AdapterFactory(
        name="Watercolor Landscape", sdnext_name="wc_landscape", tags=["watercolor", "landscape", "painting"]
    )
    similar = AdapterFactory(
        name="Watercolor Portrait", sdnext_name="wc_portrait", tags=["watercolor", "painting", "portrait"]
    )
    other = AdapterFactory(name="Neon Skyline", sdnext_name="neon_city", tags=["cyberpunk", "neon"])
    return target, similar, other


# --- the adapter page's panel ---------------------------------------------------------------------


def test_panel_links_the_similar_adapter(admin_client):
    target, similar, other = watercolor_catalogue()
    response = admin_client.get(change_url(target))
    assert response.status_code == 200
    table = panel_section(response.content.decode(), "reco-similar")
    assert f'href="{change_url(similar)}"' in table
    assert "Watercolor Portrait" in table
    assert "Shared tags: painting, watercolor" in table
    assert str(other.pk) not in table


def test_panel_lists_the_adapter_used_with_it(admin_client):
    target, _similar, other = watercolor_catalogue()
    generation_job(target, other)
    generation_job(target, other, status="failed")
    response = admin_client.get(change_url(target))
    table = panel_section(response.content.decode(), "reco-works-well")
    assert f'href="{change_url(other)}"' in table
    assert "Often used together (1 job)" in table
    assert "1.000" in table  # co-usage 1 / sqrt(1 * 1)


def test_panel_empty_states(admin_client):
    lonely = AdapterFactory(name="Lonely", sdnext_name="lonely", tags=["solo"])
    content = admin_client.get(change_url(lonely)).content.decode()
    assert 'id="reco-similar-empty"' in content
    assert 'id="reco-works-well-empty"' in content


def test_panel_records_no_session(admin_client):
    target, _similar, _other = watercolor_catalogue()
    admin_client.get(change_url(target))
    assert not RecommendationSession.objects.exists()


def test_panel_failure_leaves_the_page_working(admin_client, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("index exploded")

    monkeypatch.setattr("recommendations.services.recommend.recommend_similar", broken)
    target = AdapterFactory()
    with caplog.at_level(logging.ERROR, logger="loraforge.adapters"):
        response = admin_client.get(change_url(target))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Recommendations unavailable" in content
    assert 'name="_save"' in content
    assert any("index exploded" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)


# --- the "compute embeddings" action --------------------------------------------------------------


def test_compute_embeddings_action_queues_one_job(admin_client, sent_tasks, django_capture_on_commit_callbacks):
    first, second, _third = AdapterFactory.create_batch(3)
    selected = sorted([str(first.pk), str(second.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            ADAPTERS, {"action": "compute_embeddings", "_selected_action": selected}, follow=True
        )
    job = BackgroundJob.objects.get(kind="embeddings")
    assert job.created_via == "admin"
    assert sorted(job.params["adapter_ids"]) == selected
    assert sent_tasks == [("recommendations.compute_embeddings", [str(job.pk)], sent_tasks[0][2])]
    assert f"Queued embeddings for 2 adapters (job {job.pk})" in response.content.decode()


def test_compute_embeddings_is_offered_in_the_action_list(admin_client):
    AdapterFactory()
    content = admin_client.get(ADAPTERS).content.decode()
    assert '<option value="compute_embeddings">' in content


# --- sessions and feedback: read-only -------------------------------------------------------------


def recorded_feedback(feedback_type="positive"):
    adapter = AdapterFactory()
    session = RecommendationSession.objects.create(
        kind="similar",
        context_key=f"similar:{adapter.pk}",
        target_adapter=adapter,
        recommendations=[{"lora_id": str(adapter.pk), "rank": 1, "final_score": 0.5}],
    )
    return RecommendationFeedback.objects.create(session=session, adapter=adapter, feedback_type=feedback_type)


def test_sessions_are_listed_and_filtered_by_kind(admin_client):
    feedback = recorded_feedback()
    RecommendationSession.objects.create(kind="by_trigger", context_key="trigger:neon", trigger_query="neon")
    response = admin_client.get(SESSIONS, {"kind": "similar"})
    assert [session.pk for session in response.context["cl"].result_list] == [feedback.session_id]


def test_sessions_and_feedback_search(admin_client):
    feedback = recorded_feedback()
    adapter_name = feedback.adapter.name
    sessions = admin_client.get(SESSIONS, {"q": adapter_name})
    assert [session.pk for session in sessions.context["cl"].result_list] == [feedback.session_id]
    by_session = admin_client.get(FEEDBACK, {"q": str(feedback.session_id)[:8]})
    assert [row.pk for row in by_session.context["cl"].result_list] == [feedback.pk]


def test_sessions_are_read_only(admin_client):
    session = recorded_feedback().session
    assert admin_client.get(f"{SESSIONS}add/").status_code == 403
    change = admin_client.get(f"{SESSIONS}{session.pk}/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert admin_client.post(f"{SESSIONS}{session.pk}/change/", {"kind": "for_prompt"}).status_code == 403
    assert admin_client.get(f"{SESSIONS}{session.pk}/delete/").status_code == 403


def test_feedback_is_listed_filtered_and_read_only(admin_client):
    positive = recorded_feedback("positive")
    recorded_feedback("dismissed")
    response = admin_client.get(FEEDBACK, {"feedback_type": "positive"})
    assert [feedback.pk for feedback in response.context["cl"].result_list] == [positive.pk]
    assert admin_client.get(f"{FEEDBACK}add/").status_code == 403
    change = admin_client.get(f"{FEEDBACK}{positive.pk}/change/")
    assert 'name="_save"' not in change.content.decode()
    assert f'href="{SESSIONS}{positive.session_id}/change/"' in change.content.decode()


def test_embeddings_never_show_the_vector(admin_client):
    adapter = AdapterFactory()
    AdapterEmbedding.objects.create(
        adapter=adapter, model_name="all-MiniLM-L6-v2", dim=2, vector=b"VECTORBYTES",
        text_sha256="0" * 64, computed_at=timezone.now(),
    )  # fmt: skip
    listing = admin_client.get(EMBEDDINGS).content.decode()
    assert "all-MiniLM-L6-v2" in listing
    detail = admin_client.get(f"{EMBEDDINGS}{adapter.pk}/change/").content.decode()
    assert "VECTORBYTES" not in detail
    assert "Vector" not in detail


# --- preferences: editable ------------------------------------------------------------------------


def preference_post(**values: str) -> dict[str, str]:
    return {"preference_type": "style", "preference_value": "watercolor", "confidence": "0.5", **values}


def test_preference_add_normalises_the_value(admin_client):
    response = admin_client.post(f"{PREFERENCES}add/", preference_post(preference_value="  WaterColor  "))
    assert response.status_code == 302
    preference = UserPreference.objects.get()
    assert (preference.preference_value, preference.learned_from, preference.evidence_count) == (
        "watercolor",
        "explicit",
        1,
    )


def test_preference_add_rejects_a_duplicate(admin_client):
    admin_client.post(f"{PREFERENCES}add/", preference_post())
    response = admin_client.post(f"{PREFERENCES}add/", preference_post(preference_value="WATERCOLOR "))
    assert response.status_code == 200
    assert DUPLICATE in response.context["adminform"].form.errors["preference_value"]
    assert UserPreference.objects.count() == 1


def test_preference_confidence_must_be_between_zero_and_one(admin_client):
    response = admin_client.post(f"{PREFERENCES}add/", preference_post(confidence="1.5"))
    assert response.status_code == 200
    assert "confidence" in response.context["adminform"].form.errors
    assert not UserPreference.objects.exists()


def test_preference_edit_normalises_and_rejects_a_clash(admin_client):
    admin_client.post(f"{PREFERENCES}add/", preference_post(preference_value="ink"))
    admin_client.post(f"{PREFERENCES}add/", preference_post())
    preference = UserPreference.objects.get(preference_value="watercolor")
    url = f"{PREFERENCES}{preference.pk}/change/"
    clash = admin_client.post(url, preference_post(preference_value=" Ink"))
    assert DUPLICATE in clash.context["adminform"].form.errors["preference_value"]
    saved = admin_client.post(url, preference_post(preference_value=" Gouache ", confidence="0.9"))
    assert saved.status_code == 302
    preference.refresh_from_db()
    assert (preference.preference_value, preference.confidence) == ("gouache", 0.9)


@pytest.mark.django_db(transaction=True)
def test_a_large_changed_catalogue_shows_a_note_while_its_index_builds_in_the_background(admin_client, monkeypatch):
    from recommendations import index as index_module

    adapters = AdapterFactory.create_batch(3)
    monkeypatch.setattr(index_module, "INLINE_BUILD_MAX_ADAPTERS", 1)  # three adapters count as a large catalogue
    first = admin_client.get(change_url(adapters[0])).content.decode()
    assert 'id="reco-preparing"' in first
    deadline = time.monotonic() + 30
    while not index_module.index_is_current() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index_module.index_is_current()
    assert 'id="reco-preparing"' not in admin_client.get(change_url(adapters[0])).content.decode()
