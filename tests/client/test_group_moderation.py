"""The SDK's group moderation calls (bans, invite links, joining with a token)
against a real server."""

from __future__ import annotations

import pytest

from sandcat.client import HttpError
from tests.client.cast import Cast


async def test_invite_links_bans_and_joining_through_the_sdk(cast: Cast) -> None:
    api = cast.api
    owner, member, guest = await cast.person("owner"), await cast.person(), await cast.person()
    await cast.befriend(owner, member)
    gid = (await cast.group(owner, [member]))[2:]

    link = await api.create_invite(owner.token, gid, max_uses=5, expires_at=2**53 - 1)
    assert (link.max_uses, link.expires_at, link.uses, link.revoked_at) == (5, 2**53 - 1, 0, None)
    plain = await api.create_invite(owner.token, gid)
    assert (plain.max_uses, plain.expires_at) == (None, None)
    joined = await api.request_to_join(guest.token, gid, link.token, message="hi")
    assert (joined.status, joined.message) == ("approved", "hi")
    listed = await api.group_invites(owner.token, gid)
    assert {item.id: item.uses for item in listed} == {link.id: 1, plain.id: 0}
    revoked = await api.revoke_invite(owner.token, gid, plain.id)
    assert revoked.revoked_at is not None

    seq = await api.remove_members(owner.token, gid, [guest.id], ban=True)
    assert seq is not None
    with pytest.raises(HttpError) as refused:
        await api.request_to_join(guest.token, gid, link.token)
    assert (refused.value.status, refused.value.code, refused.value.reason) == (
        403,
        "forbidden",
        "banned",
    )
    assert await api.ban_users(owner.token, gid, [member.id]) == seq + 1
    page = await api.group_bans(owner.token, gid, limit=1)
    assert (len(page.bans), page.total, page.more) == (1, 2, True)
    assert page.bans[0].by == owner.id
    assert await api.unban_users(owner.token, gid, [guest.id, member.id]) == seq + 2
    assert (await api.group_bans(owner.token, gid)).total == 0
