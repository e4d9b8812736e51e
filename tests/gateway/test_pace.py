"""Pace: work is charged once done, and debt is waited out, never refused."""

from __future__ import annotations

import pytest

from sandcat.gateway.throttle import Pace


@pytest.mark.parametrize(("cost", "wait_s"), [(99, 0.0), (100, 0.0), (101, 0.1)])
def test_a_charge_within_the_burst_needs_no_wait(cost: int, wait_s: float) -> None:
    pace = Pace(rate_per_s=10, burst=100, now=0.0)
    assert pace.charge(cost, 0.0) == pytest.approx(wait_s)


def test_debt_is_paid_back_at_the_rate_and_the_bucket_refills_to_the_burst() -> None:
    pace = Pace(rate_per_s=10, burst=100, now=0.0)
    assert pace.charge(300, 0.0) == pytest.approx(20.0)  # 200 tokens of debt at 10/s
    assert pace.charge(0, 20.0) == 0.0
    assert pace.charge(100, 1000.0) == 0.0  # refilled to 100, not beyond
    assert pace.charge(1, 1000.0) == pytest.approx(0.1)
