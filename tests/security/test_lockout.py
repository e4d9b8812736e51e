"""Login lockout (issue 12, item 6), attacked over a real HTTP server.

Failures count per account whatever login names it (username, email, any
spelling of its phone number), each failure past ``login_failures`` doubles
the lock up to ``login_lockout_max_s``, and the per-address limit counts
failures only: many people logging in behind one address lock nobody out.
"""

from __future__ import annotations

from pathlib import Path

from sandcat.config import AuthConfig
from tests.api.api_harness import Api, build_config, open_api

LOGIN = "/api/v1/auth/login"
PASSWORD = "correct horse"
PHONE = "+15551234567"
#: Seven spellings of one number; login normalises each to PHONE.
SPELLINGS = [
    PHONE,
    "+1 555 123 4567",
    "+1-555-123-4567",
    "+1 (555) 123-4567",
    "0015551234567",
    "+1.555.123.4567",
    "00 1 555 123 4567",
]


async def _register(api: Api, username: str, **extra: str) -> None:
    reply = await api.client.post(
        "/api/v1/auth/register", json={"username": username, "password": PASSWORD, **extra}
    )
    assert reply.status_code == 201, reply.text


async def _attempt(api: Api, login: str, password: str = "wrong horse") -> tuple[int, str | None]:
    reply = await api.client.post(LOGIN, json={"login": login, "password": password})
    return reply.status_code, reply.headers.get("Retry-After")


async def test_every_spelling_of_a_phone_number_counts_against_one_account(
    tmp_path: Path,
) -> None:
    async for api in open_api(tmp_path, build_config()):
        await _register(api, "ann", phone=PHONE)
        await api.confirm("ann", phone=PHONE)  # a number is a login once confirmed
        answers = [await _attempt(api, spelling) for spelling in SPELLINGS for _ in range(5)]
        guesses = sum(status == 401 for status, _ in answers)
        print(f"wrong passwords checked over {len(SPELLINGS)} spellings: {guesses} of 35")
        assert guesses == 5
        assert answers[5] == (429, "30")
        # The account is locked under every login, the right password included.
        assert (await _attempt(api, "ann", PASSWORD))[0] == 429
        api.clock.advance(30)
        assert (await _attempt(api, "+1 555 123 4567", PASSWORD))[0] == 200


async def test_each_failure_past_the_limit_doubles_the_lock_up_to_15_minutes(
    tmp_path: Path,
) -> None:
    async for api in open_api(tmp_path, build_config()):
        await _register(api, "ann")
        assert [await _attempt(api, "ann") for _ in range(5)] == [(401, None)] * 5
        locks = []
        for _ in range(7):
            status, retry_after = await _attempt(api, "ann")
            assert status == 429
            assert retry_after is not None
            locks.append(int(retry_after))
            api.clock.advance(int(retry_after) - 1)
            assert (await _attempt(api, "ann", PASSWORD))[0] == 429  # one second short
            api.clock.advance(1)
            assert await _attempt(api, "ann") == (401, None)
        assert locks == [30, 60, 120, 240, 480, 900, 900]
        # A successful login forgets the failures.
        api.clock.advance(900)
        assert (await _attempt(api, "ann", PASSWORD))[0] == 200
        assert [await _attempt(api, "ann") for _ in range(4)] == [(401, None)] * 4


async def test_unknown_logins_are_locked_under_their_normal_form(tmp_path: Path) -> None:
    async for api in open_api(tmp_path, build_config()):
        answers = [(await _attempt(api, spelling))[0] for spelling in SPELLINGS]
        assert answers == [401] * 5 + [429] * 2
        assert (await _attempt(api, "Ghost@Example.org"))[0] == 401


async def test_only_failures_count_per_address(tmp_path: Path) -> None:
    config = build_config(auth=AuthConfig(login_failures_per_ip=5, login_failures=100))
    async for api in open_api(tmp_path, config):
        await _register(api, "ann")
        await _register(api, "bob")
        # Successful logins from one address (a proxy, an office) are not limited.
        for _ in range(6):
            assert (await _attempt(api, "ann", PASSWORD))[0] == 200
        assert (await _attempt(api, "bob", PASSWORD))[0] == 200
        # Failures are: 4 (max-1) and 5 (max) are answered, then the address waits.
        assert [(await _attempt(api, f"guess{i}"))[0] for i in range(5)] == [401] * 5
        status, retry_after = await _attempt(api, "bob", PASSWORD)
        assert status == 429
        assert retry_after == "900"


def test_the_old_per_address_setting_name_is_still_read() -> None:
    from sandcat.config import load_config

    config = load_config(env={}, overrides={"auth.login_attempts_per_ip": 7})
    assert config.auth.login_failures_per_ip == 7
    both = load_config(
        env={}, overrides={"auth.login_attempts_per_ip": 7, "auth.login_failures_per_ip": 9}
    )
    assert both.auth.login_failures_per_ip == 9
