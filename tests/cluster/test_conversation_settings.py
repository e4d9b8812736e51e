"""CONV_SET on instance A reaches the member's device on instance B (PostgreSQL + Redis)."""

from __future__ import annotations

import trio

from sandcat.protocol import ConvSet, ConvState, Ok, Sync
from tests.cluster.conftest import Instance
from tests.cluster.test_fanout import Sockets, api, pair, sockets  # noqa: F401 - fixtures
from tests.gateway.raw import Raw
from tests.scene import Api


async def _next_conv_state(raw: Raw) -> ConvState:
    while True:
        frame = await raw.push()
        if isinstance(frame, ConvState):
            return frame


async def test_settings_changed_on_a_reach_the_other_device_on_b(
    pair: tuple[Instance, Instance],  # noqa: F811
    api: Api,  # noqa: F811
    sockets: Sockets,  # noqa: F811
) -> None:
    a, b = pair
    alice, bob = await api.account("laptop"), await api.account("phone")
    cid = await api.befriend(alice, bob)
    phone_login = await api.login(alice.username, alice.password, "phone")
    laptop = await sockets.open(a, alice.token, "laptop")
    phone = await sockets.open(b, phone_login.token, "phone")
    reply = await laptop.request(ConvSet(rid=laptop.rid(), cid=cid, pinned=True, clear=True))
    assert isinstance(reply, Ok), reply
    with trio.fail_after(2):
        state = await _next_conv_state(phone)
    assert state == ConvState(cid=cid, pinned=True, muted=False, hidden=False, cleared_seq=0)
    synced = await phone.request(Sync(rid=phone.rid()))
    assert isinstance(synced, Ok), synced
    [conv] = [c for c in synced.body["convs"] if c["cid"] == cid]  # type: ignore[attr-defined]
    assert conv["pinned"] is True
