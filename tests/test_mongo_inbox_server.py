"""A server with its inbox in MongoDB (briskdb here): a friend request's notice,
committed with the request in SQL, is pulled from MongoDB and acked there."""

from __future__ import annotations

import pytest
import trio

from tests.scene import Api

INBOX = "/api/v1/inbox"


@pytest.fixture
def server_overrides(mongo_url: str) -> dict[str, object]:
    return {"backends.mongo_url": mongo_url}


async def test_a_friend_request_notice_lands_in_the_mongo_inbox(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    reply = await api.http.post(
        "/api/v1/friends/requests", json={"to": bob.id}, headers=api.auth(alice)
    )
    assert reply.status_code == 201, reply.text
    # The relay moves the notice from SQL to MongoDB right after the commit.
    with trio.fail_after(10):
        while True:
            page = (await api.http.get(INBOX, headers=api.auth(bob))).json()
            if page["notices"]:
                break
            await trio.sleep(0.02)
    assert page["max_nseq"] == 1
    ((nseq, kind),) = [(n["nseq"], n["type"]) for n in page["notices"]]
    assert (nseq, kind) == (1, "friend.requested")
    reply = await api.http.post(INBOX + "/ack", json={"upto": 1}, headers=api.auth(bob))
    assert reply.status_code == 200, reply.text
    assert (await api.http.get(INBOX, headers=api.auth(bob))).json()["notices"] == []


async def test_a_group_invitation_notice_lands_in_the_mongo_inbox(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    await api.group(alice, [bob])
    with trio.fail_after(10):
        while True:
            page = (await api.http.get(INBOX, headers=api.auth(bob))).json()
            if any(n["type"] == "group.invited" for n in page["notices"]):
                break
            await trio.sleep(0.02)
    nseqs = [n["nseq"] for n in page["notices"]]
    assert nseqs == list(range(1, len(nseqs) + 1))
