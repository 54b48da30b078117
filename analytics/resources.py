"""Host CPU and memory readings (SPEC 3.6, 5.10): psutil when installed, else ``/proc/stat`` and ``/proc/meminfo``.

Nothing here touches the database, so the readings can run in the status probes' threads.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
CPU_INTERVAL = 0.1  # seconds between the two CPU counters of one reading
PROC_STAT = Path("/proc/stat")
PROC_MEMINFO = Path("/proc/meminfo")
PROC_UPTIME = Path("/proc/uptime")


@dataclass(frozen=True)
class HostReading:
    cpu_percent: float
    memory_percent: float
    memory_used_mb: int
    memory_total_mb: int


@dataclass(frozen=True)
class DiskUsage:
    total_bytes: int
    used_bytes: int
    free_bytes: int
    percent: float


def host_reading(*, interval: float = CPU_INTERVAL) -> HostReading:
    """CPU busy share over ``interval`` seconds and the memory in use (total minus available)."""
    cpu = cpu_percent(interval=interval)
    percent, used, total = memory_usage()
    return HostReading(cpu_percent=cpu, memory_percent=percent, memory_used_mb=used, memory_total_mb=total)


_cpu_lock = threading.Lock()
_cpu_last: tuple[float, float] | None = None  # (time.monotonic(), percent) of this process's last psutil reading


def cpu_percent(*, interval: float = CPU_INTERVAL) -> float:
    """CPU busy share, never waiting once the process has read it: since the previous reading when that is at least
    ``interval`` old (psutil keeps the counters), the previous value when it is younger, and over ``interval``
    seconds from now only for the process's first reading."""
    global _cpu_last
    try:
        import psutil
    except ImportError:
        return _proc_cpu_percent(interval)
    with _cpu_lock:
        if _cpu_last is not None and time.monotonic() - _cpu_last[0] < interval:
            return _cpu_last[1]
        value = round(float(psutil.cpu_percent(interval=interval if _cpu_last is None else None)), 1)
        _cpu_last = (time.monotonic(), value)
    return value


def memory_usage() -> tuple[float, int, int]:
    """``(percent, used MiB, total MiB)``."""
    try:
        import psutil
    except ImportError:
        return _proc_memory_usage()
    memory = psutil.virtual_memory()
    used = memory.total - memory.available
    return round(float(memory.percent), 1), used // MIB, memory.total // MIB


def uptime_seconds() -> int | None:
    """Seconds since the host booted (None when unknown)."""
    try:
        import psutil
    except ImportError:
        try:
            return int(float(PROC_UPTIME.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            return None
    return max(0, int(time.time() - psutil.boot_time()))


def disk_usage(path: str | Path) -> DiskUsage | None:
    """``shutil.disk_usage`` of the filesystem holding ``path`` (None when it does not exist or cannot be read)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    percent = round(100.0 * usage.used / usage.total, 1) if usage.total else 0.0
    return DiskUsage(total_bytes=usage.total, used_bytes=usage.used, free_bytes=usage.free, percent=percent)


# --- /proc fallbacks (Linux without psutil) ---------------------------------------------------------


def _proc_cpu_times() -> tuple[int, int]:
    """``(idle, total)`` jiffies of the ``cpu`` line of /proc/stat (idle includes iowait)."""
    fields = PROC_STAT.read_text().splitlines()[0].split()[1:]
    values = [int(value) for value in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return idle, sum(values[:8])


def _proc_cpu_percent(interval: float) -> float:
    try:
        idle_before, total_before = _proc_cpu_times()
        time.sleep(interval)
        idle_after, total_after = _proc_cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    elapsed = total_after - total_before
    if elapsed <= 0:
        return 0.0
    return round(100.0 * (elapsed - (idle_after - idle_before)) / elapsed, 1)


def _proc_memory_usage() -> tuple[float, int, int]:
    try:
        info = _meminfo_kib(PROC_MEMINFO.read_text())
    except OSError:
        return 0.0, 0, 0
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0))
    used = max(0, total - available)
    percent = round(100.0 * used / total, 1) if total else 0.0
    return percent, used // 1024, total // 1024


def _meminfo_kib(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0])
    return values
