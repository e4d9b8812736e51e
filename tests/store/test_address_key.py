"""Per-address limits key a client by its IPv4 address or its IPv6 /64."""

from __future__ import annotations

import pytest

from sandcat.store.ratelimit import address_key


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1", "fe80::/64"),
        ("not an address", "not an address"),
        ("", "?"),
        (None, "?"),
    ],
)
def test_the_key_of_a_client_address(ip: str | None, key: str) -> None:
    assert address_key(ip) == key


def test_the_next_64_is_another_client() -> None:
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
