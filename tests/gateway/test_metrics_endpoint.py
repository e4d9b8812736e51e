"""GET /metrics counts what the gateway and the send path did."""

from __future__ import annotations

import re

from quart import Response

from sandcat.api.errors import _error_code
from sandcat.app import Server
from sandcat.protocol import Msg, Ok, Pull, Send, Sync
from tests.gateway.raw import Connect
from tests.scene import Api


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


async def test_metrics_count_frames_latencies_and_errors(
    api: Api, connect: Connect, server: Server
) -> None:
    a, b = await api.account(), await api.account()
    cid = await api.befriend(a, b)
    alice, bob = await connect(a.token), await connect(b.token)
    ack = await alice.request(Send(rid=alice.rid(), cid=cid, cmid="m1", kind=1, body={"text": "x"}))
    assert isinstance(ack, Ok)
    assert isinstance(await bob.push(), Msg)
    await alice.request(Pull(rid=alice.rid(), cid=cid, after=0))
    await alice.request(Sync(rid=alice.rid()))
    await alice.request(Send(rid=alice.rid(), cid="g:nope", cmid="m2", kind=1, body={"text": "x"}))

    reply = await api.http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = reply.text
    assert _sample(text, 'sandcat_frames_in_total{op="send"}') == 2
    assert _sample(text, 'sandcat_frames_in_total{op="hello"}') == 2
    assert _sample(text, 'sandcat_frames_out_total{op="msg"}') == 1
    assert _sample(text, 'sandcat_errors_total{transport="ws",code="forbidden"}') == 1
    assert _sample(text, "sandcat_connections") == 2
    assert _sample(text, "sandcat_connections_opened_total") == 2
    assert _sample(text, "sandcat_send_ack_seconds_count") == 1
    assert _sample(text, "sandcat_send_commit_seconds_count") == 2
    assert _sample(text, "sandcat_persister_batch_size_count") >= 1
    assert _sample(text, "sandcat_store_read_seconds_count") == 2
    assert _sample(text, "sandcat_send_queue_depth") == 0
    assert _sample(text, "sandcat_outbound_queue_frames") >= 0


async def test_http_errors_are_counted_by_transport_and_code(api: Api) -> None:
    def count(text: str, code: str) -> float:
        name = f'sandcat_errors_total{{transport="http",code="{code}"}}'
        return _sample(text, name) if name in text else 0

    before = (await api.http.get("/metrics")).text
    assert count(before, "not_found") == 0
    assert (await api.http.get("/api/v1/nothing-here")).status_code == 404
    assert (await api.http.get("/api/v1/users/me")).status_code == 401
    for _ in range(2):
        bad = await api.http.post("/api/v1/auth/login", json={"login": "x", "password": "y"})
        assert bad.status_code == 401
    broken = await api.http.post(
        "/api/v1/auth/register", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert (await api.http.get("/healthz")).status_code == 200
    text = (await api.http.get("/metrics")).text
    assert count(text, "not_found") == 1
    assert count(text, "unauthorized") == 3
    assert count(text, "bad_request") == 1
    assert 'transport="http",code="ok"' not in text


async def test_an_error_answer_that_is_not_json_is_counted_by_its_status() -> None:
    assert await _error_code(Response("busy", status=503, mimetype="text/plain")) == "503"
    assert await _error_code(Response("[1]", status=500, mimetype="application/json")) == "500"
