from __future__ import annotations

import jwt
import pytest

from sandcat.domain.tokens import Tokens
from sandcat.errors import Unauthorized

SECRET = b"k" * 32
NOW = 1_700_000_000_000


def make(now: list[int]) -> Tokens:
    return Tokens(SECRET, access_ttl_s=900, clock=lambda: now[0])


def test_access_token_round_trips_its_claims() -> None:
    tokens = make([NOW])
    issued = tokens.issue_access(user="u1", device="d1", session="s1")
    claims = tokens.decode_access(issued.token)
    assert (claims.user, claims.device, claims.session) == ("u1", "d1", "s1")
    assert claims.expires_at_ms == issued.expires_at_ms == NOW + 900_000
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


def test_expired_access_token_is_refused() -> None:
    now = [NOW]
    tokens = make(now)
    token = tokens.issue_access(user="u1", device="d1", session="s1").token
    now[0] += 900_000
    with pytest.raises(Unauthorized):
        tokens.decode_access(token)


def test_token_issued_in_the_future_is_refused() -> None:
    now = [NOW + 3_600_000]
    token = make(now).issue_access(user="u1", device="d1", session="s1").token
    with pytest.raises(Unauthorized):
        make([NOW]).decode_access(token)


def test_other_secret_is_refused() -> None:
    token = Tokens(b"z" * 32, access_ttl_s=900, clock=lambda: NOW).issue_access(
        user="u1", device="d1", session="s1"
    )
    with pytest.raises(Unauthorized):
        make([NOW]).decode_access(token.token)


@pytest.mark.parametrize("algorithm", ["none", "HS512"])
def test_only_hs256_is_accepted(algorithm: str) -> None:
    claims = {"sub": "u1", "dev": "d1", "sid": "s1", "iat": NOW // 1000, "exp": NOW // 1000 + 60}
    key = None if algorithm == "none" else SECRET * 2
    token = jwt.encode(claims, key, algorithm=algorithm)
    with pytest.raises(Unauthorized):
        make([NOW]).decode_access(token)


@pytest.mark.parametrize("missing", ["sub", "dev", "sid", "iat", "exp"])
def test_missing_claim_is_refused(missing: str) -> None:
    claims = {"sub": "u1", "dev": "d1", "sid": "s1", "iat": NOW // 1000, "exp": NOW // 1000 + 60}
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        make([NOW]).decode_access(token)


def test_malformed_claims_are_refused() -> None:
    claims = {"sub": "u:1", "dev": "d1", "sid": "s1", "iat": NOW // 1000, "exp": NOW // 1000 + 60}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        make([NOW]).decode_access(token)
    with pytest.raises(Unauthorized):
        make([NOW]).decode_access("garbage")


def test_short_secret_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Tokens(b"short", access_ttl_s=900, clock=lambda: NOW)


def test_refresh_tokens_are_random_and_only_hashes_are_kept() -> None:
    first, second = Tokens.new_refresh(), Tokens.new_refresh()
    assert first != second
    assert len(first) >= 43  # 256 bits
    digest = Tokens.hash_refresh(first)
    assert len(digest) == 64
    assert first not in digest
