"""Cluster singletons: a background task that must run once per cluster runs on the
one instance holding its lease (docs/roles.md).

Any number of instances (the ``worker`` and ``all`` roles) run
``Leadership.task(name, task)``; each tries to take the lease ``name`` in
PostgreSQL every third of ``lease_s``. The one that holds it runs ``task``
and renews the lease every third of it; the others wait. When the holder
dies, freezes or is cut off, its lease runs out after at most ``lease_s``
and the next try of another instance takes it over. A holder that cannot
renew (the database unreachable, or the lease taken because it was too slow)
stops the task once its lease may have run out as it counts (from the
moment it sent its last successful renewal), so two holders overlap only if
a renewal took longer than a third of the lease; every singleton is safe to
run twice at once anyway (idempotent sweeps), the lease only saves the work.
A clean shutdown releases the lease so another instance takes it at once.

Without a lease store (embedded SQLite: one process) a task simply runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

import trio

from sandcat.errors import StoreUnavailable
from sandcat.metrics import Gauge

log = logging.getLogger(__name__)

#: A task started with ``nursery.start`` (it takes ``task_status``).
Task = Callable[..., Awaitable[None]]

#: How long a releasing shutdown waits for the database.
_RELEASE_TIMEOUT_S = 2.0


class LeaseStore(Protocol):
    async def acquire(self, name: str, holder: str, *, lease_s: float) -> bool:
        """Take or renew ``name`` for ``holder`` until ``lease_s`` from now; whether held."""
        ...

    async def release(self, name: str, holder: str) -> None:
        """``holder`` gives ``name`` up (another may take it at once)."""
        ...


class Leadership:
    """Wraps the cluster singletons of one instance in their leases."""

    def __init__(
        self, leases: LeaseStore | None, *, holder: str, lease_s: float, held: Gauge
    ) -> None:
        self._leases = leases
        self._holder = holder
        self._lease_s = lease_s
        self._held = held
        #: The names of the leases this instance holds now.
        self.holding: set[str] = set()

    def task(self, name: str, task: Task) -> Task:
        """``task`` (``nursery.start``-able) run only while this instance holds ``name``."""
        if self._leases is None:
            return task
        return partial(self._run, self._leases, name, task)

    async def _run(
        self,
        leases: LeaseStore,
        name: str,
        task: Task,
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Try for the lease; while held run ``task``; for ever. The first try happens
        before ``started`` (a lone instance is ready once its task is, as without leases)."""
        started = False
        try:
            while True:
                sent = trio.current_time()
                if await self._acquire(leases, name):
                    async with trio.open_nursery() as running:
                        self._took(name)
                        await running.start(task)
                        if not started:
                            task_status.started()
                            started = True
                        await self._renew(leases, name, expires=sent + self._lease_s)
                        self._lost(name)
                        running.cancel_scope.cancel()
                elif not started:
                    task_status.started()
                    started = True
                await trio.sleep(self._lease_s / 3)
        finally:
            if name in self.holding:
                self._lost(name)
                with trio.CancelScope(shield=True), trio.move_on_after(_RELEASE_TIMEOUT_S):
                    try:
                        await leases.release(name, self._holder)
                    except StoreUnavailable as exc:
                        log.warning("lease %s not released (it expires by itself): %s", name, exc)

    async def _acquire(self, leases: LeaseStore, name: str) -> bool:
        try:
            return await leases.acquire(name, self._holder, lease_s=self._lease_s)
        except StoreUnavailable as exc:
            log.warning("lease %s not taken or renewed: %s", name, exc)
            return False

    async def _renew(self, leases: LeaseStore, name: str, *, expires: float) -> None:
        """Renew every third of the lease; return once it is lost or may have run out."""
        while True:
            await trio.sleep(max(0.0, min(self._lease_s / 3, expires - trio.current_time())))
            if trio.current_time() >= expires:
                log.warning("lease %s ran out before it could be renewed", name)
                return
            sent = trio.current_time()
            held: bool | None = None
            # No renewal may outlast the lease as counted here.
            with trio.move_on_at(expires):
                try:
                    held = await leases.acquire(name, self._holder, lease_s=self._lease_s)
                except StoreUnavailable as exc:
                    log.warning("lease %s not renewed: %s", name, exc)
            if held is None:
                continue
            if not held:
                log.warning("lease %s was taken by another instance", name)
                return
            expires = sent + self._lease_s

    def _took(self, name: str) -> None:
        self.holding.add(name)
        self._held.set(len(self.holding))
        log.info("running %s (this instance holds its lease)", name)

    def _lost(self, name: str) -> None:
        self.holding.discard(name)
        self._held.set(len(self.holding))
        log.info("stopped %s (lease given up)", name)
