"""Spam limits (issue 12, item 9), attacked over real sockets: friend request /
cancel loops, TYPING spread over more conversations than a connection
remembers, and mass registration from one address. Each is bounded per user
(or per addressee) and per address by a shared limiter."""

from __future__ import annotations

import pytest
import trio

from sandcat.protocol import Err, Ok, Typing, TypingEvent
from tests.gateway.conftest import connect  # noqa: F401 - the fixture
from tests.gateway.raw import Connect
from tests.scene import Api
from tests.signals.watch import pushes_within

REQUESTS = "/api/v1/friends/requests"


@pytest.fixture
def server_overrides() -> dict[str, object]:
    # Setting the scene registers more than 20 accounts from one address; the
    # registration test runs with the defaults.
    return {"auth.registrations_per_ip": 100}


async def _notices(api: Api, token: str) -> int:
    reply = await api.http.get(
        "/api/v1/inbox", params={"limit": 200}, headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200, reply.text
    return len(reply.json()["notices"])


async def test_friend_request_cancel_loops_hit_a_limit(api: Api) -> None:
    attacker, victim = await api.account(), await api.account()
    statuses = []
    for _ in range(60):
        sent = await api.http.post(REQUESTS, json={"to": victim.id}, headers=api.auth(attacker))
        statuses.append(sent.status_code)
        if sent.status_code != 201:
            assert sent.status_code == 429, sent.text
            assert int(sent.headers["Retry-After"]) > 0
            continue
        request_id = sent.json()["request"]["id"]
        cancel = await api.http.post(f"{REQUESTS}/{request_id}/cancel", headers=api.auth(attacker))
        assert cancel.status_code == 200, cancel.text
    notices = await _notices(api, victim.token)
    print(f"60 request/cancel cycles: {statuses.count(201)} sent, victim got {notices} notices")
    # friend_requests_per_pair = 3: max-1 and max go through, max+1 waits.
    assert statuses[:3] == [201, 201, 201]
    assert set(statuses[3:]) == {429}
    assert notices == 6
    # Someone else may still befriend the victim.
    other = await api.account()
    assert (
        await api.http.post(REQUESTS, json={"to": victim.id}, headers=api.auth(other))
    ).status_code == 201


async def test_friend_requests_to_many_users_hit_the_per_user_limit(api: Api) -> None:
    attacker = await api.account()
    targets = [await api.account() for _ in range(31)]
    statuses = [
        (await api.http.post(REQUESTS, json={"to": t.id}, headers=api.auth(attacker))).status_code
        for t in targets
    ]
    assert statuses == [201] * 30 + [429]


@pytest.mark.parametrize("server_overrides", [{}], ids=["defaults"])
async def test_eighty_registrations_from_one_address_hit_a_limit(api: Api) -> None:
    statuses = []
    for index in range(80):
        reply = await api.http.post(
            "/api/v1/auth/register",
            json={"username": f"spam{index}", "password": "correct horse 1"},
        )
        statuses.append(reply.status_code)
    print(f"80 registrations from one address: {statuses.count(201)} accounts made")
    # registrations_per_ip = 20: the 20th is made, the 21st waits.
    assert statuses[:20] == [201] * 20
    assert set(statuses[20:]) == {429}
    assert statuses.count(201) < 80


async def test_typing_over_many_conversations_stays_limited(
    api: Api,
    connect: Connect,  # noqa: F811 - the fixture
) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    groups = [await api.group(alice, [bob], name=f"g{i}") for i in range(70)]
    typist, watcher = await connect(alice.token), await connect(bob.token)
    started = trio.current_time()
    accepted = 0
    # Round-robin over 70 conversations: more than the 64 a connection remembers.
    for _ in range(3):
        for cid in groups:
            reply = await typist.request(Typing(rid=typist.rid(), cid=cid))
            assert isinstance(reply, Ok | Err)
            accepted += isinstance(reply, Ok)
    elapsed = trio.current_time() - started
    delivered = len(await pushes_within(watcher, TypingEvent, 0.5))
    print(f"TYPING over 70 conversations: {accepted} of 210 accepted, {delivered} delivered")
    # typing_per_user = 30 per 10 s window.
    assert accepted <= 30 * (1 + int(elapsed // 10))
    assert delivered == accepted
