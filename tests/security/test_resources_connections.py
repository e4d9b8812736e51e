"""One token cannot hold 200 sockets (issue 12, item 5; default settings).

The attack: one access token opened 681 WebSocket connections, HELLO taking
any device id. Now a user holds at most ``gateway.max_connections_per_user``
(32) connections per instance; the next HELLO gets ERR ``rate_limited`` and
close 4004, while a device that reconnects still replaces its old connection.
"""

from __future__ import annotations

import pytest
import trio

from sandcat.app import Server
from sandcat.protocol import Err, ErrorCode, Ok
from tests.scene import Api
from tests.security.slow_client import Closed, SlowReader

#: The default per-user cap, and the attack of the issue's pass figure.
PER_USER = 32
SOCKETS = 200


async def test_one_token_cannot_hold_200_sockets(server: Server, api: Api) -> None:
    mallory = await api.account()
    held: list[SlowReader] = []
    refused = 0
    with trio.fail_after(60):
        for n in range(SOCKETS):
            reader = await SlowReader.connect(server.ws_port)
            reply = await reader.hello(mallory.token, f"dev{n}")
            if isinstance(reply, Ok):
                held.append(reader)
                continue
            assert isinstance(reply, Err), reply
            assert reply.code is ErrorCode.RATE_LIMITED
            assert reply.retry_after_ms
            with pytest.raises(Closed) as closed:
                await reader.receive()
            assert closed.value.code == 4004
            reader.close()
            refused += 1
        # At the cap, a device that reconnects replaces its old connection.
        again = await SlowReader.open(server.ws_port, mallory.token, device="dev0")
        with pytest.raises(Closed) as replaced:
            await held[0].receive()
        assert replaced.value.code == 4001
    print(f"one token, {SOCKETS} sockets: {len(held)} held, {refused} refused")
    assert len(held) == PER_USER
    assert refused == SOCKETS - PER_USER
    for reader in [*held, again]:
        reader.close()
