"""Routing across two instances on PostgreSQL, Kafka (tansu) and Redis (Valkey):
an event reaches the instance holding its recipient, and an instance holding no
recipient reads nothing of it (docs/cluster-routing.md).

Alice is on A, Bob on B, Cy on A. Alice -> Bob reaches Bob through B's slot;
Alice -> Cy concerns A only: B's consumer reads none of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from sandcat.client import HttpApi
from tests.client.cast import Cast
from tests.cluster.conftest import Instance, cluster_settings, instance_pair

#: The route table is trusted 2 x this after it started (short here; 30 s by default).
REFRESH_S = 0.5


@pytest.fixture
async def routed(
    tmp_path: Path,
    nursery: trio.Nursery,
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    redis_url: str,
    redis_channel: str,
) -> AsyncIterator[tuple[Instance, Instance]]:
    settings = {
        **cluster_settings(postgres_url, kafka_bootstrap, kafka_topic),
        "backends.redis_url": redis_url,
        "backends.redis_channel": redis_channel,
        "backends.kafka_delivery_slots": 4,
        "signals.presence_refresh_s": REFRESH_S,
    }
    async with instance_pair(nursery, tmp_path, settings) as pair:
        yield pair


async def counters(instance: Instance, family: str) -> dict[str, float]:
    """``family``'s samples on ``instance``'s /metrics, by their outcome label."""
    async with httpx.AsyncClient(base_url=instance.http_url) as http:
        text = (await http.get("/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(family + "{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('outcome="')[1].split('"')[0]] = float(value)
    return found


async def test_events_reach_only_the_instances_holding_their_recipients(
    routed: tuple[Instance, Instance],
) -> None:
    a, b = routed
    async with HttpApi(a.http_url) as api:
        cast = Cast(api, http_url=a.http_url, ws_url=a.ws_url)
        with trio.fail_after(90):
            alice, bob, cy = [await cast.person(n) for n in ("alice", "bob", "cy")]
            to_bob = await cast.befriend(alice, bob)
            to_cy = await cast.befriend(alice, cy)
            async with (
                cast.client(alice, "laptop", ws_url=a.ws_url) as laptop,
                cast.client(bob, "desk", ws_url=b.ws_url) as desk,
                cast.client(cy, "tablet", ws_url=a.ws_url) as tablet,
            ):
                # The first lookup starts the route table's epoch; until it settles
                # every event goes to every slot. Wait that out.
                await laptop.session.send(to_bob, text="warm-up")
                async for msg in desk.session.messages():
                    assert msg.cid == to_bob
                    break
                await trio.sleep(2 * REFRESH_S + 0.5)
                before = await counters(b, "sandcat_bus_events_total")

                for n in range(5):
                    await laptop.session.send(to_cy, text=f"cy {n}")
                for n in range(5):
                    await laptop.session.send(to_bob, text=f"bob {n}")
                got: list[str] = []
                async for msg in desk.session.messages():
                    assert msg.cid == to_bob
                    got.append(msg.body["text"])  # type: ignore[index]
                    if len(got) == 5:
                        break
                assert got == [f"bob {n}" for n in range(5)]
                seen_cy: list[str] = []
                async for msg in tablet.session.messages():
                    seen_cy.append(msg.body["text"])  # type: ignore[index]
                    if len(seen_cy) == 5:
                        break
                after = await counters(b, "sandcat_bus_events_total")
                read = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                # B read Bob's five and nothing of Alice -> Cy (it holds neither).
                assert sum(read.values()) == 5, read
                assert read.get("delivered") == 5, read
                routes = await counters(a, "sandcat_route_lookups_total")
                assert routes.get("routed", 0) >= 1, routes
