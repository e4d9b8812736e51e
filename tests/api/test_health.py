from __future__ import annotations

from tests.api.api_harness import Api


async def test_healthz_is_ok_when_ready(api: Api) -> None:
    reply = await api.client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


async def test_healthz_is_503_when_not_ready(api: Api) -> None:
    api.ready[0] = False
    reply = await api.client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json() == {"status": "starting"}
