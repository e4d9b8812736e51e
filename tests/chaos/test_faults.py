"""The fault suite at CI sizes: F11, F7, F4, F5, F9, F12, F13, F15 and F14 (README.md).

One three-instance cluster whose PostgreSQL, Redis and client links all pass
through fault proxies; the cast (``workload.py``) plus one more device of user
0 on its own client proxy (F12's victim). The scenarios run in order, each
under load, and each ends with the checker over the whole history so far.
Each prints its numbers (``-s``): attempts, acked, refused (fail), indeterminate
(info), the time to converge, and its own measurements. ``nox -s faults`` runs
this module at the reference's sizes (``faults.FULL``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos import faults
from tests.chaos.cluster import Cluster, running_cluster
from tests.chaos.device import Device
from tests.chaos.workload import Cast, make_cast, run_scenario

pytestmark = pytest.mark.slow

SIZES = faults.sizes()


def ws_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/ws"


@pytest.fixture(scope="module")
def fault_cluster() -> Iterator[Cluster]:
    with running_cluster(3, proxied=True, extra_toml=faults.FAULT_TOML) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def fault_cast(fault_cluster: Cluster) -> Cast:
    cast = make_cast(fault_cluster, faults.CAST_PREFIX)
    proxied = [ws_url(fault_cluster.proxy(n, "ws").port) for n in range(3)]
    for device in cast.devices:
        device.urls = proxied
    first = cast.devices[0]
    solo = Device(
        user=first.user,
        name="d2",
        token=faults.login(fault_cluster, 0, "d2"),
        login=f"{faults.CAST_PREFIX}0",
        urls=[ws_url(fault_cluster.proxy(0, "solo").port)],
        home=0,
        history=cast.history,
        foreign_cid=first.foreign_cid,
        seed=99,
    )
    cast.devices.append(solo)
    cast.history.devices[first.user] = ("d0", "d1", "d2")
    return cast


async def test_f11_reset_after_send(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f11_reset_after_send(fault_cluster, fault_cast, SIZES.f11_resets)
    print((await run_scenario(fault_cluster, fault_cast, "F11", fault)).line())


async def test_f7_redis_link_blackholed(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f7_redis_blackhole(fault_cluster, fault_cast, SIZES.f7_blackhole_s)
    print((await run_scenario(fault_cluster, fault_cast, "F7", fault)).line())


async def test_f4_postgres_link_blackholed(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f4_postgres_blackhole(fault_cluster, fault_cast, SIZES.f4_blackhole_s)
    print((await run_scenario(fault_cluster, fault_cast, "F4", fault)).line())


async def test_f5_slow_postgres(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f5_slow_postgres(fault_cluster, fault_cast, SIZES.f5_latency_s)
    print((await run_scenario(fault_cluster, fault_cast, "F5", fault)).line())


async def test_f9_kafka_paused(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f9_pause_kafka(fault_cluster, fault_cast, SIZES.f9_pause_s)
    print((await run_scenario(fault_cluster, fault_cast, "F9", fault)).line())


async def test_f12_half_open_client(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f12_half_open(fault_cluster, fault_cast, SIZES.f12_halfopen_s)
    print((await run_scenario(fault_cluster, fault_cast, "F12", fault)).line())


async def test_f13_slow_consumer(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f13_slow_consumer(fault_cluster, fault_cast, SIZES.f13_stall_s)
    print((await run_scenario(fault_cluster, fault_cast, "F13", fault)).line())


async def test_f15_combined_schedule(fault_cluster: Cluster, fault_cast: Cast) -> None:
    numbers = await faults.run_f15(fault_cluster, fault_cast, faults.f15_seed(), SIZES.f15_s)
    print(numbers.line())


async def test_f14_mass_reconnect(fault_cluster: Cluster, fault_cast: Cast) -> None:
    fault = faults.f14_mass_reconnect(fault_cluster, fault_cast, SIZES.f14_clients)
    print((await run_scenario(fault_cluster, fault_cast, "F14", fault)).line())
