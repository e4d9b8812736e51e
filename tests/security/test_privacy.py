"""Privacy (issue 12, item 8), attacked over a real HTTP server: registration and
profile changes must not tell whether an email or phone number is taken, a
number (or address) becomes a login only once its code came back, and probing
is throttled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.api_harness import Api, build_config, open_api

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
PASSWORD = "correct horse"
EMAIL, PHONE = "ann@example.org", "+15550001111"


@pytest.fixture
async def api(tmp_path: Path) -> Any:
    async for harness in open_api(tmp_path, build_config()):
        yield harness


async def _hidden_owner(api: Api) -> None:
    """ann holds EMAIL and PHONE, and is not findable by either."""
    await api.register("ann")
    await api.confirm("ann", email=EMAIL, phone=PHONE)
    tokens = await api.login("ann")
    reply = await api.client.patch(
        ME,
        json={"find_by_email": False, "find_by_phone": False},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert reply.json()["user"]["email"] == EMAIL


def _shape(reply: Any) -> tuple[int, list[str], object, object]:
    body = reply.json()
    return reply.status_code, body.get("pending"), body["user"]["email"], body["user"]["phone"]


async def test_registration_answers_alike_for_taken_and_free_addresses(api: Api) -> None:
    await _hidden_owner(api)
    taken = await api.client.post(
        REGISTER, json={"username": "eve", "password": PASSWORD, "email": EMAIL, "phone": PHONE}
    )
    free = await api.client.post(
        REGISTER,
        json={
            "username": "eva",
            "password": PASSWORD,
            "email": "x@example.org",
            "phone": "+15550009999",
        },
    )
    print(f"register with a taken email and phone: {taken.status_code} {taken.text[:80]}")
    assert _shape(taken) == _shape(free) == (201, ["email", "phone"], None, None)
    # The owner hears of it; the prober gets no code for the address.
    assert api.mailbox.mails[-2].to == EMAIL
    assert "already belongs to your account" in api.mailbox.mails[-2].text


async def test_a_profile_change_is_no_oracle_and_is_throttled(api: Api) -> None:
    await _hidden_owner(api)
    eve = await api.user("eve")
    answers = []
    for index in range(70):
        number = PHONE if index == 0 else f"+1555123{index:04d}"
        reply = await api.client.patch(ME, json={"phone": number}, headers=eve[1])
        answers.append(reply.status_code)
    print(
        f"70 PATCH phone probes: {answers[0]} for the taken one, "
        f"{answers.count(200)} answered 200, {answers.count(429)} refused 429"
    )
    assert answers[0] == 200  # the taken number: the same answer as a free one
    # contact_codes_per_user = 5: max-1 and max are answered, max+1 waits.
    assert answers[:5] == [200] * 5
    assert set(answers[5:]) == {429}
    # Other profile changes are throttled too (profile_changes_per_user = 60).
    others = [
        (await api.client.patch(ME, json={"signature": f"s{i}"}, headers=eve[1])).status_code
        for i in range(5)
    ]
    assert others == [429] * 5
    api.clock.advance(3600)
    tokens = await api.login("eve")
    again = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await api.client.patch(ME, json={"signature": "x"}, headers=again)).status_code == 200


async def test_a_number_becomes_a_login_only_with_its_code(api: Api) -> None:
    reply = await api.client.post(
        REGISTER, json={"username": "eve", "password": PASSWORD, "phone": PHONE}
    )
    assert reply.status_code == 201
    claimed = await api.client.post(LOGIN, json={"login": PHONE, "password": PASSWORD})
    print(f"login with a number registered without its code: {claimed.status_code}")
    assert claimed.status_code == 401
    tokens = await api.login("eve")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    # Wrong codes: max_attempts (5) burn the code, the right one is then refused too.
    for _ in range(5):
        wrong = await api.client.patch(
            ME, json={"phone": PHONE, "phone_code": "000000"}, headers=headers
        )
        assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "phone_code")
    burnt = await api.client.patch(
        ME, json={"phone": PHONE, "phone_code": api.code_for(PHONE)}, headers=headers
    )
    assert burnt.status_code == 422
    asked = await api.client.patch(ME, json={"phone": PHONE}, headers=headers)
    assert asked.json()["pending"] == ["phone"]
    await api.confirm("eve", phone=PHONE)
    assert (
        await api.client.post(LOGIN, json={"login": PHONE, "password": PASSWORD})
    ).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": None}, "email"),  # an account's email cannot be removed
        ({"email_code": "123456"}, "email_code"),  # a code without its address
        ({"phone": None, "phone_code": "123456"}, "phone_code"),
        ({"phone": "+15550001111", "phone_code": 123456}, "phone_code"),
        ({"email": 7}, "email"),
        ({"email": "not an address"}, "email"),
        ({"phone": "555"}, "phone"),
    ],
)
async def test_bad_contact_changes_name_their_field_and_send_nothing(
    api: Api, body: dict[str, object], field: str
) -> None:
    eve = await api.user("eve")
    reply = await api.client.patch(ME, json=body, headers=eve[1])
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, field)
    assert api.mailbox.mails == []
    assert api.texts.texts == []


async def test_asking_for_the_number_one_already_has_sends_nothing(api: Api) -> None:
    await api.register("ann")
    await api.confirm("ann", phone=PHONE)
    tokens = await api.login("ann")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    sent = len(api.texts.texts)
    same = await api.client.patch(ME, json={"phone": "+1 555 000 1111"}, headers=headers)
    assert (same.json()["pending"], len(api.texts.texts)) == ([], sent)
    removed = await api.client.patch(ME, json={"phone": None}, headers=headers)
    assert removed.json()["user"]["phone"] is None
