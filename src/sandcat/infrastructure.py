"""What an instance opens before it runs a task: stores, bus, shared state, keys, blobs.

``open_infrastructure`` opens each once, in order, and closes them in reverse
when the block exits; the composition root (app.py) wires the services over
them and starts the tasks. Each of these is chosen by configuration in one
place: the relational engine in ``store/backends.py``, the bus in
``pipeline/relay.py``, memory-or-Redis in ``store/shared.py``, the blob store
in ``services.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from sandcat.blobs import BlobStore, DirectBlobStore
from sandcat.bus import Bus
from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.domain.keyring import KeyRing, open_key_ring
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.relay import open_bus
from sandcat.private_files import make_private_dir
from sandcat.process_metrics import watch_gc
from sandcat.services import open_blob_store
from sandcat.store.backends import Stores, open_stores
from sandcat.store.shared import SharedState, open_shared_state


@dataclass(frozen=True, slots=True)
class Infrastructure:
    stores: Stores
    #: The bus between instances (cluster mode), else None.
    bus: Bus | None
    #: Rate limits, budgets, cache, presence and call books, broadcasts.
    shared: SharedState
    #: Token signing keys (refreshed by a housekeeping task).
    secret: KeyRing
    blobs: BlobStore
    #: Direct (pre-signed) uploads and downloads: S3 only.
    direct: DirectBlobStore | None
    #: Created before the backends, so that their adapters count failed calls into it.
    metrics: ServerMetrics


@asynccontextmanager
async def open_infrastructure(
    config: Config, clock: Clock, *, instance: str
) -> AsyncIterator[Infrastructure]:
    make_private_dir(config.data_path)
    metrics = ServerMetrics.create()
    # on_failure(backend, kind): sandcat_backend_call_errors_total{backend,kind} += 1.
    failed = partial(metrics.backend_calls.inc, 1.0)
    async with (
        open_stores(config, clock, instance=instance, on_failure=failed) as stores,
        open_bus(config, on_failure=failed) as bus,
        open_shared_state(config, clock, on_failure=failed) as shared,
        watch_gc(metrics.registry),
    ):
        secret = await open_key_ring(
            config.auth.token_secret,
            stores.token_keys,
            legacy_file=config.data_path / "token.key",
            access_ttl_s=config.auth.access_ttl_s,
            clock=clock,
        )
        blobs, direct = await open_blob_store(config, on_failure=failed)
        yield Infrastructure(stores, bus, shared, secret, blobs, direct, metrics)
