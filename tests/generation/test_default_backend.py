"""The ``default`` backend from SDNEXT_URL at start of every web and worker process (SPEC 6.3.7)."""

from __future__ import annotations

import pytest
from django.db import connection

from generation.backends.services import backend_sync_default
from generation.models import GenerationBackend
from loraforge.signals import send_process_started
from tests.generation.factories import GenerationBackendFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sdnext_env(settings):
    settings.SDNEXT_URL = "http://sdnext-main:7860/"
    settings.SDNEXT_USERNAME = "forge"
    settings.SDNEXT_PASSWORD = "letmein"
    return settings


def test_creates_the_default_backend_from_the_settings(sdnext_env):
    backend_sync_default()
    backend = GenerationBackend.objects.get(name="default")
    assert backend.is_default is True
    assert backend.enabled is True
    assert backend.url == "http://sdnext-main:7860"
    assert (backend.username, backend.password) == ("forge", "letmein")


def test_updates_an_existing_default_backend(sdnext_env):
    GenerationBackendFactory(name="default", url="http://old:1", username="old", password="old", is_default=False)
    backend_sync_default()
    backend = GenerationBackend.objects.get(name="default")
    assert (backend.url, backend.username, backend.password) == ("http://sdnext-main:7860", "forge", "letmein")
    assert backend.is_default is True
    assert GenerationBackend.objects.count() == 1


def test_unset_credentials_clear_those_of_the_default_backend(settings):
    settings.SDNEXT_URL = "http://sdnext-main:7860"
    settings.SDNEXT_USERNAME = None
    settings.SDNEXT_PASSWORD = None
    GenerationBackendFactory(name="default", url="http://sdnext-main:7860", username="old", password="old")
    backend_sync_default()
    backend = GenerationBackend.objects.get(name="default")
    assert (backend.username, backend.password) == (None, None)


def test_operator_choices_survive_a_sync(sdnext_env):
    GenerationBackendFactory(name="default", url="http://old:1", enabled=False, timeout_seconds=120)
    backend_sync_default()
    backend = GenerationBackend.objects.get(name="default")
    assert (backend.enabled, backend.timeout_seconds) == (False, 120)


def test_a_changed_url_forgets_the_last_health(sdnext_env):
    GenerationBackendFactory(name="default", url="http://old:1", healthy=True, version_info={"app": "sd.next"})
    backend_sync_default()
    backend = GenerationBackend.objects.get(name="default")
    assert (backend.healthy, backend.version_info) == (None, None)


def test_unset_url_leaves_an_existing_row_alone(settings):
    settings.SDNEXT_URL = None
    GenerationBackendFactory(name="default", url="http://kept:1", is_default=True, password="kept")
    assert backend_sync_default() is None
    backend = GenerationBackend.objects.get(name="default")
    assert (backend.url, backend.password) == ("http://kept:1", "kept")


def test_unset_url_creates_nothing(settings):
    settings.SDNEXT_URL = None
    backend_sync_default()
    assert not GenerationBackend.objects.exists()


def test_process_start_signal_syncs_the_default_backend(sdnext_env):
    send_process_started("worker")
    assert GenerationBackend.objects.filter(name="default", is_default=True).exists()


@pytest.mark.django_db(transaction=True)
def test_web_start_up_syncs_the_default_backend(sdnext_env, settings, lora_dir):
    from loraforge.lifespan import on_startup

    settings.LORAFORGE_SCAN_ON_STARTUP = False
    settings.LORAFORGE_EMBEDDED_WORKER = "off"
    on_startup()
    assert GenerationBackend.objects.filter(name="default").exists()


@pytest.mark.django_db(transaction=True)
def test_a_missing_table_is_tolerated(sdnext_env, caplog):
    with connection.schema_editor() as editor:
        editor.delete_model(GenerationBackend)
    try:
        assert backend_sync_default() is None
        send_process_started("web")  # must not raise either
        assert "Could not sync the default generation backend" in caplog.text
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(GenerationBackend)


def test_the_password_is_not_logged(sdnext_env, caplog):
    caplog.set_level("DEBUG")
    backend_sync_default()
    assert "letmein" not in caplog.text
