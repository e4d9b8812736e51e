"""Group use cases against the SQLite store: inputs are checked before anything is
looked up, and committed changes are pushed (MSG to members, NOTIFY to the
affected) only after they commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandcat.config import ChatConfig
from sandcat.domain.groups import Groups
from sandcat.errors import BadRequest, Forbidden, NotFound
from sandcat.pipeline.delivery import Delivery
from sandcat.store.contacts import FriendRequest
from sandcat.store.inbox import Notice
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.contacts import SqlContactStore
from sandcat.store.sql.groups.backend import SqlGroupStore
from sandcat.store.sqlite import open_database
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.store.backend import make_user

NOW = 1_700_000_000_000


@dataclass
class Outlet:
    device: str
    frames: list[bytes] = field(default_factory=list)

    def push(self, data: bytes) -> None:
        self.frames.append(data)


@dataclass
class Recorder:
    """A Directory with one outlet per user, and a Notifier."""

    by_user: dict[str, Outlet] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)

    def outlets(self, user: str) -> Iterable[Outlet]:
        return [self.by_user.setdefault(user, Outlet("d1"))]

    def publish(self, notices: Sequence[Notice]) -> None:
        self.notices.extend(notices)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Groups, Recorder, str]]:
    async with open_database(tmp_path / "db.sqlite", synchronous="OFF") as db:
        accounts, contacts = SqlAccountStore(db, SQLITE), SqlContactStore(db, SQLITE)
        for name in ("o", "m", "x"):
            await accounts.create_user(make_user(name))
        for friend in ("m", "x"):
            await contacts.create_request(
                FriendRequest(
                    id=f"r{friend}",
                    from_user="o",
                    to_user=friend,
                    remark="",
                    created_at=1,
                    updated_at=1,
                )
            )
            await contacts.accept_request(f"r{friend}", user=friend, remark="", now_ms=2)
        recorder = Recorder()
        groups = Groups(
            SqlGroupStore(db, SQLITE),
            config=ChatConfig(max_group_members=5),
            clock=lambda: NOW,
            notifier=recorder,
            delivery=Delivery(recorder),
        )
        detail = await groups.create("o", name="team", members=["m", "m", "o"])
        yield groups, recorder, detail.group.id


async def test_a_committed_change_is_pushed_to_members_and_notified(
    setup: tuple[Groups, Recorder, str],
) -> None:
    groups, recorder, gid = setup
    assert [(n.user, n.type) for n in recorder.notices] == [("m", "group.invited")]  # creation
    recorder.notices.clear()
    await groups.invite("o", gid, ["x"])
    assert {user for user, outlet in recorder.by_user.items() if outlet.frames} == {"o", "m", "x"}
    assert [(n.user, n.type) for n in recorder.notices] == [("x", "group.invited")]
    assert await groups.role_of(gid, "x") == "member"
    assert await groups.role_of(gid, "nobody") is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda g, gid: g.invite("o", gid, []), "users"),
        (lambda g, gid: g.invite("o", gid, ["bad id"]), "users"),
        (lambda g, gid: g.remove("o", gid, [f"u{i}" for i in range(101)]), "users"),
        (lambda g, gid: g.transfer("o", gid, "bad id"), "to"),
        (lambda g, gid: g.set_role("o", gid, "m", "owner"), "role"),
        (lambda g, gid: g.mute("o", gid, "m", -1), "until"),
        (lambda g, gid: g.mute("o", gid, "m", 2**53), "until"),
        (lambda g, gid: g.update("o", gid, {"owner": "m"}), "owner"),
        (lambda g, gid: g.update("o", gid, {"name": 5}), "name"),
        (lambda g, gid: g.update("o", gid, {"name": " "}), "name"),
        (lambda g, gid: g.update("o", gid, {"announcement": "x" * 4097}), "announcement"),
        (lambda g, gid: g.configure("o", gid, {"mute_all": 1}), "mute_all"),
        (lambda g, gid: g.configure("o", gid, {"invite_policy": "all"}), "invite_policy"),
        (lambda g, gid: g.configure("o", gid, {"max_members": 6}), "max_members"),
        (lambda g, gid: g.configure("o", gid, {"max_members": True}), "max_members"),
        (lambda g, gid: g.configure("o", gid, {"owner": "m"}), "owner"),
        (lambda g, gid: g.configure("o", gid, {}), None),
        (lambda g, gid: g.set_alias("o", gid, "x" * 65), "alias"),
        (lambda g, gid: g.request_join("x", gid, "x" * 257, token="t"), "message"),
        (lambda g, gid: g.request_join("x", gid, "hi", token=""), "token"),
        (lambda g, gid: g.request_join("x", gid, "hi", token="t" * 65), "token"),
        (lambda g, gid: g.ban("o", gid, []), "users"),
        (lambda g, gid: g.unban("o", gid, ["bad id"]), "users"),
        (lambda g, gid: g.remove("o", gid, [], ban=True), "users"),
        (lambda g, gid: g.bans("o", gid, offset=0, limit=0), "limit"),
        (lambda g, gid: g.bans("o", gid, offset=0, limit=201), "limit"),
        (lambda g, gid: g.create_invite("o", gid, expires_at=NOW, max_uses=None), "expires_at"),
        (lambda g, gid: g.create_invite("o", gid, expires_at=2**53, max_uses=None), "expires_at"),
        (lambda g, gid: g.create_invite("o", gid, expires_at=None, max_uses=0), "max_uses"),
        (lambda g, gid: g.create_invite("o", gid, expires_at=None, max_uses=100_001), "max_uses"),
        (lambda g, gid: g.revoke_invite("o", gid, "bad id"), "invite"),
        (lambda g, gid: g.members("o", gid, offset=0, limit=0), "limit"),
        (lambda g, gid: g.members("o", "bad id", offset=0, limit=5), "id"),
        (lambda g, gid: g.decide("o", "bad id", approve=True), "id"),
        (lambda g, gid: g.create("o", name="big", members=[f"u{i}" for i in range(7)]), "members"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_looked_up(
    setup: tuple[Groups, Recorder, str], call: object, field: str | None
) -> None:
    groups, recorder, gid = setup
    with pytest.raises(BadRequest) as raised:
        await call(groups, gid)  # type: ignore[operator]
    assert raised.value.field == field
    assert all(not outlet.frames for outlet in recorder.by_user.values())


async def test_invite_link_limits_at_their_bounds(setup: tuple[Groups, Recorder, str]) -> None:
    groups, recorder, gid = setup
    first = await groups.create_invite("o", gid, expires_at=NOW + 1, max_uses=1)
    last = await groups.create_invite("o", gid, expires_at=2**53 - 1, max_uses=100_000)
    assert (first.expires_at, first.max_uses, first.uses) == (NOW + 1, 1, 0)
    assert (last.expires_at, last.max_uses) == (2**53 - 1, 100_000)
    assert len(first.token) == 32
    assert first.token != last.token
    # Made at the same time: in id order.
    assert [link.id for link in await groups.invites("o", gid)] == sorted([first.id, last.id])
    assert all(not outlet.frames for outlet in recorder.by_user.values())  # no timeline event
    await groups.request_join("x", gid, None, token=first.token)
    assert await groups.role_of(gid, "x") == "member"
    revoked = await groups.revoke_invite("o", gid, last.id)
    assert revoked.revoked_at == NOW
    assert await groups.invites("o", gid) == []  # used up and revoked


async def test_a_ban_is_pushed_and_a_banned_user_refused(
    setup: tuple[Groups, Recorder, str],
) -> None:
    groups, recorder, gid = setup
    recorder.notices.clear()
    change = await groups.remove("o", gid, ["m"], ban=True)
    assert change.entry is not None
    assert recorder.by_user["m"].frames  # told of its own removal
    assert [(n.user, n.type, n.data["banned"]) for n in recorder.notices] == [
        ("m", "group.removed", True)
    ]
    page = await groups.bans("o", gid, offset=0, limit=200)
    assert ([ban.user for ban in page.bans], page.total) == (["m"], 1)
    with pytest.raises(Forbidden) as raised:
        await groups.invite("o", gid, ["m"])
    assert raised.value.reason == "banned"
    await groups.unban("o", gid, ["m"])
    await groups.ban("o", gid, ["x"])
    assert (await groups.bans("o", gid, offset=0, limit=1)).total == 1


async def test_an_unknown_group_is_not_found(setup: tuple[Groups, Recorder, str]) -> None:
    groups, _, _ = setup
    with pytest.raises(NotFound):
        await groups.update("o", "nope", {"name": "x"})
    with pytest.raises(NotFound):
        await groups.requests("o", "nope")
    with pytest.raises(NotFound):
        await groups.get("o", "nope")
