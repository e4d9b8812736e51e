"""The process's own families: the standard ``process_*`` ones (read from /proc
when ``/metrics`` is scraped) and the garbage collector's pauses."""

from __future__ import annotations

import gc
import math
import os
import resource
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sandcat.metrics import LabeledHistogram, Registry

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STARTED_AT = time.time()
#: GC pauses: from 10 us to 1 s.
GC_BUCKETS_S = (0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def _resident_bytes() -> float:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE_BYTES
    except OSError:  # pragma: no cover - not Linux: the peak is what there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _open_fds() -> float:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return math.nan


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def watch_process(registry: Registry) -> None:
    """The standard process families, read from /proc when ``/metrics`` is scraped."""
    registry.callback(
        "process_resident_memory_bytes", "Resident memory size in bytes.", _resident_bytes
    )
    registry.callback(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        _cpu_seconds,
        kind="counter",
    )
    registry.callback("process_open_fds", "Number of open file descriptors.", _open_fds)
    registry.callback(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    )
    registry.callback(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        lambda: _STARTED_AT,
    )


@asynccontextmanager
async def watch_gc(registry: Registry) -> AsyncIterator[LabeledHistogram]:
    """``python_gc_pause_seconds{generation}``: each collection's duration, timed by a
    ``gc.callbacks`` hook that is removed again when the block ends."""
    pauses = registry.labeled_histogram(
        "python_gc_pause_seconds",
        "Garbage collector pauses (one per collection), by generation.",
        ("generation",),
        GC_BUCKETS_S,
    )
    started = [0.0]

    def hook(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.observe(time.perf_counter() - started[0], str(info["generation"]))

    gc.callbacks.append(hook)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(hook)
