"""One pymongo client, driven from Trio: every call in a worker thread, with a deadline.

pymongo is a blocking driver, so each store call runs its whole body in
``trio.to_thread.run_sync``. Two deadlines bound it: pymongo's own
client-side operation timeout (``pymongo.timeout``) covers every command the
body sends, so the thread itself finishes; Trio's ``fail_after`` a little
later is the backstop that frees the caller even if the thread does not.
Driver errors are translated here, once, into ``StoreUnavailable`` (a
duplicate key the store did not resolve itself into ``Conflict``).

No Mongo transactions are used: every store built on this makes each single
document write correct on its own (see ``sandcat.store.mongo.inbox``), and
every call safe to run again after a write conflict.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pymongo
import pymongo.errors
import trio
from pymongo.database import Database

from sandcat.errors import (
    BackendFailure,
    ConfigError,
    Conflict,
    StoreUnavailable,
    ignore_failure,
)

T = TypeVar("T")
Documents = Database[dict[str, Any]]

#: Extra time Trio gives a worker thread after pymongo's own deadline.
_BACKSTOP_S = 1.0
#: A write that met another on the same document (briskdb reports a busy
#: database this way too): the whole call is run again, which is why every
#: store body must be safe to rerun (the inbox's are: keyed inserts, ``$max``).
_WRITE_CONFLICT = 112
_WRITE_CONFLICT_ATTEMPTS = 8


def redacted(url: str) -> str:
    """``url`` without its password (error messages and logs never show one)."""
    return re.sub(r"//([^@/:]*):[^@/]*@", r"//\1:***@", url)


class MongoClient:
    """The database named by a ``mongodb://`` URL (``sandcat`` if it names none)."""

    def __init__(
        self, url: str, *, timeout_s: float, on_failure: BackendFailure = ignore_failure
    ) -> None:
        self._timeout_s = timeout_s
        self._on_failure = on_failure
        ms = int(timeout_s * 1000)
        # Connecting is lazy: nothing blocks here, and only the URL can be wrong.
        try:
            self._client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                url,
                serverSelectionTimeoutMS=ms,
                connectTimeoutMS=ms,
                socketTimeoutMS=ms,
                tz_aware=False,
            )
            self.db: Documents = self._client.get_default_database("sandcat")
        except pymongo.errors.ConfigurationError as exc:
            raise ConfigError("backends.mongo_url", redacted(url), str(exc)) from exc

    async def run(self, fn: Callable[[Documents], T]) -> T:
        """``fn(db)`` in a worker thread within ``timeout_s``; ``StoreUnavailable`` if
        MongoDB fails or is too slow, ``Conflict`` for a duplicate key ``fn`` let escape."""

        def call() -> T:
            with pymongo.timeout(self._timeout_s):
                for attempt in range(_WRITE_CONFLICT_ATTEMPTS):
                    try:
                        return fn(self.db)
                    except pymongo.errors.OperationFailure as exc:
                        if exc.code != _WRITE_CONFLICT or attempt == _WRITE_CONFLICT_ATTEMPTS - 1:
                            raise
                    # A blocking sleep is right here: this is the worker thread.
                    time.sleep(0.005 * 2**attempt)
                raise AssertionError("unreachable")  # pragma: no cover

        try:
            with trio.fail_after(self._timeout_s + _BACKSTOP_S):
                return await trio.to_thread.run_sync(call, abandon_on_cancel=True)
        except trio.TooSlowError as exc:
            self._on_failure("mongo", "timeout")
            raise StoreUnavailable(f"mongodb call took over {self._timeout_s} s") from exc
        except pymongo.errors.DuplicateKeyError as exc:
            # The stores resolve the duplicates they expect; one that escapes is a conflict.
            raise Conflict("conflicting write") from exc
        except pymongo.errors.PyMongoError as exc:
            self._on_failure("mongo", "timeout" if exc.timeout else "error")
            raise StoreUnavailable(f"mongodb failed: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        """Close the client's sockets; runs even when the caller is being cancelled."""
        with trio.CancelScope(shield=True), trio.move_on_after(self._timeout_s):
            await trio.to_thread.run_sync(self._client.close, abandon_on_cancel=True)


@asynccontextmanager
async def open_mongo(
    url: str, *, timeout_s: float, on_failure: BackendFailure = ignore_failure
) -> AsyncIterator[MongoClient]:
    client = MongoClient(url, timeout_s=timeout_s, on_failure=on_failure)
    try:
        yield client
    finally:
        await client.aclose()
