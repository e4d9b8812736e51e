from __future__ import annotations

from argon2 import PasswordHasher as Argon2

from sandcat.config import AuthConfig
from sandcat.domain.passwords import PasswordHasher


async def test_hash_is_argon2id_with_the_configured_cost() -> None:
    hasher = PasswordHasher.from_config(AuthConfig())
    encoded = await hasher.hash("correct horse")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify(encoded, "correct horse")
    assert not await hasher.verify(encoded, "Correct horse")
    assert not hasher.needs_rehash(encoded)


async def test_unknown_user_never_verifies() -> None:
    hasher = PasswordHasher.from_config(AuthConfig())
    assert not await hasher.verify(None, "anything at all")


async def test_weaker_or_garbage_hashes_need_rehash() -> None:
    hasher = PasswordHasher.from_config(AuthConfig(argon2_time_cost=3))
    weaker = Argon2(time_cost=2, memory_cost=19456, parallelism=1).hash("pw")
    assert hasher.needs_rehash(weaker)
    assert hasher.needs_rehash("not a hash")
    assert not await hasher.verify("not a hash", "pw")
