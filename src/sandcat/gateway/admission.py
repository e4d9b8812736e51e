"""Who may hold a socket of the WebSocket listener, decided at accept.

Every socket costs a descriptor from the moment it is accepted, and the
process's descriptors are shared with the HTTP listener, the database and
the blob files. So the listener counts sockets from accept, not from the
upgrade (a bare TCP connection that never sends its upgrade holds one for
``auth_timeout_s``), and:

- a peer address (an IPv6 peer by its /64, ``address_key``) may hold at most
  ``max_unauthenticated_per_address`` sockets that have not completed HELLO;
  more are closed at once;
- the listener holds at most ``max_connections`` sockets, and never more
  than the descriptor limit minus ``reserved_descriptors`` (kept for HTTP
  and storage, so the API still answers while the WebSocket side is full);
  a socket beyond that gets HTTP 503 to its upgrade, and beyond a few more
  (``REFUSING``) is closed at once without reading.
"""

from __future__ import annotations

import enum
import logging
import resource
from collections import Counter
from collections.abc import Callable

from sandcat.store.ratelimit import address_key

log = logging.getLogger(__name__)

#: Sockets over the limit that are still read and answered 503 (each briefly
#: holds a descriptor); past these, sockets are closed without a word.
REFUSING = 32


class Verdict(enum.Enum):
    SERVE = "serve"
    REFUSE = "refuse"  # answer the upgrade 503
    DROP = "drop"  # close at once


def descriptor_budget(max_connections: int, reserved: int) -> int:
    """How many sockets the listener may hold: ``max_connections``, at most the
    descriptor limit (raised to its hard limit first) less ``reserved`` and
    ``REFUSING``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # pragma: no cover - a hardened sandbox
            log.warning("cannot raise the descriptor limit %d to %d: %s", soft, hard, exc)
    if soft == resource.RLIM_INFINITY:  # pragma: no cover - not on Linux
        return max_connections
    budget = max(1, soft - reserved - REFUSING)
    if budget < max_connections:
        log.info(
            "gateway.max_connections %d is over what %d descriptors allow; using %d",
            max_connections,
            soft,
            budget,
        )
    return min(max_connections, budget)


class Admission:
    """Counts the listener's sockets, and those of each address not yet authenticated."""

    def __init__(
        self, *, max_open: int, per_address: int, exempt: Callable[[str], bool] | None = None
    ) -> None:
        self._max_open = max_open
        self._per_address = per_address
        self._exempt = exempt
        self.open = 0
        self._pending: Counter[str] = Counter()

    def admit(self, address: str) -> Verdict:
        """Decide on a socket just accepted from ``address``; unless DROP, it is
        counted until ``release``."""
        if self.open >= self._max_open + REFUSING:
            return Verdict.DROP
        key = address_key(address)
        if self._pending[key] >= self._per_address and not (
            self._exempt is not None and self._exempt(address)
        ):
            return Verdict.DROP
        self.open += 1
        self._pending[key] += 1
        return Verdict.REFUSE if self.open > self._max_open else Verdict.SERVE

    def authenticated(self, address: str) -> None:
        """The socket from ``address`` completed HELLO: it no longer counts as pending."""
        self._forget(address)

    def release(self, address: str, *, authenticated: bool) -> None:
        self.open -= 1
        if not authenticated:
            self._forget(address)

    def _forget(self, address: str) -> None:
        key = address_key(address)
        self._pending[key] -= 1
        if self._pending[key] <= 0:
            del self._pending[key]
