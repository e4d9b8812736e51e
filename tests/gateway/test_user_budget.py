"""The per-user frame budget: two connections of one user share it; frames past it
get ERR rate_limited with retry_after_ms and are not processed; other users and
the connections themselves carry on."""

from __future__ import annotations

import pytest

from sandcat.protocol import Err, ErrorCode, Ok, Ping
from tests.gateway.raw import Connect
from tests.scene import Api


@pytest.fixture
def server_overrides() -> dict[str, object]:
    return {"gateway.user_rate_per_s": 0.01, "gateway.user_burst": 4, "gateway.user_lease": 2}


async def test_two_connections_of_one_user_share_one_budget(api: Api, connect: Connect) -> None:
    alice = await api.account("phone")
    tablet = await api.login(alice.username, alice.password, "tablet")
    phone = await connect(alice.token, device="phone")
    pad = await connect(tablet.token, device="tablet")
    outcomes = []
    # The last two on the tablet: the second is refused without asking the store again.
    for raw in (phone, phone, pad, pad, phone, pad, pad):
        outcomes.append(await raw.request(Ping(rid=raw.rid())))
    assert [type(o) for o in outcomes[:4]] == [Ok, Ok, Ok, Ok]
    for refused in outcomes[4:]:
        assert isinstance(refused, Err)
        assert refused.code == ErrorCode.RATE_LIMITED
        assert refused.retry_after_ms is not None
        assert refused.retry_after_ms >= 1
    # Someone else's budget is untouched.
    bob = await api.account("phone")
    assert isinstance(await (await connect(bob.token)).request(Ping(rid=1)), Ok)
