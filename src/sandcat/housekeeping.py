"""Housekeeping: the background tasks with nothing to finish, cancelled at shutdown.

The postman (mail queue), token-key refresh, inbox retention, the census
(registered users and active sessions gauges; this instance's connections
reported to the connection book, the cluster's read back), the revocation watch (closes
sockets of sessions another instance or process ended) and the notice relay
(inbox in MongoDB: notices committed in SQL moved there). Each runs on the
roles that need it (docs/roles.md); inbox retention is a cluster singleton.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import trio

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.domain.accounts import Accounts
from sandcat.domain.census import run_census, run_connection_census
from sandcat.domain.inbox import Inbox, run_inbox_janitor
from sandcat.domain.inbox_relay import InboxRelay
from sandcat.domain.keyring import KeyRing
from sandcat.domain.revocations import Sockets, run_revocation_watch
from sandcat.leadership import Leadership, Task
from sandcat.mail import Postman
from sandcat.metrics import ServerMetrics
from sandcat.protocol import CloseCode
from sandcat.roles import DUTIES, Duties
from sandcat.store.census import CensusStore
from sandcat.store.connections import ConnectionBook
from sandcat.store.revocations import Revocations


@dataclass(frozen=True, slots=True)
class Housekeeping:
    config: Config
    clock: Clock
    postman: Postman
    secret: KeyRing
    inbox: Inbox
    accounts: Accounts
    sockets: Sockets
    census: CensusStore
    metrics: ServerMetrics
    #: The log of revoked sessions every instance polls (Redis, else the database).
    revocations: Revocations
    #: Where this instance reports its connections (Redis in a cluster), as ``instance``.
    connections: ConnectionBook
    instance: str
    #: This instance's authenticated connections now.
    connected: Callable[[], int]
    #: Inbox in MongoDB only: the outbox of notices to move there.
    notices: InboxRelay | None = None
    #: What this instance's role runs.
    duties: Duties = DUTIES["all"]
    #: Runs the cluster singletons under their leases (None: run them here).
    leadership: Leadership | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every task until cancelled; started once each has started."""
        config = self.config
        duties = self.duties
        async with trio.open_nursery() as tasks:
            if duties.api:
                await tasks.start(self.postman.run)
            if duties.token_keys:
                await tasks.start(partial(self.secret.run, interval_s=config.auth.key_refresh_s))
            await tasks.start(
                partial(
                    run_census,
                    self.census,
                    users=self.metrics.registered_users,
                    sessions=self.metrics.active_sessions,
                    interval_s=config.http.census_interval_s,
                    clock=self.clock,
                )
            )
            await tasks.start(
                partial(
                    run_connection_census,
                    self.connections,
                    instance=self.instance,
                    connected=self.connected,
                    gauge=self.metrics.cluster_connections,
                    interval_s=config.http.census_interval_s,
                    clock=self.clock,
                )
            )
            if duties.gateway:
                await tasks.start(
                    partial(
                        run_revocation_watch,
                        self.revocations,
                        self.sockets,
                        self.accounts,
                        interval_s=config.backends.revocation_poll_s,
                        close_code=CloseCode.SESSION_ENDED,
                    )
                )
            if self.notices is not None:
                # Every role: each wakes it after its own commits; the sweep is idempotent.
                await tasks.start(
                    partial(self.notices.run, interval_s=config.inbox.relay_interval_s)
                )
            if duties.worker:
                interval_s = config.inbox.sweep_interval_s
                retention: Task = partial(_expire_notices, self.inbox, interval_s)
                if self.leadership is not None:
                    retention = self.leadership.task("inbox_retention", retention)
                await tasks.start(retention)
            task_status.started()


async def _expire_notices(
    inbox: Inbox,
    interval_s: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    await run_inbox_janitor(inbox, interval_s=interval_s)
