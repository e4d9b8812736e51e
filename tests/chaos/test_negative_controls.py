"""Negative controls: the checker catches each deliberately broken build.

The three instances are restarted with ``tests/chaos/broken.py`` (a test entry
point: the break is its argument, never configuration), one break at a time.
Every build, the unbroken ``none`` included, also suffers the same injected
failures (a rolled-back append, a commit whose reply is lost, an outbox round
published twice), which a correct server survives: ``none`` must pass the
checker, and each break must be reported under the invariant it violates. A
fresh cast (new users, new conversations) per build keeps one build's damage
out of the next one's history.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.chaos.cluster import Cluster, running_cluster
from tests.chaos.workload import Numbers, make_cast, run_scenario

pytestmark = pytest.mark.slow

#: The load runs this long with the build's injected failures.
LOAD_S = 4.0

#: Break -> the invariant the checker must report (None: the checker must pass).
CONTROLS: list[tuple[str, str | None]] = [
    ("none", None),
    ("ack-before-commit", "I1"),
    ("seq-outside-tx", "I3"),
    ("consumer-dedupe-off", "I10"),
    # Last: it drops the unique index on (sender, cid, cmid) for good.
    ("dedupe-off", "I2"),
]


@pytest.fixture(scope="module")
def control_cluster() -> Iterator[Cluster]:
    with running_cluster(3) as cluster:
        yield cluster


async def _restart(cluster: Cluster, broken: str) -> None:
    """Every instance stopped (drained, side by side), then started as ``broken``."""
    async with trio.open_nursery() as nursery:
        for instance in cluster.instances:
            nursery.start_soon(trio.to_thread.run_sync, instance.stop)
    async with trio.open_nursery() as nursery:
        for instance in cluster.instances:
            instance.entry = ["-m", "tests.chaos.broken", broken]
            nursery.start_soon(trio.to_thread.run_sync, instance.start)


@pytest.mark.parametrize(("broken", "invariant"), CONTROLS, ids=[c[0] for c in CONTROLS])
async def test_the_checker_catches_the_broken_build(
    control_cluster: Cluster, broken: str, invariant: str | None
) -> None:
    await _restart(control_cluster, broken)
    cast = await trio.to_thread.run_sync(make_cast, control_cluster, broken.replace("-", ""))

    async def load_only(numbers: Numbers) -> None:
        await trio.sleep(LOAD_S)

    if invariant is None:
        numbers = await run_scenario(
            control_cluster, cast, broken, load_only, converge_timeout_s=20
        )
        print(numbers.line())
        return
    with pytest.raises(AssertionError) as caught:
        await run_scenario(control_cluster, cast, broken, load_only, converge_timeout_s=8)
    report = str(caught.value)
    print(f"control {broken}: " + report.splitlines()[0])
    reported = {line.split(":")[0] for line in report.splitlines()[1:] if line[:1] == "I"}
    print(f"control {broken}: the checker reported {sorted(reported)}")
    assert invariant in reported, report[:3000]
