"""GET /metrics counts what the gateway and the send path did."""

from __future__ import annotations

import re

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
