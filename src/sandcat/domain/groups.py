"""Groups: creation and membership queries.

Creating a group opens its conversation (``g:`` cid) with every member in
the same transaction. Only friends of the creator may be added at creation.
A group is visible only to its members: to anyone else it does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandcat.clock import Clock
from sandcat.config import ChatConfig
from sandcat.domain._text import bounded
from sandcat.errors import BadRequest, NotFound
from sandcat.ids import new_id, parse_id
from sandcat.store.groups import Group, GroupMember, GroupStore


@dataclass(frozen=True, slots=True)
class GroupDetail:
    group: Group
    members: list[GroupMember]


class Groups:
    """The group use cases over a ``GroupStore``."""

    def __init__(self, store: GroupStore, *, config: ChatConfig, clock: Clock) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    async def create(self, owner: str, *, name: str, members: list[str]) -> GroupDetail:
        """Create a group owned by ``owner`` with ``members`` (friends of the owner).

        Raises ``BadRequest`` naming ``name`` or ``members`` (not friends, too many).
        """
        name = bounded(name, field="name", low=1, high=64)
        others: list[str] = []
        for member in members:
            member = parse_id(member, field="members")
            if member != owner and member not in others:
                others.append(member)
        limit = self._config.max_group_members
        if len(others) + 1 > limit:
            raise BadRequest(
                f"members: a group has at most {limit} members, creator included",
                field="members",
            )
        now = self._clock()
        group = Group(
            id=new_id(),
            name=name,
            owner=owner,
            max_members=limit,
            created_at=now,
            updated_at=now,
        )
        roster = [GroupMember(user=owner, role="owner", joined_at=now)]
        roster += [GroupMember(user=user, role="member", joined_at=now) for user in others]
        await self._store.create_group(group, roster)
        return GroupDetail(group, roster)

    async def get(self, user: str, group_id: str) -> GroupDetail:
        """The group with its members, if ``user`` is one; ``NotFound`` otherwise."""
        group_id = parse_id(group_id, field="id")
        group = await self._store.get_group(group_id)
        members = [] if group is None else await self._store.list_members(group_id)
        if group is None or group.dismissed_at is not None or user not in {m.user for m in members}:
            raise NotFound("no such group")
        return GroupDetail(group, members)

    async def mine(self, user: str) -> list[Group]:
        """The groups ``user`` belongs to."""
        return await self._store.list_groups(user)
