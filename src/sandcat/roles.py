"""Services by role (``sandcat serve --role``; docs/roles.md has the whole table).

``all`` (the default) is one process type doing everything, as Sandcat always
has. The other roles split it so that connections, the HTTP API and the
background work scale separately, sharing state only through the backends:

- ``gateway``: the WebSocket listener and the send path behind it (sequencer,
  persister, router: an ack still means the message is committed), its own
  outbox publisher and delivery-slot consumer, typing/presence/calls, the
  revocation watch;
- ``api``: the HTTP API, its own outbox publisher (group changes write
  system messages), the postman;
- ``worker``: the background tasks: take-over of dead instances' outbox rows
  and every cluster singleton under a lease (``sandcat.leadership``).

Every role answers ``/healthz`` and ``/metrics`` on ``server.http_port``; a
gateway or worker serves nothing else there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandcat.config import Config
from sandcat.errors import ConfigError
from sandcat.store.backends import is_postgres


@dataclass(frozen=True, slots=True)
class Duties:
    """What one role runs."""

    #: The WebSocket listener, the send pipeline, signals, the consumer, revocation watch.
    gateway: bool
    #: The HTTP API (else only /healthz and /metrics on the HTTP port), the postman.
    api: bool
    #: Outbox take-over and the cluster singletons (janitors, retention, partitions).
    worker: bool

    @property
    def token_keys(self) -> bool:
        """Whether this role signs or checks access tokens (and refreshes their keys)."""
        return self.gateway or self.api


DUTIES: dict[str, Duties] = {
    "all": Duties(gateway=True, api=True, worker=True),
    "gateway": Duties(gateway=True, api=False, worker=False),
    "api": Duties(gateway=False, api=True, worker=False),
    "worker": Duties(gateway=False, api=False, worker=True),
}


def duties(config: Config) -> Duties:
    """What ``config``'s role runs; ``ConfigError`` for a split role on SQLite."""
    role = config.server.role
    if role != "all" and not is_postgres(config):
        raise ConfigError(
            "server.role",
            role,
            "needs backends.database_url = postgresql://... "
            "(roles share the backends; SQLite is one process's file)",
        )
    return DUTIES[role]
