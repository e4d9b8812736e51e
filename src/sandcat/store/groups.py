"""The groups aggregate: groups and their members.

Creating a group opens its conversation in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["owner", "admin", "member"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    user: str
    role: Role
    alias: str = ""
    joined_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    id: str
    name: str
    owner: str
    max_members: int
    avatar: str = ""
    description: str = ""
    announcement: str = ""
    created_at: int
    updated_at: int
    dismissed_at: int | None = None


class GroupStore(Protocol):
    async def create_group(self, group: Group, members: list[GroupMember]) -> None:
        """Insert the group, its members and its conversation in one transaction.

        Raises ``BadRequest`` (field ``members``) if a member other than the
        owner is not a friend of the owner.
        """

    async def get_group(self, group_id: str) -> Group | None: ...

    async def list_members(self, group_id: str) -> list[GroupMember]: ...

    async def list_groups(self, user: str) -> list[Group]:
        """The groups ``user`` is a member of (not dismissed), newest first."""
