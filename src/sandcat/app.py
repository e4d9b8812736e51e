"""The composition root: opens the stores, wires the services, runs every task.

Task tree::

    run_server
    └─ root nursery
       ├─ janitor    deletes uploads never sent (own cancel scope: stopped on drain)
       ├─ partitions monthly message partitions ahead (PostgreSQL; stopped on drain)
       ├─ pipeline   sequencer ─ persister ─ router
       ├─ relay      publisher ─ consumer (cluster mode: the outbox to Kafka, Kafka to here)
       ├─ fanout     session ends and READ_STATE to other instances (Redis; stopped last)
       ├─ signals    typing, presence, call timers; their beacon to other instances (Redis)
       ├─ housekeeping  postman, token keys, inbox retention, revocation watch (Redis),
       │                notice relay (inbox in MongoDB)
       ├─ http       hypercorn + quart-trio
       └─ connections nursery
          ├─ gateway listener (own cancel scope: stopped first on drain)
          └─ one task per WebSocket connection

Shutdown (SIGTERM, or ``Server.shutdown()``): /healthz turns 503, the listener
stops accepting, every client gets GOAWAY, the pipeline closes its entry and
commits and acks what it holds, the publisher relays what is left in the
outbox, then every socket is closed with 1001 after its queued frames, and the
HTTP server stops.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial

import trio

from sandcat.api import create_app
from sandcat.api.server import serve_http
from sandcat.blobs import BlobStore, DirectBlobStore, LocalBlobStore
from sandcat.bus.broadcast import open_broadcast
from sandcat.clock import Clock, system_clock
from sandcat.config import Config
from sandcat.domain.accounts import Accounts
from sandcat.domain.admin import Admin
from sandcat.domain.cache import Cache
from sandcat.domain.census import run_census
from sandcat.domain.codes import Mailbox, VerificationCodes
from sandcat.domain.contacts import Contacts
from sandcat.domain.conversations import Conversations
from sandcat.domain.direct_uploads import DirectUploads
from sandcat.domain.file_links import FileLinks
from sandcat.domain.files import Files, run_janitor
from sandcat.domain.groups import Groups
from sandcat.domain.inbox import Inbox, run_inbox_janitor
from sandcat.domain.inbox_relay import InboxRelay
from sandcat.domain.keyring import KeyRing, open_key_ring
from sandcat.domain.notices import Notifier
from sandcat.domain.oauth import GithubLogin
from sandcat.domain.passwords import PasswordHasher
from sandcat.domain.profiles import Profiles
from sandcat.domain.ratelimit import Limiters
from sandcat.domain.revocations import run_revocation_watch
from sandcat.domain.turn import TurnRelay
from sandcat.errors import ListenError
from sandcat.export import Exports, ExportSources
from sandcat.gateway import Hub, Operations, serve_gateway
from sandcat.gateway.conversations import ConversationFrames, SettingsPusher
from sandcat.gateway.fanout import Fanout
from sandcat.gateway.listener import GatewayServer
from sandcat.gateway.signals import run_signals
from sandcat.gateway.tls import server_context
from sandcat.mail import CodeTemplates, Postman, open_sender
from sandcat.metrics import Registry, ServerMetrics, watch_gc, watch_process
from sandcat.pipeline import run_pipeline
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.relay import new_instance_id, open_bus, start_relay
from sandcat.private_files import make_private_dir
from sandcat.protocol import CloseCode, Limits
from sandcat.proxies import TrustedProxies
from sandcat.store.backends import Janitor, Stores, open_stores
from sandcat.store.messages import MessageStore
from sandcat.store.shared import open_shared_state
from sandcat.texts import OutboxTextSender, TextSender

log = logging.getLogger(__name__)

#: Grace for sockets to flush their last frames and close after the drain.
_CLOSE_GRACE_S = 2.0
#: What GOAWAY tells clients to wait before reconnecting (to another instance).
_RECONNECT_AFTER_MS = 1000


@dataclass(slots=True)
class Server:
    """A running instance, handed out by ``run_server`` once it is ready."""

    ws_port: int
    http_port: int
    #: This process's name on the bus and in the outbox.
    instance: str = ""
    _stop: trio.Event = field(default_factory=trio.Event)

    def shutdown(self) -> None:
        """Begin the drain; ``run_server`` returns when it is done."""
        self._stop.set()


async def open_blob_store(config: Config) -> tuple[BlobStore, DirectBlobStore | None]:
    """The configured blob store, ready: S3 if ``backends.s3_url`` is set, else a directory."""
    if config.backends.s3_url:
        from sandcat.blobs.s3 import S3BlobStore, parse_s3_url

        s3 = S3BlobStore(parse_s3_url(config.backends.s3_url))
        await s3.open_store()
        return s3, s3
    local = LocalBlobStore(config.data_path / "blobs")
    await local.open_store()
    return local, None


@dataclass(frozen=True, slots=True)
class Services:
    """The use cases, wired to their stores."""

    accounts: Accounts
    codes: VerificationCodes
    profiles: Profiles
    contacts: Contacts
    groups: Groups
    inbox: Inbox
    github: GithubLogin
    messages: MessageStore


def build_services(
    stores: Stores,
    config: Config,
    *,
    secret: KeyRing | bytes,
    clock: Clock,
    notifier: Notifier,
    mailbox: Mailbox,
    directory: Directory | None = None,
    notice_relay: Notifier | None = None,
    limiters: Limiters | None = None,
    cache: Cache | None = None,
    passwords: PasswordHasher | None = None,
    texts: TextSender | None = None,
) -> Services:
    """Every use case over the opened stores. ``notice_relay`` is told of notices
    stores write in their own transactions (when those land in an outbox first)."""
    codes = VerificationCodes(
        stores.accounts,
        config=config.auth,
        secret=secret,
        clock=clock,
        mailbox=mailbox,
        templates=CodeTemplates.load(config.mail.template_dir),
        limiters=limiters,
        texts=texts,
    )
    accounts = Accounts(
        stores.accounts,
        config=config.auth,
        secret=secret,
        clock=clock,
        codes=codes,
        limiters=limiters,
        sessions=cache,
        passwords=passwords,
    )
    return Services(
        accounts=accounts,
        codes=codes,
        profiles=Profiles(
            stores.accounts, clock=clock, codes=codes, config=config.auth, limiters=limiters
        ),
        contacts=Contacts(
            stores.contacts,
            clock=clock,
            # Notices written in a store's own transaction go through the relay
            # when they land in an outbox first (the inbox in MongoDB).
            notifier=notice_relay or notifier,
            config=config.chat,
            limiters=limiters,
        ),
        groups=Groups(
            stores.groups,
            config=config.chat,
            clock=clock,
            notifier=notice_relay or notifier,
            directory=directory,
        ),
        inbox=Inbox(
            stores.inbox,
            devices=accounts,
            notifier=notifier,
            clock=clock,
            retention_days=config.inbox.retention_days,
        ),
        github=GithubLogin(stores.accounts, accounts, config=config.oauth, clock=clock),
        messages=stores.messages,
    )


async def run_server(
    config: Config,
    *,
    clock: Clock = system_clock,
    handle_signals: bool = False,
    listen_fds: tuple[int, int] | None = None,
    passwords: PasswordHasher | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one Sandcat instance until it is shut down and drained.

    ``listen_fds`` are the WebSocket and HTTP listening sockets a ``serve
    --workers`` supervisor hands its workers, used instead of binding ports.
    ``passwords`` replaces the hasher built from ``config.auth`` (tests use a
    cheaper cost; production never passes one).
    """
    make_private_dir(config.data_path)
    tls = None
    if config.server.tls_cert_file or config.server.tls_key_file:
        tls = server_context(config.server.tls_cert_file, config.server.tls_key_file)
    limits = Limits(max_frame_bytes=config.gateway.max_frame_bytes)
    ready = False
    instance = new_instance_id()
    registry = Registry()
    async with (
        open_stores(config, clock, instance=instance) as stores,
        open_bus(config) as bus,
        open_broadcast(
            config.backends.redis_url,
            channel=config.backends.redis_channel,
            timeout_s=config.backends.redis_timeout_s,
        ) as broadcast,
        open_shared_state(config, clock) as shared,
        watch_gc(registry),
    ):
        secret = await open_key_ring(
            config.auth.token_secret,
            stores.token_keys,
            legacy_file=config.data_path / "token.key",
            access_ttl_s=config.auth.access_ttl_s,
            clock=clock,
        )
        hub = Hub()
        metrics = ServerMetrics.create(registry)
        watch_process(registry)
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
            secret=secret,
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
        accounts, messages = services.accounts, services.messages
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
            connections=lambda: _counted(hub),
            cache=shared.cache,
        )
        blobs, direct = await open_blob_store(config)
        files = Files(
            stores.files,
            blobs,
            config=config.files,
            spool=config.data_path / "spool",
            clock=clock,
            direct=direct,
        )
        await files.prepare_spool()
        await files.install_default_avatars()
        links = FileLinks(secret, ttl_s=config.files.signed_url_ttl_s, clock=clock)
        http_stop = trio.Event()
        janitor = trio.CancelScope()
        partitions = trio.CancelScope()
        fanning = trio.CancelScope()
        async with trio.open_nursery() as root:

            async def sweep_orphans() -> None:
                with janitor:
                    await run_janitor(files, interval_s=config.files.janitor_interval_s)

            root.start_soon(sweep_orphans)
            if stores.janitor is not None:
                await root.start(_scoped, partitions, stores.janitor)
            if broadcast is not None:
                hub.fanout = fanout = Fanout(
                    broadcast, instance=instance, revocations=shared.revocations
                )
                await root.start(_scoped, fanning, partial(fanout.run, hub))

            relay = None
            if stores.outbox is not None and bus is not None:
                relay = await start_relay(root, stores.outbox, bus, hub, config, metrics)

            # Housekeeping has nothing to finish: it is cancelled at shutdown.
            housekeeping = trio.CancelScope()

            async def housekeep(task_status: trio.TaskStatus[None]) -> None:
                with housekeeping:
                    async with trio.open_nursery() as tasks:
                        await tasks.start(postman.run)
                        await tasks.start(partial(secret.run, interval_s=config.auth.key_refresh_s))
                        await tasks.start(
                            partial(
                                run_census,
                                stores.census,
                                users=metrics.registered_users,
                                sessions=metrics.active_sessions,
                                interval_s=config.http.census_interval_s,
                                clock=clock,
                            )
                        )
                        await tasks.start(
                            partial(
                                run_revocation_watch,
                                revocations,
                                hub,
                                accounts,
                                interval_s=config.backends.revocation_poll_s,
                                close_code=CloseCode.SESSION_ENDED,
                            )
                        )
                        if notices is not None:
                            await tasks.start(
                                partial(notices.run, interval_s=config.inbox.relay_interval_s)
                            )
                        tasks.start_soon(
                            lambda: run_inbox_janitor(
                                services.inbox, interval_s=config.inbox.sweep_interval_s
                            )
                        )
                        task_status.started()

            await root.start(housekeep)
            pipeline = await root.start(
                lambda task_status: run_pipeline(
                    messages, hub, config, clock, metrics=metrics, task_status=task_status
                )
            )
            metrics.watch(
                "sandcat_send_queue_depth", lambda: pipeline.statistics().current_buffer_used
            )
            signalling = trio.CancelScope()
            signals = await root.start(
                partial(
                    run_signals,
                    config,
                    scope=signalling,
                    reach=stores.reach,
                    hub=hub,
                    pipeline=pipeline,
                    instance=instance,
                    clock=clock,
                    limiters=shared.limiters,
                )
            )
            hub.on_leave = signals.left
            conversations = Conversations(
                stores.conversations, messages, listener=SettingsPusher(hub), clock=clock
            )
            operations = Operations(
                accounts=accounts,
                inbox=services.inbox,
                store=messages,
                pipeline=pipeline,
                hub=hub,
                config=config,
                clock=clock,
                limits=limits,
                metrics=metrics,
                files=files,
                signals=signals,
                conversations=ConversationFrames(conversations),
                history=stores.history,
            )
            async with trio.open_nursery() as connections:
                listening = trio.CancelScope()

                async def listen(task_status: trio.TaskStatus[GatewayServer]) -> None:
                    with listening:
                        await serve_gateway(
                            host=config.server.host,
                            port=config.server.ws_port,
                            hub=hub,
                            operations=operations,
                            config=config.gateway,
                            limits=limits,
                            connections=connections,
                            metrics=metrics,
                            listen_fd=None if listen_fds is None else listen_fds[0],
                            budgets=shared.budgets,
                            proxies=TrustedProxies(config.server.trusted_proxies),
                            tls=tls,
                            task_status=task_status,
                        )

                with _listening(config.server.host, config.server.ws_port, "ws_port"):
                    ws_port = (await connections.start(listen)).port
                config = _with_bound_ws_url(config, ws_port)
                app = create_app(
                    accounts=accounts,
                    contacts=services.contacts,
                    groups=services.groups,
                    conversations=conversations,
                    profiles=services.profiles,
                    codes=services.codes,
                    inbox=services.inbox,
                    github=services.github,
                    files=files,
                    links=links,
                    direct=DirectUploads(files, direct, clock=clock),
                    sessions=hub,
                    config=config,
                    ready=lambda: ready,
                    metrics=metrics.registry,
                    errors=metrics.errors,
                    observe_request=metrics.observe_http,
                    turn=TurnRelay(config.calls, clock=clock),
                    history=stores.history,
                    clock=clock,
                    admin=admin,
                    exports=Exports(
                        ExportSources.of(stores, blobs),
                        interval_s=config.http.export_interval_s,
                        clock=clock,
                        limiters=shared.limiters,
                    ),
                )
                with _listening(config.server.host, config.server.http_port, "http_port"):
                    http_port = await root.start(
                        lambda task_status: serve_http(
                            app,
                            host=config.server.host,
                            port=config.server.http_port,
                            shutdown_trigger=http_stop.wait,
                            listen_fd=None if listen_fds is None else listen_fds[1],
                            tls=None
                            if tls is None
                            else (config.server.tls_cert_file, config.server.tls_key_file),
                            task_status=task_status,
                        )
                    )
                server = Server(ws_port=ws_port, http_port=http_port, instance=instance)
                ready = True
                log.info("sandcat listening: %s http port %d", config.ws_url, http_port)
                task_status.started(server)
                await _wait_for_stop(server, handle_signals)

                ready = False
                janitor.cancel()
                partitions.cancel()
                log.info("draining: closing the listener and telling clients to go away")
                listening.cancel()
                hub.go_away(reason="server shutting down", reconnect_after_ms=_RECONNECT_AFTER_MS)
                with trio.move_on_after(config.server.drain_timeout_s):
                    await pipeline.aclose()
                    await pipeline.drained.wait()
                if relay is not None:
                    await relay.drain(config.server.drain_timeout_s)
                hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
                with trio.move_on_after(_CLOSE_GRACE_S):
                    await hub.wait_empty()
                connections.cancel_scope.cancel()
            fanning.cancel()
            signalling.cancel()
            http_stop.set()
            housekeeping.cancel()
            root.cancel_scope.deadline = trio.current_time() + _CLOSE_GRACE_S
    log.info("sandcat stopped")


