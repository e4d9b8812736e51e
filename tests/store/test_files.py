"""FileStore conformance (uploads, access, attachments, lifecycle, avatars) on every backend."""

from __future__ import annotations

import pytest
import trio

from sandcat.errors import Forbidden, NotFound
from sandcat.store.contacts import FriendRequest
from sandcat.store.files import QuotaExceeded, Upload
from sandcat.store.groups import Group, GroupMember
from sandcat.store.messages import Appended, NewMessage, Refused
from tests.store.backend import Backend, make_user

AB = "d:a:b"


@pytest.fixture
async def db(backend: Backend) -> Backend:
    await backend.users(*(make_user(u) for u in ("a", "b", "c")))
    await backend.open_conversation(AB, "direct", ("a", "b"))
    return backend


def upload(
    id_: str, owner: str = "a", *, size: int = 10, kind: str = "file", at: int = 100
) -> Upload:
    return Upload(
        id=id_, owner=owner, kind=kind, content_type="text/plain", size=size, created_at=at
    )


async def ready(db: Backend, item: Upload, quota: int = 1000) -> Upload:
    await db.files.begin(item)
    return await db.files.finish(item, quota_bytes=quota)


async def test_begin_finish_quota_usage_and_mine(db: Backend) -> None:
    files = db.files
    with trio.fail_after(10):
        await files.begin(upload("f1", size=0))
        pending = await files.get("f1")
        assert pending is not None
        assert pending.state == "pending"
        done = await files.finish(upload("f1", size=600), quota_bytes=1000)
        assert (done.state, done.size, done.created_at) == ("ready", 600, 100)
        await files.begin(upload("f2", size=0, at=200))
        with pytest.raises(QuotaExceeded):
            await files.finish(upload("f2", size=500), quota_bytes=1000)
        assert await files.usage("a") == 600
        await ready(db, upload("f3", size=100, at=300))
        assert [u.id for u in await files.mine("a", limit=10)] == ["f3", "f1"]
        assert await files.get("nothing") is None


async def test_sending_an_upload_shares_it_with_the_conversation(db: Backend) -> None:
    files = db.files
    with trio.fail_after(10):
        await ready(db, upload("f1"))
        assert await files.visible_to("f1", "a")
        assert not await files.visible_to("f1", "b")
        assert [u.id for u in await files.attachable(["f1", "zz"], "a")] == ["f1"]
        assert await files.attachable(["f1"], "b") == []
        send = NewMessage("a", "a-d", AB, "m1", 1, b"\x80", files=("f1", "f1"))
        [outcome] = await db.messages.append([send], now_ms=500, open_direct=False)
        assert isinstance(outcome, Appended)
        assert await files.visible_to("f1", "b")
        assert not await files.visible_to("f1", "c")
        found = await files.get("f1")
        assert found is not None
        assert found.referenced_at == 500
        # Referenced uploads are not the janitor's prey.
        swept = await files.condemn_unreferenced(
            ready_before_ms=10_000, pending_before_ms=10_000, limit=10
        )
        assert swept == []


async def test_a_condemned_upload_cannot_be_sent_and_is_purged(db: Backend) -> None:
    files = db.files
    with trio.fail_after(10):
        await ready(db, upload("f1"))
        assert await files.condemn("f1", owner="b") is None
        gone = await files.condemn("f1", owner="a")
        assert gone is not None
        assert gone.state == "ready"
        assert await files.condemn("f1", owner=None) is None
        sends = [
            NewMessage("a", "a-d", AB, "m1", 1, b"\x80", files=("f1",)),
            NewMessage("a", "a-d", AB, "m2", 1, b"\x80"),
        ]
        refused, stored = await db.messages.append(sends, now_ms=500, open_direct=False)
        assert isinstance(refused, Refused)
        assert refused.code == "bad_request"
        assert isinstance(stored, Appended)
        assert stored.message.seq == 1
        assert [u.id for u in await files.condemned(limit=10)] == ["f1"]
        await files.purge("f1")
        assert await files.get("f1") is None


async def test_the_janitor_condemns_old_unreferenced_uploads(db: Backend) -> None:
    files = db.files
    with trio.fail_after(10):
        await ready(db, upload("old", at=100))
        await ready(db, upload("new", at=9_000))
        await files.begin(upload("stuck", at=100))
        swept = await files.condemn_unreferenced(
            ready_before_ms=1_000, pending_before_ms=1_000, limit=10
        )
        assert sorted(u.id for u in swept) == ["old", "stuck"]
        assert sorted(u.id for u in await files.condemned(limit=10)) == ["old", "stuck"]


async def test_avatars_for_users_and_groups(db: Backend) -> None:
    files = db.files
    with trio.fail_after(10):
        await files.install(
            Upload(
                id="default",
                owner="",
                kind="avatar",
                content_type="image/png",
                state="ready",
                created_at=1,
            )
        )
        await files.install(
            Upload(
                id="default",
                owner="",
                kind="avatar",
                content_type="image/webp",
                state="ready",
                created_at=2,
            )
        )
        shipped = await files.get("default")
        assert shipped is not None
        assert shipped.content_type == "image/webp"
        await ready(db, upload("av", kind="avatar"))
        await ready(db, upload("doc"))
        assert await files.set_user_avatar("a", "av", now_ms=700) == ""
        assert await files.set_user_avatar("a", "av", now_ms=800) == "av"
        with pytest.raises(NotFound):
            await files.set_user_avatar("a", "doc", now_ms=800)
        with pytest.raises(NotFound):
            await files.set_user_avatar("nobody", "av", now_ms=800)
        await db.contacts.create_request(
            FriendRequest(id="r", from_user="a", to_user="b", created_at=1, updated_at=1)
        )
        await db.contacts.accept_request("r", user="b", remark="", now_ms=2)
        group = Group(id="g", name="g", owner="a", max_members=5, created_at=1, updated_at=1)
        await db.groups.create_group(
            group,
            [
                GroupMember(user="a", role="owner", joined_at=1),
                GroupMember(user="b", role="member", joined_at=1),
            ],
        )
        assert await files.group_role("g", "b") == "member"
        assert await files.group_role("g", "c") is None
        with pytest.raises(Forbidden):
            await db.groups.set_avatar("g", "b", "av", now_ms=900)
        with pytest.raises(NotFound):
            await db.groups.set_avatar("g", "c", "av", now_ms=900)
        with pytest.raises(NotFound):  # not an avatar upload
            await db.groups.set_avatar("g", "a", "doc", now_ms=900)
        changed = await db.groups.set_avatar("g", "a", "av", now_ms=900)
        assert changed.previous == ""
        assert changed.entry is not None
        again = await db.groups.set_avatar("g", "a", "av", now_ms=901)
        assert (again.previous, again.entry) == ("av", None)  # unchanged: no message
        # Condemning an avatar clears it wherever it is shown.
        await files.condemn("av", owner=None)
        user = await db.accounts.get_user("a")
        assert user is not None
        assert user.avatar == ""
        shown = await db.groups.get_group("g")
        assert shown is not None
        assert shown.avatar == ""
