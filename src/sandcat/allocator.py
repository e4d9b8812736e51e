"""How many malloc arenas glibc may keep: set once at startup, before any thread starts.

glibc gives each thread that allocates its own arena (up to eight per core),
and an arena keeps what it once held: freed blocks stay mapped for the next
allocation in that arena. Sandcat's worker threads (PostgreSQL calls, Kafka's
librdkafka threads, file work) each allocate a little in their own arena, and
the soak (bench/RESULTS.md, "Soak") measured the resident size creeping up for
an hour in fifteen such arenas while Python's own live objects stayed flat.
``server.malloc_arena_max`` (default 2) caps them with ``mallopt(M_ARENA_MAX)``;
0 leaves glibc's default. ``MALLOC_ARENA_MAX`` in the environment, read by glibc
itself, wins over the setting. Other C libraries (musl) have no such knob: the
setting is skipped there, with a log line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

#: ``M_ARENA_MAX`` from glibc's malloc.h.
_M_ARENA_MAX = -8


def limit_arenas(arenas: int, *, env: dict[str, str] | None = None) -> str:
    """Cap glibc's malloc arenas at ``arenas`` (0: leave the default); what was done, logged."""
    environment = os.environ if env is None else env
    if arenas == 0:
        outcome = "malloc arenas: glibc's default (server.malloc_arena_max = 0)"
    elif "MALLOC_ARENA_MAX" in environment:
        value = environment["MALLOC_ARENA_MAX"]
        outcome = f"malloc arenas: MALLOC_ARENA_MAX={value} from the environment"
    else:
        outcome = _mallopt(arenas)
    log.info("%s", outcome)
    return outcome


def _mallopt(arenas: int) -> str:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        gnu = libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return "malloc arenas: not glibc, server.malloc_arena_max not applied"
    gnu.restype = ctypes.c_char_p
    if mallopt(_M_ARENA_MAX, arenas) != 1:  # pragma: no cover - glibc takes any positive value
        return f"malloc arenas: glibc {gnu().decode()} refused M_ARENA_MAX = {arenas}"
    return f"malloc arenas: at most {arenas} (glibc {gnu().decode()}, server.malloc_arena_max)"
