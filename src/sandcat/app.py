"""The composition root: opens the infrastructure, wires the services, runs every task.

Three steps, each in a module of its own: ``infrastructure.py`` opens what
the instance needs (stores, bus, shared state in memory or one Redis, keys,
blobs); ``wiring.py`` builds the object graph over it, every dependency
passed to a constructor; ``run_server`` below starts the tasks and drains them.

Task tree (the ``all`` role; the others run the parts their role names,
``sandcat.roles`` and docs/roles.md)::

    run_server
    └─ root nursery
       ├─ janitor    deletes uploads never sent (stopped on drain; under a lease)
       ├─ partitions monthly message partitions ahead, retention (stopped on drain;
       │             under a lease on PostgreSQL)
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
from functools import partial
from typing import Any

import trio

from sandcat.api import create_app, create_probe_app
from sandcat.api.server import serve_http
from sandcat.clock import Clock, system_clock
from sandcat.config import Config
from sandcat.domain.direct_uploads import DirectUploads
from sandcat.domain.file_links import FileLinks
from sandcat.domain.files import Files, run_janitor
from sandcat.domain.passwords import PasswordHasher
from sandcat.domain.turn import TurnRelay
from sandcat.export import Exports, ExportSources
from sandcat.gateway import Operations, serve_gateway
from sandcat.gateway.conversations import ConversationFrames
from sandcat.gateway.listener import GatewayServer
from sandcat.gateway.signals import run_signals
from sandcat.gateway.tls import server_context
from sandcat.infrastructure import open_infrastructure
from sandcat.pipeline import run_pipeline
from sandcat.pipeline.relay import new_instance_id, start_relay
from sandcat.protocol import CloseCode, Limits
from sandcat.proxies import TrustedProxies
from sandcat.roles import duties as role_duties
from sandcat.server import Server, listening, wait_for_stop, with_bound_ws_url
from sandcat.services import Services, build_services
from sandcat.wiring import wire

__all__ = ["Server", "Services", "build_services", "run_server"]

log = logging.getLogger(__name__)

#: Grace for sockets to flush their last frames and close after the drain.
_CLOSE_GRACE_S = 2.0
#: What GOAWAY tells clients to wait before reconnecting (to another instance).
_RECONNECT_AFTER_MS = 1000


async def run_server(
    config: Config,
    *,
    clock: Clock = system_clock,
    handle_signals: bool = False,
    listen_fds: tuple[int, int] | None = None,
    passwords: PasswordHasher | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one Sandcat instance (of ``server.role``: docs/roles.md) until it is shut
    down and drained; a role other than ``all`` on SQLite raises ``ConfigError``.

    ``listen_fds`` are the WebSocket and HTTP listening sockets a ``serve
    --workers`` supervisor hands its workers, used instead of binding ports.
    ``passwords`` replaces the hasher built from ``config.auth`` (tests use a
    cheaper cost; production never passes one).
    """
    duties = role_duties(config)
    tls = None
    if config.server.tls_cert_file or config.server.tls_key_file:
        tls = server_context(config.server.tls_cert_file, config.server.tls_key_file)
    limits = Limits(max_frame_bytes=config.gateway.max_frame_bytes)
    instance = new_instance_id()
    ready = False
    async with open_infrastructure(config, clock, instance=instance) as infra:
        stores, shared = infra.stores, infra.shared
        wired = wire(infra, config, clock, instance=instance, passwords=passwords, duties=duties)
        hub, metrics, services, files = wired.hub, wired.metrics, wired.services, wired.files
        await files.prepare_spool()
        await files.install_default_avatars()
        http_stop = trio.Event()
        # Stopped on drain, before the pipeline closes: nothing left for them to finish.
        janitors = _Stops()
        # Stopped after the last socket closed.
        late = _Stops()
        async with trio.open_nursery() as root:
            if duties.worker:
                # Cluster singletons: each runs on the one instance holding its lease.
                sweep = wired.leadership.task("uploads", partial(_sweep, files, config))
                await root.start(_scoped, janitors.scope(), sweep)
                if stores.janitor is not None:
                    partitions = wired.leadership.task("partitions", stores.janitor)
                    await root.start(_scoped, janitors.scope(), partitions)
            if wired.fanout is not None:
                await root.start(_scoped, late.scope(), partial(wired.fanout.run, hub))
            relay = None
            if stores.outbox is not None and infra.bus is not None:
                relay = await start_relay(
                    root,
                    stores.outbox,
                    infra.bus,
                    hub,
                    config,
                    metrics,
                    routes=shared.routes,
                    consume=duties.gateway,
                    take_over=duties.worker,
                )
            await root.start(_scoped, late.scope(), wired.housekeeping.run)
            pipeline = None
            operations = None
            if duties.gateway:
                pipeline = sends = await root.start(
                    partial(run_pipeline, services.messages, hub, config, clock, metrics=metrics)
                )
                metrics.watch(
                    "sandcat_send_queue_depth", lambda: sends.statistics().current_buffer_used
                )
                signals = await root.start(
                    partial(
                        run_signals,
                        config,
                        scope=late.scope(),
                        shared=shared,
                        reach=stores.reach,
                        hub=hub,
                        pipeline=pipeline,
                        instance=instance,
                        clock=clock,
                    )
                )
                operations = Operations(
                    accounts=services.accounts,
                    inbox=services.inbox,
                    store=services.messages,
                    pipeline=pipeline,
                    hub=hub,
                    config=config,
                    clock=clock,
                    limits=limits,
                    metrics=metrics,
                    files=files,
                    signals=signals,
                    conversations=ConversationFrames(wired.conversations),
                    history=stores.history,
                )
            async with trio.open_nursery() as connections:
                gateway = trio.CancelScope()
                ws_port = 0
                if operations is not None:
                    with listening(config.server.host, config.server.ws_port, "ws_port"):
                        bound: GatewayServer = await connections.start(
                            _scoped,
                            gateway,
                            partial(
                                serve_gateway,
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
                            ),
                        )
                    ws_port = bound.port
                    config = with_bound_ws_url(config, bound.port)
                if duties.api:
                    app = create_app(
                        accounts=services.accounts,
                        contacts=services.contacts,
                        groups=services.groups,
                        conversations=wired.conversations,
                        profiles=services.profiles,
                        codes=services.codes,
                        inbox=services.inbox,
                        github=services.github,
                        files=files,
                        links=FileLinks(
                            infra.secret, ttl_s=config.files.signed_url_ttl_s, clock=clock
                        ),
                        direct=DirectUploads(files, infra.direct, clock=clock),
                        sessions=hub,
                        config=config,
                        ready=lambda: ready,
                        metrics=metrics.registry,
                        errors=metrics.errors,
                        observe_request=metrics.observe_http,
                        turn=TurnRelay(config.calls, clock=clock),
                        history=stores.history,
                        clock=clock,
                        admin=wired.admin,
                        exports=Exports(
                            ExportSources.of(stores, infra.blobs),
                            interval_s=config.http.export_interval_s,
                            clock=clock,
                            limiters=shared.limiters,
                        ),
                    )
                else:
                    # /healthz and /metrics only (docs/roles.md).
                    app = create_probe_app(
                        config=config,
                        ready=lambda: ready,
                        metrics=metrics.registry,
                        errors=metrics.errors,
                        observe_request=metrics.observe_http,
                    )
                with listening(config.server.host, config.server.http_port, "http_port"):
                    http_port = await root.start(
                        partial(
                            serve_http,
                            app,
                            host=config.server.host,
                            port=config.server.http_port,
                            shutdown_trigger=http_stop.wait,
                            listen_fd=None if listen_fds is None else listen_fds[1],
                            tls=None
                            if tls is None
                            else (config.server.tls_cert_file, config.server.tls_key_file),
                        )
                    )
                server = Server(
                    ws_port=ws_port, http_port=http_port, instance=instance, role=config.server.role
                )
                ready = True
                log.info(
                    "sandcat listening (role %s): %shttp port %d",
                    config.server.role,
                    f"{config.ws_url} " if operations is not None else "",
                    http_port,
                )
                task_status.started(server)
                await wait_for_stop(server, handle_signals)

                ready = False
                janitors.cancel()
                if pipeline is not None:
                    log.info("draining: closing the listener and telling clients to go away")
                    gateway.cancel()
                    hub.go_away(
                        reason="server shutting down", reconnect_after_ms=_RECONNECT_AFTER_MS
                    )
                    with trio.move_on_after(config.server.drain_timeout_s):
                        await pipeline.aclose()
                        await pipeline.drained.wait()
                if relay is not None:
                    await relay.drain(config.server.drain_timeout_s)
                hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
                with trio.move_on_after(_CLOSE_GRACE_S):
                    await hub.wait_empty()
                connections.cancel_scope.cancel()
            late.cancel()
            http_stop.set()
            root.cancel_scope.deadline = trio.current_time() + _CLOSE_GRACE_S
    log.info("sandcat stopped")


class _Stops:
    """Cancel scopes of tasks stopped together (a scope guards one task)."""

    def __init__(self) -> None:
        self._scopes: list[trio.CancelScope] = []

    def scope(self) -> trio.CancelScope:
        self._scopes.append(trio.CancelScope())
        return self._scopes[-1]

    def cancel(self) -> None:
        for scope in self._scopes:
            scope.cancel()


async def _sweep(
    files: Files, config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The upload janitor: orphan uploads swept until cancelled."""
    task_status.started()
    await run_janitor(files, interval_s=config.files.janitor_interval_s)


async def _scoped(
    scope: trio.CancelScope,
    task: Any,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``task`` (a ``nursery.start``-able callable) inside ``scope``, to stop it on drain."""
    with scope:
        await task(task_status=task_status)
