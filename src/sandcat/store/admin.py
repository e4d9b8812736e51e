"""What server administration keeps: the server-admin role, the audit log and
the figures of ``stats`` (README.md, "Operating Sandcat": Admin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One admin action: who (a user id, or ``cli:<os user>``), what, on what,
    when (ms) and from where (the client address, or ``cli``)."""

    actor: str
    action: str
    target: str
    origin: str
    at: int
    #: What else the action needs to be understood (never a secret).
    detail: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    users: int
    disabled_users: int
    deleted_users: int
    active_sessions: int
    messages: int
    files: int
    file_bytes: int
    #: ``(day start ms, messages sent that day)``, oldest first.
    sends_per_day: list[tuple[int, int]] = field(default_factory=list)


class AdminStore(Protocol):
    async def grant_admin(self, user: str, *, by: str, now_ms: int) -> bool:
        """Make ``user`` a server admin; False if they already were."""

    async def revoke_admin(self, user: str) -> bool:
        """False if ``user`` was not a server admin."""

    async def is_admin(self, user: str) -> bool: ...

    async def admins(self) -> list[str]: ...

    async def flags(self, user: str) -> tuple[bool, int | None]:
        """Whether ``user`` is a server admin, and when the account was deleted (or None)."""

    async def set_enabled(self, user: str, *, now_ms: int) -> bool:
        """Enable a disabled (not deleted) account; False if it was not disabled."""

    async def erase_user(
        self, user: str, *, display_name: str, avatar: str, password_hash: str, now_ms: int
    ) -> None:
        """Mark the account deleted and erase what identifies it: email, phone, profile
        fields, password (``password_hash`` matches nothing), OAuth links, blocks both
        ways, pending friend requests both ways, the admin role. The id and username
        stay reserved, so old messages never point at someone else."""

    async def record(self, entry: AuditEntry) -> None: ...

    async def audit(
        self, *, actor: str | None, action: str | None, since_ms: int | None, limit: int
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first."""

    async def stats(self, *, now_ms: int, days: int) -> Stats: ...

    async def user_ids(self, *, after: str, limit: int) -> list[str]:
        """Ids of accounts that are not deleted, in id order after ``after``."""
