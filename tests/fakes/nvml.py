"""A fake ``pynvml`` (nvidia-ml-py) module for the GPU readings, installed at the import boundary:
``monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(...).module())``. It answers the calls
``analytics.gpus`` makes with the types NVML returns (memory in bytes, power in milliwatts)."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024


class NVMLError(Exception):
    """Stands for ``pynvml.NVMLError`` (and its subclasses such as ``NVMLError_NotSupported``)."""


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total_mb: int = 81559
    memory_used_mb: int = 20389
    utilization: int = 37
    temperature: int | None = 41
    fan: int | None = 30  # None: NVML_ERROR_NOT_SUPPORTED (passively cooled boards)
    power_mw: int | None = 123456


@dataclass
class FakeNvml:
    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    init_error: bool = False  # nvmlInit fails as on a host without the driver
    calls: list[str] = field(default_factory=list)

    def module(self) -> types.ModuleType:
        module = types.ModuleType("pynvml")
        module.NVMLError = NVMLError  # type: ignore[attr-defined]
        module.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
        for name in (
            "nvmlInit",
            "nvmlShutdown",
            "nvmlDeviceGetCount",
            "nvmlDeviceGetHandleByIndex",
            "nvmlDeviceGetName",
            "nvmlDeviceGetMemoryInfo",
            "nvmlDeviceGetUtilizationRates",
            "nvmlDeviceGetTemperature",
            "nvmlDeviceGetFanSpeed",
            "nvmlDeviceGetPowerUsage",
        ):
            setattr(module, name, getattr(self, name))
        return module

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error:
            raise NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> bytes:
        return handle.name.encode()

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Any:
        total, used = handle.memory_total_mb * MIB, handle.memory_used_mb * MIB
        return types.SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> Any:
        return types.SimpleNamespace(gpu=handle.utilization, memory=handle.utilization // 2)

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        return _supported(handle.temperature)

    def nvmlDeviceGetFanSpeed(self, handle: FakeGpu) -> int:
        return _supported(handle.fan)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        return _supported(handle.power_mw)


def _supported(value: int | None) -> int:
    if value is None:
        raise NVMLError("Not Supported")
    return value
