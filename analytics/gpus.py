"""GPU readings (SPEC 6.9): NVML first (every device's name, memory, utilisation, temperature, fan and power), then
``torch.cuda``. Neither library is imported at module level (STYLE 10): ``pynvml`` is imported by the reading, and
``torch`` is used only when this process has already imported it (importing torch takes seconds: a status request
never pays for it). A host without either reads as no GPU, which is not an error.

Readings are kept ``CACHE_SECONDS`` per process so the dashboard and the status endpoint do not initialise NVML on
every request.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger("loraforge.analytics")

MIB = 1024 * 1024
CACHE_SECONDS = 5.0
SOURCE_NVML = "nvml"
SOURCE_TORCH = "torch"
T = TypeVar("T")


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    memory_used: int | None  # MiB
    memory_total: int | None  # MiB
    memory_percent: float | None
    utilization_percent: float | None
    temperature_c: float | None = None
    fan_percent: float | None = None
    power_watts: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GpuReading:
    source: str | None  # "nvml", "torch" or None (no GPU)
    devices: list[GpuDevice] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return bool(self.devices)

    @property
    def first(self) -> GpuDevice | None:
        return self.devices[0] if self.devices else None


NO_GPU = GpuReading(source=None)
_lock = threading.Lock()
_cached: tuple[float, GpuReading] | None = None


def gpu_reading(*, max_age: float = CACHE_SECONDS) -> GpuReading:
    """The GPUs of this host, read at most ``max_age`` seconds ago."""
    global _cached
    cached = _cached
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1]
    with _lock:
        cached = _cached
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        reading = _read()
        _cached = (time.monotonic(), reading)
    return reading


def gpu_reading_reset() -> None:
    """Forget the kept reading (tests)."""
    global _cached
    with _lock:
        _cached = None


def _read() -> GpuReading:
    devices = nvml_devices()
    if devices:
        return GpuReading(source=SOURCE_NVML, devices=devices)
    devices = torch_devices()
    if devices:
        return GpuReading(source=SOURCE_TORCH, devices=devices)
    return NO_GPU


# --- NVML -------------------------------------------------------------------------------------------


def nvml_devices() -> list[GpuDevice] | None:
    """Every NVML device, or None when NVML is missing or cannot start (no driver: a CPU-only host)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError and friends: no driver, no library
        logger.debug("NVML unavailable: %s", exc)
        return None
    try:
        return [_nvml_device(pynvml, index) for index in range(pynvml.nvmlDeviceGetCount())]
    except Exception as exc:
        logger.warning("NVML could not list the GPUs: %s", exc)
        return None
    finally:
        _optional(pynvml.nvmlShutdown)


def _nvml_device(pynvml: Any, index: int) -> GpuDevice:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = pynvml.nvmlDeviceGetName(handle)
    memory = _optional(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
    rates = _optional(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
    temperature = _optional(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    fan = _optional(lambda: pynvml.nvmlDeviceGetFanSpeed(handle))
    power = _optional(lambda: pynvml.nvmlDeviceGetPowerUsage(handle))  # milliwatts
    used, total = (int(memory.used), int(memory.total)) if memory is not None else (None, None)
    return GpuDevice(
        index=index,
        name=name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name),
        memory_used=None if used is None else used // MIB,
        memory_total=None if total is None else total // MIB,
        memory_percent=_percent(used, total),
        utilization_percent=None if rates is None else float(rates.gpu),
        temperature_c=None if temperature is None else float(temperature),
        fan_percent=None if fan is None else float(fan),
        power_watts=None if power is None else round(power / 1000.0, 1),
    )


def _optional(read: Callable[[], T]) -> T | None:
    """A reading a device may not support (fan, power on some boards): None instead of an error."""
    try:
        return read()
    except Exception:
        return None


def _percent(used: int | None, total: int | None) -> float | None:
    if used is None or not total:
        return None
    return round(100.0 * used / total, 1)


# --- torch.cuda -------------------------------------------------------------------------------------


def torch_devices() -> list[GpuDevice] | None:
    """CUDA devices as torch sees them, only when torch is already imported in this process (never imported here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available():
            return None
        return [_torch_device(torch, index) for index in range(torch.cuda.device_count())]
    except Exception as exc:
        logger.warning("torch.cuda could not list the GPUs: %s", exc)
        return None


def _torch_device(torch: Any, index: int) -> GpuDevice:
    name = str(torch.cuda.get_device_name(index))
    free_total = _optional(lambda: torch.cuda.mem_get_info(index))
    used, total = (int(free_total[1] - free_total[0]), int(free_total[1])) if free_total else (None, None)
    utilization = _optional(lambda: torch.cuda.utilization(index))
    return GpuDevice(
        index=index,
        name=name,
        memory_used=None if used is None else used // MIB,
        memory_total=None if total is None else total // MIB,
        memory_percent=_percent(used, total),
        utilization_percent=None if utilization is None else float(utilization),
    )