async def _counted(hub: Hub) -> int | None:
    """This instance's connections (the admin API's stats)."""
    return len(hub)


async def _scoped(
    scope: trio.CancelScope,
    task: Janitor,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``task`` (started with ``nursery.start``) inside ``scope``, to stop it on drain."""
    with scope:
        await task(task_status=task_status)


@contextmanager
def _listening(host: str, port: int, setting: str) -> Iterator[None]:
    """Name the address and the setting when a listener cannot bind (port in use)."""
    try:
        yield
    except (OSError, BaseExceptionGroup) as exc:
        # hypercorn's bind fails inside its nursery: the OSError arrives in a group.
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]
        if not isinstance(cause, OSError) or isinstance(cause, ListenError):
            raise
        raise ListenError(host, port, f"server.{setting}", cause) from exc


def _with_bound_ws_url(config: Config, ws_port: int) -> Config:
    """Pin the URL login hands out to the port actually bound (``ws_port = 0``)."""
    if config.server.public_ws_url:
        return config
    bound = replace(config.server, ws_port=ws_port)
    return replace(
        config, server=replace(bound, public_ws_url=replace(config, server=bound).ws_url)
    )


async def _wait_for_stop(server: Server, handle_signals: bool) -> None:
    if not handle_signals:
        await server._stop.wait()
        return
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    log.info("received %s", signal.Signals(signum).name)
                    server.shutdown()
                    return

            nursery.start_soon(on_signal)
            await server._stop.wait()
            nursery.cancel_scope.cancel()
