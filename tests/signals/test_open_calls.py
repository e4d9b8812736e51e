"""With ``dm_policy = "anyone"``, strangers may call each other as they may message,
unless one blocks the other; the call log opens their conversation."""

from __future__ import annotations

import pytest

from sandcat.protocol import Call, Pull
from tests.gateway.raw import Connect
from tests.scene import Api
from tests.signals.watch import call_event, err_code, ok


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"chat.dm_policy": "anyone"}


async def test_strangers_may_call_unless_blocked(api: Api, connect: Connect) -> None:
    alice, bob, cy = [await api.account() for _ in range(3)]
    blocked = await api.http.put(f"/api/v1/blocks/{alice.id}", headers=api.auth(cy))
    assert blocked.status_code in (200, 204), blocked.text
    laptop, phone = await connect(alice.token), await connect(bob.token)

    placed = ok(await laptop.request(Call(rid=1, action="invite", peer=bob.id, media="audio")))
    await call_event(phone, "ring")
    ok(await laptop.request(Call(rid=2, action="cancel", call=placed["call"])))
    await call_event(phone, "ended")
    # "ended" is pushed once the call log is stored: a PULL right away finds it.
    low, high = sorted((alice.id, bob.id))
    pulled = ok(await phone.request(Pull(rid=phone.rid(), cid=f"d:{low}:{high}", after=0)))
    assert [m["body"]["outcome"] for m in pulled["msgs"]] == ["cancelled"]

    refused = await laptop.request(Call(rid=3, action="invite", peer=cy.id, media="audio"))
    assert err_code(refused) == "forbidden"
