"""Session ends (4007) also go to the revocation log; other closes do not; a log that
refuses, or a full queue, drops the entry and counts it without blocking anyone."""

from __future__ import annotations

import pytest
import trio

from sandcat.bus.broadcast import LocalBroadcast
from sandcat.errors import StoreUnavailable
from sandcat.gateway.beacon import Fanout
from sandcat.store.revocations import LocalRevocations, Revoked
from tests.gateway.test_fanout import Recorder


class RefusingLog:
    async def revoke(self, user: str, session: str | None) -> None:
        raise StoreUnavailable("redis down")


async def test_session_ends_are_logged_and_other_closes_are_not(nursery: trio.Nursery) -> None:
    log = LocalRevocations()
    await log.poll()
    fanout = Fanout(LocalBroadcast(), instance="a", revocations=log)
    await nursery.start(fanout.run, Recorder())
    fanout.end_sessions("u1", session="s1", code=4007, reason="logged out")
    fanout.end_sessions("u2", session=None, code=4001, reason="replaced")
    fanout.end_sessions("u3", session=None, code=4007, reason="disabled")
    revoked: list[Revoked] = []
    with trio.fail_after(5):
        while len(revoked) < 2:
            revoked += (await log.poll()).revoked
            await trio.sleep(0.01)
    assert revoked == [Revoked("u1", "s1"), Revoked("u3", None)]


async def test_a_refusing_log_is_counted_and_logged(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    fanout = Fanout(LocalBroadcast(), instance="a", revocations=RefusingLog())
    await nursery.start(fanout.run, Recorder())
    fanout.end_sessions("u1", session="s1", code=4007, reason="logged out")
    with trio.fail_after(5):
        while fanout.dropped < 1:  # noqa: ASYNC110
            await trio.sleep(0.01)
    assert "revocation not logged: redis down" in caplog.text


def test_a_full_revocation_queue_drops_without_waiting(caplog: pytest.LogCaptureFixture) -> None:
    fanout = Fanout(LocalBroadcast(), instance="a", revocations=LocalRevocations())
    for _ in range(1100):
        fanout.end_sessions("u1", session="s", code=4007, reason="")
    # Both queues (broadcast and log) hold 1024; the rest of each is dropped.
    assert fanout.dropped == 2 * (1100 - 1024)
    assert "revocation queue full" in caplog.text
