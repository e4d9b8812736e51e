"""The keys that sign access tokens (and file links), and which of them are accepted.

Without ``auth.token_secret`` the keys live in the database
(``store.sql.token_keys``), so every instance sharing it agrees on them. The
newest key whose ``active_at`` has passed signs; every key is accepted until
one access-token lifetime after its successor became active, so a rotation
never turns a live token away. A rotation makes the new key active only
after two refresh periods (``auth.key_refresh_s``): by then every instance
has read it and accepts it before any instance signs with it.

With ``auth.token_secret`` the ring holds that one key, and it never changes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

from sandcat.clock import Clock
from sandcat.errors import ConfigError, StoreUnavailable
from sandcat.store.sql.token_keys import StoredKey

log = logging.getLogger(__name__)

#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class SigningKey:
    #: The JWT ``kid``; "" for a configured secret (its tokens carry no ``kid``).
    kid: str
    secret: bytes
    active_at_ms: int


class KeySource(Protocol):
    async def keys(self) -> list[StoredKey]: ...


class KeyRing:
    """The signing keys of this instance; ``refresh`` re-reads them from the store."""

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        access_ttl_s: int,
        clock: Clock,
        source: KeySource | None = None,
    ) -> None:
        if not keys:
            raise ValueError("a key ring needs a key")
        for key in keys:
            if len(key.secret) < MIN_SECRET_BYTES:
                raise ValueError(f"token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._keys = tuple(sorted(keys, key=lambda key: key.active_at_ms))
        self._ttl_ms = access_ttl_s * 1000
        self._clock = clock
        self._source = source

    @classmethod
    def fixed(cls, secret: bytes, *, access_ttl_s: int = 900, clock: Clock) -> KeyRing:
        """One key that never changes (a configured ``auth.token_secret``)."""
        return cls([SigningKey("", secret, 0)], access_ttl_s=access_ttl_s, clock=clock)

    @property
    def first(self) -> SigningKey:
        """The oldest key: the pepper of verification codes (never rotated, see README)."""
        return self._keys[0]

    def current(self) -> SigningKey:
        """The key that signs now: the newest one already active."""
        now = self._clock()
        active = [key for key in self._keys if key.active_at_ms <= now]
        return active[-1] if active else self._keys[0]

    def accepted(self) -> list[SigningKey]:
        """Keys a token may be signed with now: each until one access-token lifetime
        after its successor became active (keys not active yet included)."""
        now = self._clock()
        return [
            key
            for key, successor in zip(self._keys, (*self._keys[1:], None), strict=True)
            if successor is None or now < successor.active_at_ms + self._ttl_ms
        ]

    def find(self, kid: str | None) -> SigningKey | None:
        """The accepted key named ``kid``; no ``kid`` names the oldest key (tokens
        signed before keys had ids, with ``DATA_DIR/token.key``)."""
        wanted = self._keys[0].kid if kid is None else kid
        return next((key for key in self.accepted() if key.kid == wanted), None)

    async def refresh(self) -> None:
        """Re-read the keys from the store (a rotation made elsewhere)."""
        if self._source is None:
            return
        stored = await self._source.keys()
        if stored:
            self._keys = tuple(_signing(key) for key in stored)

    async def run(
        self, *, interval_s: float, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Refresh every ``interval_s`` for ever; a failed read keeps the keys held."""
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            try:
                await self.refresh()
            except StoreUnavailable as exc:
                log.warning("token keys not refreshed (keeping %d): %s", len(self._keys), exc)


class KeyStore(KeySource, Protocol):
    async def ensure(self, secret: bytes, *, now_ms: int) -> list[StoredKey]: ...

    async def add(
        self, secret: bytes, *, active_at_ms: int, now_ms: int, forget_before_ms: int
    ) -> tuple[StoredKey, list[StoredKey]]: ...


@dataclass(frozen=True, slots=True)
class Rotation:
    new: StoredKey
    #: The key it replaces, accepted until ``old_accepted_until_ms``.
    old: StoredKey
    old_accepted_until_ms: int
    kept: int


async def rotate(store: KeyStore, *, access_ttl_s: int, refresh_s: float, clock: Clock) -> Rotation:
    """Add a new key that signs from two refresh periods on (every instance has
    read it by then), so the one it replaces is accepted until one access-token
    lifetime after that. Keys retired longer ago than that are forgotten."""
    now = clock()
    ttl_ms = access_ttl_s * 1000
    held = await store.keys()
    active_at = now + int(2 * refresh_s * 1000)
    new, kept = await store.add(
        secrets.token_bytes(32), active_at_ms=active_at, now_ms=now, forget_before_ms=now - ttl_ms
    )
    old = max((key for key in held if key.active_at_ms <= now), key=lambda key: key.active_at_ms)
    return Rotation(new, old, active_at + ttl_ms, len(kept))


def check_configured(secret: str) -> None:
    """``ConfigError`` for a configured ``auth.token_secret`` too short to sign with."""
    if secret and len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError("auth.token_secret", "***", "must be at least 32 characters")


async def open_key_ring(
    configured: str,
    store: KeyStore,
    *,
    legacy_file: Path,
    access_ttl_s: int,
    clock: Clock,
) -> KeyRing:
    """The ring: the ``configured`` secret, else the database's keys (made on first
    start, from ``legacy_file`` if an older version left one there)."""
    if configured:
        check_configured(configured)
        return KeyRing.fixed(configured.encode(), access_ttl_s=access_ttl_s, clock=clock)
    legacy = await trio.to_thread.run_sync(_read_legacy, legacy_file)
    if legacy is not None and len(legacy) < MIN_SECRET_BYTES:
        raise ConfigError("auth.token_secret", str(legacy_file), "a key file of under 32 bytes")
    stored = await store.ensure(legacy or secrets.token_bytes(32), now_ms=clock())
    if legacy is not None and stored[0].secret != legacy:
        log.warning(
            "%s differs from the database's token key: the database's is used "
            "(tokens signed with the file's key are no longer accepted); delete the file",
            legacy_file,
        )
    elif legacy is not None:
        log.info("token key from %s is in the database now; the file can go", legacy_file)
    return KeyRing(
        [_signing(key) for key in stored], access_ttl_s=access_ttl_s, clock=clock, source=store
    )


def _read_legacy(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _signing(key: StoredKey) -> SigningKey:
    return SigningKey(str(key.id), key.secret, key.active_at_ms)
