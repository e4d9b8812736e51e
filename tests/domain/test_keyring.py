"""The token key ring: which key signs, which keys are accepted, around a rotation."""

from __future__ import annotations

import jwt
import pytest

from sandcat.domain.file_links import FileLinks
from sandcat.domain.keyring import KeyRing, SigningKey, check_configured
from sandcat.domain.tokens import Tokens
from sandcat.errors import ConfigError, Forbidden, Unauthorized

TTL_S = 900
#: When the second key becomes active.
SWITCH = 1_700_000_000_000
OLD = SigningKey("1", b"o" * 32, 0)
NEW = SigningKey("2", b"n" * 32, SWITCH)


def ring(now: list[int], *keys: SigningKey) -> KeyRing:
    return KeyRing(keys or (OLD, NEW), access_ttl_s=TTL_S, clock=lambda: now[0])


@pytest.mark.parametrize(("at", "signer"), [(SWITCH - 1, "1"), (SWITCH, "2"), (SWITCH + 1, "2")])
def test_the_newest_active_key_signs(at: int, signer: str) -> None:
    assert ring([at]).current().kid == signer


@pytest.mark.parametrize(
    ("at", "old_accepted"),
    [
        (SWITCH - 1, True),
        (SWITCH + TTL_S * 1000 - 1, True),
        (SWITCH + TTL_S * 1000, False),
        (SWITCH + TTL_S * 1000 + 1, False),
    ],
)
def test_a_replaced_key_is_accepted_for_one_token_lifetime(at: int, old_accepted: bool) -> None:
    keys = ring([at])
    assert (keys.find("1") is not None) == old_accepted
    assert keys.find("2") == NEW  # a key not active yet is accepted already


def test_a_token_without_kid_is_checked_with_the_oldest_key() -> None:
    now = [SWITCH - 10_000]
    legacy = Tokens(OLD.secret, access_ttl_s=TTL_S, clock=lambda: now[0])
    token = legacy.issue_access(user="u1", device="d1", session="s1").token
    assert "kid" not in jwt.get_unverified_header(token)
    assert Tokens(ring(now), access_ttl_s=TTL_S, clock=lambda: now[0]).decode_access(token)


def test_tokens_name_their_key_and_survive_the_rotation_until_they_expire() -> None:
    now = [SWITCH - 10_000]
    tokens = Tokens(ring(now), access_ttl_s=TTL_S, clock=lambda: now[0])
    before = tokens.issue_access(user="u1", device="d1", session="s1").token
    assert jwt.get_unverified_header(before)["kid"] == "1"
    now[0] = SWITCH
    after = tokens.issue_access(user="u1", device="d1", session="s1").token
    assert jwt.get_unverified_header(after)["kid"] == "2"
    assert tokens.decode_access(before).user == "u1"
    assert tokens.decode_access(after).user == "u1"


@pytest.mark.parametrize("kid", ["3", ""])
def test_a_token_naming_an_unknown_key_is_refused(kid: str) -> None:
    claims = {"sub": "u1", "dev": "d1", "sid": "s1", "iat": SWITCH // 1000, "exp": SWITCH // 1000}
    token = jwt.encode(claims, NEW.secret, algorithm="HS256", headers={"kid": kid})
    tokens = Tokens(ring([SWITCH - 1]), access_ttl_s=TTL_S, clock=lambda: SWITCH - 1)
    with pytest.raises(Unauthorized, match="invalid access token"):
        tokens.decode_access(token)


def test_a_token_signed_with_another_secret_under_a_known_kid_is_refused() -> None:
    claims = {"sub": "u1", "dev": "d1", "sid": "s1", "iat": SWITCH // 1000, "exp": SWITCH // 1000}
    token = jwt.encode(claims, b"x" * 32, algorithm="HS256", headers={"kid": "1"})
    with pytest.raises(Unauthorized):
        Tokens(ring([SWITCH - 1]), access_ttl_s=TTL_S, clock=lambda: SWITCH - 1).decode_access(
            token
        )


def test_file_links_signed_before_a_rotation_verify_while_the_old_key_is_accepted() -> None:
    now = [SWITCH - 1000]
    links = FileLinks(ring(now), ttl_s=7 * 86400, clock=lambda: now[0])
    signed = links.sign("f1", "content")
    expires, sig = signed.path.split("?expires=")[1].split("&sig=")
    now[0] = SWITCH + 1000
    links.verify("f1", "content", expires, sig)
    assert links.sign("f1", "content").path != signed.path  # the new key signs now
    now[0] = SWITCH + TTL_S * 1000
    with pytest.raises(Forbidden, match="bad signed link"):
        links.verify("f1", "content", expires, sig)


def test_a_ring_needs_long_keys() -> None:
    with pytest.raises(ValueError, match="a key"):
        KeyRing([], access_ttl_s=TTL_S, clock=lambda: 0)
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing([SigningKey("1", b"short", 0)], access_ttl_s=TTL_S, clock=lambda: 0)


def test_a_configured_secret_must_be_long() -> None:
    check_configured("")
    check_configured("k" * 32)
    with pytest.raises(ConfigError, match=r"auth\.token_secret"):
        check_configured("k" * 31)


async def test_a_fixed_ring_has_nothing_to_refresh() -> None:
    keys = KeyRing.fixed(b"f" * 32, clock=lambda: 0)
    await keys.refresh()
    assert keys.current().secret == b"f" * 32
