"""Conversations as one member sees them: settings, mentions and who has read what.

The list itself (SYNC's CONVs) comes from ``MessageStore.conversations``; this
aggregate holds what a member changes about a conversation for themselves
(pin, mute, hide, clear history) and the group read receipts (READERS).
Every settings change takes a fresh SYNC version for the member's row, so
incremental syncs on the member's other devices pick it up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sandcat.protocol import MENTION_ALL, parse_cid
from sandcat.store.messages import ConversationState, StoredMessage
from sandcat.store.sql._tx import Tx


@dataclass(frozen=True, slots=True)
class Settings:
    """A member's own settings for one conversation."""

    cid: str
    pinned: bool
    muted: bool
    hidden: bool
    #: "Clear history for me": this member never sees seqs up to this one again.
    cleared_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsChange:
    """What CONV_SET asks for; None leaves a setting as it is."""

    pinned: bool | None = None
    muted: bool | None = None
    hidden: bool | None = None
    #: True moves ``cleared_seq`` to the conversation's current ``max_seq``.
    clear: bool = False

    def is_empty(self) -> bool:
        return self.pinned is None and self.muted is None and self.hidden is None and not self.clear


@dataclass(frozen=True, slots=True)
class SettingsUpdate:
    settings: Settings
    #: False when the change left everything as it was (no version, no push).
    changed: bool


@dataclass(frozen=True, slots=True)
class Readers:
    """One page of a conversation's members (ascending user id), split by whether
    their read position has reached the asked seq."""

    read: tuple[str, ...]
    unread: tuple[str, ...]
    #: The last user id of this page when more members follow (pass as ``after``).
    next: str | None


class ConversationStore(Protocol):
    async def update_settings(
        self, user: str, cid: str, change: SettingsChange, *, now_ms: int
    ) -> SettingsUpdate:
        """Apply ``change`` to ``user``'s row of ``cid``; ``Forbidden`` if not a member."""
        ...

    async def readers(
        self, user: str, cid: str, seq: int, *, after: str | None, limit: int
    ) -> Readers:
        """Members of ``cid`` after ``after`` (at most ``limit``) by whether their
        read seq is at least ``seq``; ``Forbidden`` if ``user`` is not a member."""
        ...


# -- shared by the SQLite and PostgreSQL stores ----------------------------------


@dataclass(frozen=True, slots=True)
class AppendEffects:
    """What a batch of new messages changes in member rows, one entry per row."""

    #: (sender, cid) -> their last seq in the batch: the sender has read it.
    read: dict[tuple[str, str], int]
    #: (user, cid) -> the last seq in the batch that mentions them.
    mentioned: dict[tuple[str, str], int]
    #: group cid -> (last seq mentioning ``all``, its sender): every other member.
    everyone: dict[str, tuple[int, str]]


def note_system_message(tx: Tx, message: StoredMessage) -> None:
    """What a group's system message changes for its members, like a sent one: the
    actor has read it, and members who hid the group see it again."""
    tx.run(
        "UPDATE conversation_members SET read_seq = ? "
        "WHERE cid = ? AND user_id = ? AND read_seq < ?",
        message.seq,
        message.cid,
        message.sender,
        message.seq,
    )
    tx.run(
        "UPDATE conversation_members SET hidden = ? WHERE cid = ? AND hidden = ?",
        False,
        message.cid,
        True,
    )


def append_effects(rows: Iterable[StoredMessage]) -> AppendEffects:
    """Fold a batch of new messages (ascending seq per cid) into member-row changes."""
    effects = AppendEffects({}, {}, {})
    for m in rows:
        effects.read[(m.sender, m.cid)] = m.seq
        targets = [user for user in m.mentions or () if user != m.sender]
        if MENTION_ALL in targets and parse_cid(m.cid).kind == "group":
            effects.everyone[m.cid] = (m.seq, m.sender)
        else:
            for user in targets:
                effects.mentioned[(user, m.cid)] = m.seq
    return effects


def apply_change(before: Settings, change: SettingsChange, max_seq: int) -> Settings:
    """``before`` with ``change`` applied; clearing never moves back."""
    return Settings(
        before.cid,
        before.pinned if change.pinned is None else change.pinned,
        before.muted if change.muted is None else change.muted,
        before.hidden if change.hidden is None else change.hidden,
        max(before.cleared_seq, max_seq) if change.clear else before.cleared_seq,
    )


def cut_page(changes: Sequence[tuple[str, int]], limit: int) -> tuple[list[str], int] | None:
    """The cids of the first SYNC page of ``limit`` and its version, or None if all fit.

    ``changes`` are ``(cid, change version)``. The page takes the oldest
    changes first and never splits one version (a client resumes with
    ``since`` = the page's version): it holds more than ``limit`` when one
    transaction changed several of the user's conversations at the cut.
    """
    if len(changes) <= limit:
        return None
    ordered = sorted(changes, key=lambda change: change[1])
    last = ordered[limit - 1][1]
    page = ordered[:limit] + [change for change in ordered[limit:] if change[1] == last]
    return [cid for cid, _ in page], last


def split_readers(rows: Sequence[Sequence[Any]], limit: int) -> Readers:
    """A page of ``(user, has read)`` rows (one more than ``limit`` if more follow)."""
    page = rows[:limit]
    return Readers(
        read=tuple(str(u) for u, done in page if done),
        unread=tuple(str(u) for u, done in page if not done),
        next=str(page[-1][0]) if len(rows) > limit else None,
    )


def state_from_row(
    row: Sequence[Any], message: Callable[[Any], StoredMessage]
) -> ConversationState:
    """A CONV from a ``conversation_states`` row (the same columns on both backends)."""
    cid, kind, max_seq, min_seq, read_seq, muted, pinned, hidden, cleared, mention_seq = row[:10]
    peer_read = row[10]
    max_seq, min_seq, read_seq = int(max_seq), int(min_seq), int(read_seq)
    cleared, mention_seq = int(cleared), int(mention_seq)
    # Unread counts from the later of the read and cleared seqs; sending
    # advances the sender's read seq, so every seq after it is someone else's.
    seen = max(read_seq, cleared, min_seq - 1)
    return ConversationState(
        cid=str(cid),
        kind="direct" if kind == "direct" else "group",
        max_seq=max_seq,
        min_seq=max(min_seq, cleared + 1),
        read_seq=read_seq,
        muted=bool(muted),
        pinned=bool(pinned),
        last=None if row[11] is None else message(row[11:]),
        unread=max(0, max_seq - seen),
        hidden=bool(hidden),
        cleared_seq=cleared,
        mention=mention_seq > seen,
        peer_read_seq=None if peer_read is None else int(peer_read),
    )
