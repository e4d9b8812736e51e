"""Admission at accept: the listener's socket budget and the per-address cap."""

from __future__ import annotations

import resource

import pytest

from sandcat.gateway.admission import REFUSING, Admission, Verdict, descriptor_budget
from sandcat.proxies import TrustedProxies


def test_sockets_over_the_budget_are_refused_then_dropped() -> None:
    admission = Admission(max_open=2, per_address=1000)
    assert [admission.admit("a") for _ in range(2)] == [Verdict.SERVE] * 2
    assert [admission.admit("a") for _ in range(REFUSING)] == [Verdict.REFUSE] * REFUSING
    assert admission.admit("a") is Verdict.DROP
    admission.release("a", authenticated=False)
    assert admission.admit("a") is Verdict.REFUSE


@pytest.mark.parametrize(("held", "verdict"), [(2, Verdict.SERVE), (3, Verdict.DROP)])
def test_an_address_holds_at_most_per_address_pending_sockets(held: int, verdict: Verdict) -> None:
    admission = Admission(max_open=100, per_address=3)
    for _ in range(held):
        assert admission.admit("a") is Verdict.SERVE
    assert admission.admit("a") is verdict
    assert admission.admit("b") is Verdict.SERVE


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    admission = Admission(max_open=100, per_address=2)
    assert admission.admit("2001:db8:1:2::1") is Verdict.SERVE
    assert admission.admit("2001:db8:1:2:ffff::9") is Verdict.SERVE
    assert admission.admit("2001:db8:1:2::77") is Verdict.DROP  # same /64, third socket
    assert admission.admit("2001:db8:1:3::1") is Verdict.SERVE  # the next /64
    admission.release("2001:db8:1:2::1", authenticated=False)
    assert admission.admit("2001:db8:1:2:abcd::1") is Verdict.SERVE


def test_authenticated_sockets_leave_the_address_count() -> None:
    admission = Admission(max_open=100, per_address=1)
    assert admission.admit("a") is Verdict.SERVE
    admission.authenticated("a")
    assert admission.admit("a") is Verdict.SERVE
    admission.release("a", authenticated=True)
    admission.release("a", authenticated=False)
    assert admission.open == 0
    assert admission.admit("a") is Verdict.SERVE


def test_exempt_addresses_are_not_capped() -> None:
    admission = Admission(max_open=100, per_address=1, exempt=lambda address: address == "proxy")
    assert [admission.admit("proxy") for _ in range(5)] == [Verdict.SERVE] * 5
    admission.admit("a")
    assert admission.admit("a") is Verdict.DROP


def test_the_budget_leaves_the_reserve_of_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert descriptor_budget(10, 256) == 10
    assert (
        descriptor_budget(10**9, 256)
        == resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 256 - REFUSING
    )
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= soft


@pytest.mark.parametrize(
    ("entries", "peer", "trusted"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),
        (["10.0.0.0/8"], "192.0.2.1", False),
        (["10.0.0.0/8"], "?", False),
        ([], "10.1.2.3", False),
    ],
)
def test_trusted_proxy_peers_are_recognised(entries: list[str], peer: str, trusted: bool) -> None:
    assert TrustedProxies(entries).trusts_peer(peer) is trusted
