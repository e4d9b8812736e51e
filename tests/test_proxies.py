"""Which address a request comes from behind trusted proxies (sandcat/proxies.py)."""

from __future__ import annotations

import pytest

from sandcat.config import load_config
from sandcat.errors import ConfigError
from sandcat.proxies import MAX_HOPS, TrustedProxies

NGINX = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])


def xff(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"X-Forwarded-For", value.encode())]


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # An untrusted peer: its headers are ignored whatever they say.
        ("192.0.2.9", xff("203.0.113.1"), "192.0.2.9"),
        ("192.0.2.9", [(b"forwarded", b"for=203.0.113.1")], "192.0.2.9"),
        # A trusted peer: the rightmost entry that is not itself trusted.
        ("127.0.0.1", xff("203.0.113.1"), "203.0.113.1"),
        ("127.0.0.1", xff("198.51.100.5, 203.0.113.1"), "203.0.113.1"),
        ("127.0.0.1", xff("198.51.100.5, 203.0.113.1, 10.1.2.3"), "203.0.113.1"),
        ("127.0.0.1", xff("198.51.100.5") + xff("203.0.113.1, 10.0.0.2"), "203.0.113.1"),
        # Every hop trusted: the leftmost one.
        ("127.0.0.1", xff("10.0.0.7, 10.0.0.2"), "10.0.0.7"),
        # No header: the proxy itself.
        ("127.0.0.1", [], "127.0.0.1"),
        # Ports and brackets, IPv4-mapped peers.
        ("127.0.0.1", xff("203.0.113.1:5555"), "203.0.113.1"),
        ("127.0.0.1", xff("[2001:db8::1]:443"), "2001:db8::1"),
        ("127.0.0.1", xff("2001:db8::1"), "2001:db8::1"),
        ("::ffff:127.0.0.1", xff("203.0.113.1"), "203.0.113.1"),
        # Garbage ends the walk at the hop that reported it.
        ("127.0.0.1", xff("203.0.113.1, unknown"), "127.0.0.1"),
        ("127.0.0.1", xff("unknown, 10.0.0.2"), "10.0.0.2"),
        # RFC 7239, used only without X-Forwarded-For.
        (
            "127.0.0.1",
            [(b"forwarded", b'for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"')],
            "2001:db8::17",
        ),
        ("127.0.0.1", [(b"forwarded", b"proto=http;for=192.0.2.60")], "192.0.2.60"),
        ("127.0.0.1", [(b"forwarded", b"for=_hidden")], "127.0.0.1"),
        ("127.0.0.1", [(b"forwarded", b"for=192.0.2.60"), *xff("203.0.113.1")], "203.0.113.1"),
        # A peer that is no address at all (a Unix socket) is taken as it is.
        ("?", xff("203.0.113.1"), "?"),
    ],
)
def test_the_client_address(peer: str, headers: list[tuple[bytes, bytes]], client: str) -> None:
    assert NGINX.client(peer, headers) == client


def test_nothing_trusted_by_default() -> None:
    assert TrustedProxies().client("127.0.0.1", xff("203.0.113.1")) == "127.0.0.1"
    assert load_config(env={}).server.trusted_proxies == ()


def test_a_long_chain_is_read_from_the_right_only_so_far() -> None:
    trusted = [f"10.0.0.{n}" for n in range(1, MAX_HOPS + 2)]
    proxies = TrustedProxies(["127.0.0.1", *trusted])
    chain = ", ".join(["203.0.113.1", *trusted])
    # 34 entries: the last MAX_HOPS (10.0.0.2 ... 10.0.0.33) are all trusted.
    assert proxies.client("127.0.0.1", xff(chain)) == "10.0.0.2"


def test_the_setting_from_the_environment_and_toml() -> None:
    env = {"SANDCAT_TRUSTED_PROXIES": " 10.0.0.0/8 ,127.0.0.1,, ::1"}
    assert load_config(env=env).server.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")
    listed = load_config(overrides={"server.trusted_proxies": ["172.16.0.0/12"]})
    assert listed.server.trusted_proxies == ("172.16.0.0/12",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("10.0.0.0/8, proxy.local", "'proxy.local' is not an address or a CIDR network"),
        (["10.0.0.1", 7], "must be a list of strings"),
        (7, "must be a list of strings or a comma-separated string"),
    ],
)
def test_a_bad_entry_names_the_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies") as caught:
        load_config(overrides={"server.trusted_proxies": raw})
    assert message in str(caught.value)
