"""The per-connection token bucket and its abuse strikes."""

from __future__ import annotations

from sandcat.gateway.throttle import Throttle


def test_burst_is_allowed_then_refused_with_a_wait() -> None:
    throttle = Throttle(rate_per_s=10, burst=3, strikes=5, now=0.0)
    assert all(throttle.admit(0.0).allowed for _ in range(3))
    refused = throttle.admit(0.0)
    assert not refused.allowed
    assert refused.retry_after_ms == 100
    assert not refused.abusive


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    throttle = Throttle(rate_per_s=10, burst=2, strikes=5, now=0.0)
    throttle.admit(0.0)
    throttle.admit(0.0)
    assert throttle.admit(0.1).allowed
    assert not throttle.admit(0.1).allowed
    # A long pause refills only up to the burst.
    assert [throttle.admit(100.0).allowed for _ in range(3)] == [True, True, False]


def test_ignoring_refusals_becomes_abuse_and_compliance_resets_it() -> None:
    throttle = Throttle(rate_per_s=1, burst=1, strikes=2, now=0.0)
    assert throttle.admit(0.0).allowed
    verdicts = [throttle.admit(0.0) for _ in range(3)]
    assert [v.abusive for v in verdicts] == [False, False, True]
    assert throttle.admit(5.0).allowed
    assert not throttle.admit(5.0).abusive
