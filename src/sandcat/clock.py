"""Wall-clock time in the unit the wire uses (protocol/SPEC.md §3, times)."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Milliseconds since the Unix epoch, UTC. Injected so tests can control it.
Clock = Callable[[], int]


def system_clock() -> int:
    return time.time_ns() // 1_000_000
