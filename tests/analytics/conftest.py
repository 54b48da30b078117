"""Fixtures of the analytics tests: a CPU-only host unless a test installs the fake NVML, thresholds that the
test machine's own disk cannot trip."""

from __future__ import annotations

import sys

import pytest

from analytics.gpus import gpu_reading_reset
from tests.fakes.nvml import FakeNvml


@pytest.fixture(autouse=True)
def cpu_only_host(monkeypatch):
    """No NVML (``import pynvml`` fails) and no CUDA through torch (whether or not another test imported it)."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr("analytics.gpus.torch_devices", lambda: None)
    gpu_reading_reset()
    yield
    gpu_reading_reset()


@pytest.fixture
def fake_nvml(monkeypatch) -> FakeNvml:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    gpu_reading_reset()
    return fake


@pytest.fixture(autouse=True)
def _status_settings(settings, lora_dir):
    settings.LORAFORGE_DISK_WARNING_PERCENT = 100
    settings.LORAFORGE_STATUS_ACTIVE_WARNING = 5
    settings.LORAFORGE_STATUS_FAILED_WARNING = 5


@pytest.fixture
def worker_running(monkeypatch):
    """The embedded worker runs in this process (as in the ASGI server of the embedded shape)."""
    monkeypatch.setattr("analytics.status.celery.embedded_worker_alive", lambda: True)
