"""One user's bad strings cannot fail other users' sends (issue 12, item 1).

The attack: SENDs whose cmid holds U+0000 reached PostgreSQL, which refused
the row and with it the whole group-commit transaction: while one attacker
sent such frames, 26 of 40 sends by an unrelated user in another
conversation got ``unavailable``. Now U+0000 and lone surrogates are refused
at the edge (ERR ``bad_request`` on the socket, 400 over HTTP), and the
persister commits around a send the store refuses (tests/store/test_rejected_values.py).
Both engines.
"""

from __future__ import annotations

import msgpack
import pytest
import trio

from sandcat.app import Server
from sandcat.protocol import Err, ErrorCode, Ok, Op, Send
from tests.e2e.wire import Wire, open_wire
from tests.scene import Api

#: The victim's sends, and how many of them are in flight at once.
VICTIM_SENDS = 40
VICTIM_WINDOW = 4
#: The attacker's bad sends in flight at once.
ATTACK_WINDOW = 32


@pytest.fixture(params=["sqlite", "postgres"])
def server_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "postgres":
        return {"backends.database_url": request.getfixturevalue("postgres_url")}
    return {}


def _nul_send(rid: int, cid: str, n: int) -> bytes:
    body = {"cid": cid, "cmid": f"evil\x00{n}", "kind": 1, "body": {"text": "x"}}
    data: bytes = msgpack.packb([Op.SEND, rid, body], use_bin_type=True)
    return data


async def test_nul_cmids_are_refused_and_fail_nobody_elses_sends(
    server: Server, api: Api, ws_url: str
) -> None:
    mallory, accomplice = await api.account(), await api.account()
    victim, friend = await api.account(), await api.account()
    evil_cid = await api.befriend(mallory, accomplice)
    cid = await api.befriend(victim, friend)
    attack: list[Ok | Err] = []
    sent: list[Ok | Err] = []
    with trio.fail_after(60):
        async with (
            open_wire(ws_url, mallory.token, "m1") as evil,
            open_wire(ws_url, victim.token, "v1") as wire,
        ):

            async def flood(done: trio.Event) -> None:
                async def one(n: int) -> None:
                    rid = evil.rid()
                    attack.append(await evil.call_raw(rid, _nul_send(rid, evil_cid, n)))

                n = 0
                while not done.is_set():
                    async with trio.open_nursery() as burst:
                        for _ in range(ATTACK_WINDOW):
                            n += 1
                            burst.start_soon(one, n)

            async def send_all(wire: Wire, done: trio.Event) -> None:
                limiter = trio.Semaphore(VICTIM_WINDOW)

                async def one(n: int) -> None:
                    async with limiter:
                        frame = Send(
                            rid=wire.rid(), cid=cid, cmid=f"v{n}", kind=1, body={"text": "hi"}
                        )
                        sent.append(await wire.call(frame))

                async with trio.open_nursery() as sends:
                    for n in range(VICTIM_SENDS):
                        sends.start_soon(one, n)
                done.set()

            done = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood, done)
                await trio.sleep(0.05)  # the flood is on before the first victim send
                nursery.start_soon(send_all, wire, done)
    failed = [reply for reply in sent if not isinstance(reply, Ok)]
    print(
        f"{len(attack)} NUL sends: {sum(isinstance(r, Ok) for r in attack)} stored; "
        f"victim: {len(sent) - len(failed)} of {len(sent)} sends acked"
    )
    assert failed == []
    assert len(sent) == VICTIM_SENDS
    assert attack
    for reply in attack:
        assert isinstance(reply, Err)
        assert reply.code is ErrorCode.BAD_REQUEST
        assert "cmid: must not contain U+0000" in reply.message


@pytest.mark.parametrize(
    ("text", "status", "message"),
    [
        ("a\\u0000b", 422, "display_name: must not contain U+0000"),
        ("\\u0000", 422, "display_name: must not contain U+0000"),
        ("a\\ud800b", 400, "request body is not valid JSON"),
        ("\\udfff", 400, "request body is not valid JSON"),
    ],
)
async def test_json_strings_with_nul_or_lone_surrogates_are_refused(
    server: Server, api: Api, text: str, status: int, message: str
) -> None:
    alice = await api.account()
    reply = await api.http.patch(
        "/api/v1/users/me",
        content=f'{{"display_name": "{text}"}}',
        headers={**api.auth(alice), "Content-Type": "application/json"},
    )
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["message"]) == ("bad_request", message)
    me = await api.http.get("/api/v1/users/me", headers=api.auth(alice))
    assert "\x00" not in me.json()["user"]["display_name"]


async def test_a_query_parameter_with_nul_is_refused_naming_it(server: Server, api: Api) -> None:
    alice = await api.account()
    reply = await api.http.get(
        "/api/v1/users/search", params={"q": "do\x00ra"}, headers=api.auth(alice)
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "q"
