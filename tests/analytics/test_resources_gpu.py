"""GPU readings (SPEC 6.9) through a fake NVML module installed at the import boundary (``sys.modules``)."""

from __future__ import annotations

import sys
import types

import pytest

from analytics import gpus
from analytics.gpus import gpu_reading, gpu_reading_reset
from tests.fakes.nvml import FakeGpu

URL = "/api/v1/system/status"


def test_nvml_lists_every_device_with_memory_utilisation_and_sensors(fake_nvml):
    fake_nvml.gpus = [FakeGpu(), FakeGpu(name="NVIDIA RTX A4000", memory_total_mb=16376, memory_used_mb=0, fan=None)]
    reading = gpu_reading()
    assert reading.source == "nvml"
    first, second = reading.devices
    assert first.as_dict() == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_used": 20389,
        "memory_total": 81559,
        "memory_percent": 25.0,
        "utilization_percent": 37.0,
        "temperature_c": 41.0,
        "fan_percent": 30.0,
        "power_watts": 123.5,
    }
    assert (second.name, second.memory_percent, second.fan_percent) == ("NVIDIA RTX A4000", 0.0, None)
    assert fake_nvml.calls == ["init", "shutdown"]


def test_readings_are_kept_a_few_seconds(fake_nvml):
    gpu_reading()
    gpu_reading()
    assert fake_nvml.calls == ["init", "shutdown"]
    gpu_reading(max_age=0)
    assert fake_nvml.calls.count("init") == 2


def test_an_nvml_init_failure_falls_back_to_no_gpu(fake_nvml):
    fake_nvml.init_error = True
    reading = gpu_reading()
    assert (reading.available, reading.source, reading.devices) == (False, None, [])


def test_an_nvml_init_failure_falls_back_to_an_imported_torch(fake_nvml, monkeypatch):
    fake_nvml.init_error = True
    monkeypatch.setattr(gpus, "torch_devices", _real_torch_devices)
    monkeypatch.setitem(sys.modules, "torch", _fake_torch())
    reading = gpu_reading()
    assert reading.source == "torch"
    [device] = reading.devices
    assert (device.name, device.memory_total, device.memory_used, device.memory_percent) == (
        "Fake CUDA",
        8192,
        2048,
        25.0,
    )


def test_torch_is_never_imported_for_a_reading(monkeypatch):
    monkeypatch.setattr(gpus, "torch_devices", _real_torch_devices)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr("builtins.__import__", _refusing_torch(__import__))
    assert gpu_reading().source is None


def test_a_missing_nvml_package_reads_as_no_gpu():
    gpu_reading_reset()
    assert gpu_reading().available is False  # the autouse fixture makes ``import pynvml`` fail


@pytest.mark.django_db
def test_status_reports_nvml_gpus_and_the_first_gpus_memory(api, worker_running, fake_nvml):
    body = api.get(URL).json()
    assert body["gpu_available"] is True
    assert body["gpu_status"] == "NVIDIA H100 80GB HBM3"
    assert (body["memory_used"], body["memory_total"]) == (20389, 81559)
    assert body["gpu"]["source"] == "nvml"
    assert body["gpu"]["devices"][0]["utilization_percent"] == 37.0
    assert body["metrics"]["gpus"] == body["gpu"]["devices"]
    assert body["recommendations"]["gpu_available"] is True
    assert body["warnings"] == []


@pytest.mark.django_db
def test_status_on_a_host_whose_nvml_cannot_start_is_cpu_only(api, worker_running, fake_nvml):
    fake_nvml.init_error = True
    body = api.get(URL).json()
    assert (body["gpu_available"], body["gpu_status"], body["gpu"]["source"]) == (False, "unavailable", None)
    assert body["warnings"] == []


_REAL_TORCH_DEVICES = gpus.torch_devices


def _real_torch_devices():
    return _REAL_TORCH_DEVICES()


def _fake_torch() -> types.ModuleType:
    mib = 1024 * 1024
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        get_device_name=lambda index: "Fake CUDA",
        mem_get_info=lambda index: (6144 * mib, 8192 * mib),
        utilization=lambda index: 12,
    )
    module = types.ModuleType("torch")
    module.cuda = cuda  # type: ignore[attr-defined]
    return module


def _refusing_torch(real_import):
    def guarded(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise AssertionError("torch was imported")
        return real_import(name, *args, **kwargs)

    return guarded
