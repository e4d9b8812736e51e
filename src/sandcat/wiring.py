"""The object graph of one instance over its infrastructure, before any task runs.

Every dependency is passed to a constructor: the hub gets its fan-out (cluster
mode), the services their stores, notifier and shared state. What needs a
running task (the pipeline, the signals) is wired by app.py once started.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.domain.admin import Admin
from sandcat.domain.census import connections_now
from sandcat.domain.conversations import Conversations
from sandcat.domain.files import Files
from sandcat.domain.inbox_relay import InboxRelay
from sandcat.domain.passwords import PasswordHasher
from sandcat.gateway import Hub
from sandcat.gateway.beacon import Fanout
from sandcat.gateway.conversations import SettingsPusher
from sandcat.housekeeping import Housekeeping
from sandcat.infrastructure import Infrastructure
from sandcat.leadership import Leadership
from sandcat.mail import Postman, open_sender
from sandcat.metrics import ServerMetrics
from sandcat.process_metrics import watch_process
from sandcat.protocol import CloseCode
from sandcat.roles import Duties
from sandcat.services import Services, build_services
from sandcat.store.connections import report_ttl_ms
from sandcat.texts import OutboxTextSender


@dataclass(frozen=True, slots=True)
class Wiring:
    """The object graph over the infrastructure, before any task runs."""

    hub: Hub
    fanout: Fanout | None
    metrics: ServerMetrics
    services: Services
    files: Files
    conversations: Conversations
    admin: Admin
    housekeeping: Housekeeping
    #: Runs the cluster singletons under their leases (PostgreSQL).
    leadership: Leadership


def wire(
    infra: Infrastructure,
    config: Config,
    clock: Clock,
    *,
    instance: str,
    passwords: PasswordHasher | None,
    duties: Duties,
) -> Wiring:
    stores, shared = infra.stores, infra.shared
    fanout = None
    if shared.broadcast is not None:
        fanout = Fanout(shared.broadcast, instance=instance, revocations=shared.revocations)
    hub = Hub(fanout)
    metrics = infra.metrics
    watch_process(metrics.registry)
    metrics.watch("sandcat_connections", hub.authenticated)
    metrics.watch("sandcat_open_sockets", hub.__len__)
    metrics.watch("sandcat_connected_users", hub.user_count)
    metrics.watch("sandcat_outbound_queue_frames", hub.queued_frames)
    postman = Postman(
        open_sender(config.mail, config.data_path),
        queue=config.mail.queue,
        timeout_s=config.mail.timeout_s,
    )
    notices = None
    if stores.notice_outbox is not None:
        # The inbox is in MongoDB: notices committed in SQL are moved there.
        notices = InboxRelay(stores.notice_outbox, stores.inbox, notifier=hub)  # type: ignore[arg-type]
    services = build_services(
        stores,
        config,
        secret=infra.secret,
        clock=clock,
        notifier=hub,
        mailbox=postman,
        directory=hub,
        notice_relay=notices,
        limiters=shared.limiters,
        cache=shared.cache,
        passwords=passwords,
        texts=OutboxTextSender(config.data_path / "texts"),
    )
    files = Files(
        stores.files,
        infra.blobs,
        config=config.files,
        spool=config.data_path / "spool",
        clock=clock,
        direct=infra.direct,
    )
    conversations = Conversations(
        stores.conversations, services.messages, listener=SettingsPusher(hub), clock=clock
    )
    # The log every instance polls: Redis in a cluster, else the database (so
    # `sandcat admin disable` in another process closes sockets here too).
    revocations = shared.revocations or stores.revocation_log
    admin = Admin(
        accounts=stores.accounts,
        store=stores.admin,
        groups=services.groups,
        contacts=services.contacts,
        inbox=stores.inbox,
        passwords=passwords or PasswordHasher.from_config(config.auth),
        clock=clock,
        revocations=revocations,
        closer=lambda user, session: hub.end_sessions(
            user, session=session, code=CloseCode.SESSION_ENDED, reason="session revoked"
        ),
        notifier=hub,
        connections=partial(
            connections_now,
            shared.connections,
            instance=instance,
            connected=hub.authenticated,
            ttl_ms=report_ttl_ms(config.http.census_interval_s),
            clock=clock,
        ),
        cache=shared.cache,
    )
    leadership = Leadership(
        stores.leases,
        holder=instance,
        lease_s=config.backends.task_lease_s,
        held=metrics.leases_held,
    )
    housekeeping = Housekeeping(
        config,
        clock,
        postman,
        infra.secret,
        services.inbox,
        services.accounts,
        hub,
        stores.census,
        metrics,
        revocations,
        shared.connections,
        instance,
        hub.authenticated,
        notices=notices,
        duties=duties,
        leadership=leadership,
    )
    return Wiring(
        hub, fanout, metrics, services, files, conversations, admin, housekeeping, leadership
    )
