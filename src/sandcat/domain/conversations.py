"""Conversations as one member sees them: the list, their settings, and receipts.

Both the WebSocket operations (SYNC, CONV_SET, READERS) and the HTTP routes
(``/api/v1/conversations``) go through here. A settings change that changed
something is told to the member's devices (CONV_STATE) through the
``SettingsListener``; an unchanged one is answered and told to nobody.
Not being a member of a conversation is ``Forbidden``, the same answer as for
one that does not exist.
"""

from __future__ import annotations

from typing import Protocol

from sandcat.clock import Clock
from sandcat.errors import BadRequest
from sandcat.ids import parse_cid
from sandcat.store.conversations import (
    ConversationStore,
    Readers,
    Settings,
    SettingsChange,
)
from sandcat.store.messages import ConversationState

#: Members per READERS page at most (the wire limit, SPEC.md "READERS").
MAX_READERS_PAGE = 500


class ConversationLister(Protocol):
    async def conversations(
        self, user: str, *, since: int | None, limit: int | None = None
    ) -> tuple[list[ConversationState], int]: ...


class SettingsListener(Protocol):
    def settings_changed(self, user: str, settings: Settings, *, skip_device: str | None) -> None:
        """Tell ``user``'s devices but ``skip_device`` (the one that asked); never blocks."""


class Conversations:
    def __init__(
        self,
        store: ConversationStore,
        lister: ConversationLister,
        *,
        listener: SettingsListener,
        clock: Clock,
    ) -> None:
        self._store = store
        self._lister = lister
        self._listener = listener
        self._clock = clock

    async def list(
        self, user: str, *, since: int | None, limit: int | None = None
    ) -> tuple[list[ConversationState], int]:
        """The user's conversations changed after ``since`` (all if None), and the version;
        with ``limit``, a page of the oldest changes (SPEC.md "SYNC")."""
        return await self._lister.conversations(user, since=since, limit=limit)

    async def update(
        self, user: str, cid: str, change: SettingsChange, *, device: str | None = None
    ) -> Settings:
        """Change ``user``'s own settings of ``cid``; the settings after the change.

        Raises ``BadRequest`` for a malformed cid or an empty change and
        ``Forbidden`` when ``user`` is not a member.
        """
        cid = parse_cid(cid).value
        if change.is_empty():
            raise BadRequest("give pinned, muted or hidden, or clear: true")
        update = await self._store.update_settings(user, cid, change, now_ms=self._clock())
        if update.changed:
            self._listener.settings_changed(user, update.settings, skip_device=device)
        return update.settings

    async def readers(
        self, user: str, cid: str, seq: int, *, after: str | None, limit: int
    ) -> Readers:
        """Which members of the group ``cid`` have read up to ``seq``, a page at a time.

        Direct conversations are refused (``BadRequest``): their read state
        travels as READ_STATE, under each user's read-receipts setting.
        """
        parsed = parse_cid(cid)
        if parsed.kind != "group":
            raise BadRequest("readers: only group conversations have readers", field="cid")
        if not 1 <= limit <= MAX_READERS_PAGE:
            raise BadRequest(f"limit: must be 1-{MAX_READERS_PAGE}", field="limit")
        return await self._store.readers(user, parsed.value, seq, after=after, limit=limit)
