"""Verification codes, registration rules, login limits, sessions, passwords,
profiles, account disabling and search, over a real HTTP server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sandcat.config import AuthConfig
from tests.api.api_harness import Api, build_config, open_api

REGISTER = "/api/v1/auth/register"
CODES = "/api/v1/auth/codes"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
SESSIONS = "/api/v1/sessions"
PASSWORD = "correct horse"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def code_in(api: Api, email: str) -> str:
    mail = [m for m in api.mailbox.mails if m.to == email][-1]
    match = re.search(r"\b([0-9]{6})\b", mail.text)
    assert match is not None, mail.text
    assert match.group(1) in mail.html
    return match.group(1)


@pytest.fixture
async def verifying(tmp_path: Path) -> AsyncIterator[Api]:
    config = build_config(auth=AuthConfig(email_verification=True, codes_per_ip=100))
    async for api in open_api(tmp_path, config):
        yield api


# -- verification codes and registration ---------------------------------------------


async def test_register_with_an_emailed_code(verifying: Api) -> None:
    api = verifying
    reply = await api.client.post(CODES, json={"email": " Ann@Example.com", "purpose": "register"})
    assert (reply.status_code, reply.json()) == (202, {"status": "accepted"})
    code = code_in(api, "ann@example.com")
    assert api.mailbox.mails[0].subject
    body = {"username": "ann", "password": PASSWORD, "email": "ann@example.com"}
    missing = await api.client.post(REGISTER, json=body)
    assert (missing.status_code, missing.json()["error"]["field"]) == (422, "code")
    wrong = await api.client.post(REGISTER, json={**body, "code": "000000"})
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "code")
    reply = await api.client.post(REGISTER, json={**body, "code": code})
    assert reply.status_code == 201, reply.text
    # Single use.
    again = await api.client.post(REGISTER, json={**body, "username": "ann2", "code": code})
    assert again.status_code == 422
    no_email = await api.client.post(REGISTER, json={"username": "bo", "password": PASSWORD})
    assert no_email.status_code == 422


async def test_a_code_expires_after_its_ttl(verifying: Api) -> None:
    api = verifying
    await api.client.post(CODES, json={"email": "ann@example.com", "purpose": "register"})
    code = code_in(api, "ann@example.com")
    # Asking for another address's code does not extend this one (the original's
    # whole-hash EXPIRE did).
    api.clock.advance(200)
    await api.client.post(CODES, json={"email": "bob@example.com", "purpose": "register"})
    api.clock.advance(101)
    body = {"username": "ann", "password": PASSWORD, "email": "ann@example.com", "code": code}
    assert (await api.client.post(REGISTER, json=body)).status_code == 422


async def test_wrong_guesses_burn_the_code(verifying: Api) -> None:
    api = verifying
    await api.client.post(CODES, json={"email": "ann@example.com", "purpose": "register"})
    code = code_in(api, "ann@example.com")
    body = {"username": "ann", "password": PASSWORD, "email": "ann@example.com"}
    for guess in ("111111", "222222", "333333", "444444", "555555"):
        if guess != code:
            await api.client.post(REGISTER, json={**body, "code": guess})
    assert (await api.client.post(REGISTER, json={**body, "code": code})).status_code == 422


async def test_the_code_answer_does_not_reveal_registration(verifying: Api) -> None:
    api = verifying
    await api.client.post(CODES, json={"email": "ann@example.com", "purpose": "register"})
    body = {"username": "ann", "password": PASSWORD, "email": "ann@example.com"}
    await api.client.post(REGISTER, json={**body, "code": code_in(api, "ann@example.com")})
    sent = len(api.mailbox.mails)
    answers = []
    for email, purpose in (
        ("ann@example.com", "register"),  # taken: no mail
        ("nobody@example.com", "reset"),  # unknown: no mail
        ("new@example.com", "register"),  # mail
        ("ann@example.com", "reset"),  # mail
    ):
        reply = await api.client.post(CODES, json={"email": email, "purpose": purpose})
        answers.append((reply.status_code, reply.json()))
    assert answers == [(202, {"status": "accepted"})] * 4
    assert [m.to for m in api.mailbox.mails[sent:]] == ["new@example.com", "ann@example.com"]


async def test_codes_are_throttled_per_email_and_per_address(tmp_path: Path) -> None:
    config = build_config(auth=AuthConfig(codes_per_email=2, codes_per_ip=3, code_window_s=60))
    async for api in open_api(tmp_path, config):
        body = {"email": "a@example.com", "purpose": "register"}
        assert [(await api.client.post(CODES, json=body)).status_code for _ in range(3)] == [
            202,
            202,
            429,
        ]
        other = {"email": "b@example.com", "purpose": "register"}
        assert (await api.client.post(CODES, json=other)).status_code == 202
        limited = await api.client.post(CODES, json={**other, "email": "c@example.com"})
        assert limited.status_code == 429
        assert limited.json()["error"]["retry_after_ms"] > 0
        assert int(limited.headers["Retry-After"]) >= 1
        api.clock.advance(61)
        assert (await api.client.post(CODES, json=body)).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "purpose": "register"}, "email"),
        ({"email": "a@example.com", "purpose": "login"}, "purpose"),
        ({"purpose": "register"}, "email"),
        ({"email": "a@example.com"}, "purpose"),
    ],
)
async def test_bad_code_requests_are_422(api: Api, body: dict[str, str], field: str) -> None:
    reply = await api.client.post(CODES, json=body)
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, field)


async def test_usernames_are_case_insensitive_and_phones_normalised_and_unique(api: Api) -> None:
    reply = await api.client.post(
        REGISTER, json={"username": "Alice", "password": PASSWORD, "phone": "+1 (555) 010-2030"}
    )
    assert reply.status_code == 201, reply.text
    user = reply.json()["user"]
    # The number is added with the code texted to it (normalised).
    assert (user["username"], user["display_name"], user["phone"]) == ("alice", "Alice", None)
    await api.confirm("alice", phone="+15550102030")
    taken = await api.client.post(REGISTER, json={"username": "ALICE", "password": PASSWORD})
    assert (taken.status_code, taken.json()["error"]["field"]) == (409, "username")
    bad = await api.client.post(
        REGISTER, json={"username": "bob", "password": PASSWORD, "phone": "555"}
    )
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "phone")
    # Another registration with the number: the same answer, and it is not theirs.
    phone = await api.client.post(
        REGISTER, json={"username": "bob", "password": PASSWORD, "phone": "0015550102030"}
    )
    assert (phone.status_code, phone.json()["pending"]) == (201, ["phone"])
    # Login by phone, in any of its spellings.
    assert (await api.login("+1 555 010 2030"))["user"]["id"] == user["id"]


@pytest.mark.parametrize("password", ["password123", "QWERTYUIOP", "carol123", "Carol123"])
async def test_common_or_guessable_passwords_are_refused(api: Api, password: str) -> None:
    reply = await api.client.post(REGISTER, json={"username": "carol123", "password": password})
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, "password")


async def test_passwords_are_taken_exactly_as_typed(api: Api) -> None:
    await api.client.post(REGISTER, json={"username": "ann", "password": "  Spaces  Kept "})
    assert (
        await api.client.post(LOGIN, json={"login": "ann", "password": "Spaces  Kept"})
    ).status_code == 401
    assert (await api.login("ann", "  Spaces  Kept "))["user"]["username"] == "ann"


# -- login limits ------------------------------------------------------------------------


async def test_failed_logins_are_limited_per_login_name(tmp_path: Path) -> None:
    config = build_config(auth=AuthConfig(login_failures=3, login_window_s=60))
    async for api in open_api(tmp_path, config):
        await api.register("ann")
        wrong = {"login": "ann", "password": "wrong horse"}
        statuses = [(await api.client.post(LOGIN, json=wrong)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        # Even the right password waits, and an unknown name is limited the same way.
        right = await api.client.post(LOGIN, json={"login": "ANN", "password": PASSWORD})
        assert right.status_code == 429
        ghost = {"login": "ghost", "password": "wrong horse"}
        ghosts = [(await api.client.post(LOGIN, json=ghost)).status_code for _ in range(4)]
        assert ghosts == statuses
        api.clock.advance(61)
        assert (await api.login("ann"))["user"]["username"] == "ann"


async def test_failed_logins_are_limited_per_address(tmp_path: Path) -> None:
    config = build_config(auth=AuthConfig(login_failures_per_ip=3, login_window_s=60))
    async for api in open_api(tmp_path, config):
        await api.register("ann")
        for name in ("a1", "a2", "a3"):
            await api.client.post(LOGIN, json={"login": name, "password": "wrong horse"})
        reply = await api.client.post(LOGIN, json={"login": "ann", "password": PASSWORD})
        assert reply.status_code == 429


async def test_unknown_user_and_wrong_password_get_the_same_answer(api: Api) -> None:
    await api.register("ann")
    wrong = await api.client.post(LOGIN, json={"login": "ann", "password": "wrong horse"})
    ghost = await api.client.post(LOGIN, json={"login": "ghost", "password": "wrong horse"})
    assert (wrong.status_code, wrong.json()) == (ghost.status_code, ghost.json())


async def test_login_records_the_device(api: Api) -> None:
    await api.register("ann")
    tokens = await api.login("ann", device="tablet-9")
    me = (await api.client.get(ME, headers=bearer(tokens))).json()["user"]
    assert me["last_login_device"] == "tablet-9"
    assert me["last_login_ip"] == "127.0.0.1"
    assert me["last_login_at"] == api.clock.now_ms


# -- sessions ----------------------------------------------------------------------------


async def test_list_and_revoke_sessions(api: Api) -> None:
    await api.register("ann")
    phone = await api.login("ann", device="phone", platform="mobile")
    laptop = await api.login("ann", device="laptop", platform="desktop")
    listed = (await api.client.get(SESSIONS, headers=bearer(laptop))).json()["sessions"]
    assert sorted((s["device"], s["platform"], s["current"]) for s in listed) == [
        ("laptop", "desktop", True),
        ("phone", "mobile", False),
    ]
    reply = await api.client.delete(f"{SESSIONS}/{phone['session']}", headers=bearer(laptop))
    assert reply.status_code == 204
    assert api.closer.calls[-1][:3] == (laptop["user"]["id"], phone["session"], 4007)
    assert (await api.client.get(ME, headers=bearer(phone))).status_code == 401
    again = await api.client.delete(f"{SESSIONS}/{phone['session']}", headers=bearer(laptop))
    assert again.status_code == 404


async def test_nobody_revokes_someone_elses_session(api: Api) -> None:
    await api.register("ann")
    await api.register("eve")
    ann = await api.login("ann")
    eve = await api.login("eve")
    reply = await api.client.delete(f"{SESSIONS}/{ann['session']}", headers=bearer(eve))
    assert reply.status_code == 404
    assert (await api.client.get(ME, headers=bearer(ann))).status_code == 200


async def test_logout_everywhere_ends_every_session(api: Api) -> None:
    await api.register("ann")
    first, second = await api.login("ann"), await api.login("ann")
    assert (
        await api.client.post("/api/v1/auth/logout_all", headers=bearer(first))
    ).status_code == 204
    assert api.closer.calls[-1][:3] == (first["user"]["id"], None, 4007)
    for tokens in (first, second):
        assert (await api.client.get(ME, headers=bearer(tokens))).status_code == 401
        refresh = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401


# -- passwords ---------------------------------------------------------------------------


async def test_change_password_needs_the_current_one_and_ends_other_sessions(api: Api) -> None:
    await api.register("ann")
    here, there = await api.login("ann"), await api.login("ann")
    path = f"{ME}/password"
    wrong = await api.client.post(
        path, json={"current_password": "nope", "new_password": "new horse 2"}, headers=bearer(here)
    )
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (403, "current_password")
    weak = await api.client.post(
        path, json={"current_password": PASSWORD, "new_password": "password"}, headers=bearer(here)
    )
    assert (weak.status_code, weak.json()["error"]["field"]) == (422, "new_password")
    reply = await api.client.post(
        path,
        json={"current_password": PASSWORD, "new_password": "new horse 2"},
        headers=bearer(here),
    )
    assert reply.status_code == 204
    assert (await api.client.get(ME, headers=bearer(here))).status_code == 200
    assert (await api.client.get(ME, headers=bearer(there))).status_code == 401
    assert (there["user"]["id"], there["session"], 4007) in [c[:3] for c in api.closer.calls]
    assert (
        await api.client.post(LOGIN, json={"login": "ann", "password": PASSWORD})
    ).status_code == 401
    await api.login("ann", "new horse 2")


async def test_reset_password_with_a_code_for_that_email_only(api: Api) -> None:
    for name in ("ann", "bob"):
        await api.client.post(
            REGISTER, json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"}
        )
        await api.confirm(name, email=f"{name}@example.com")
    session = await api.login("ann")
    await api.client.post(CODES, json={"email": "bob@example.com", "purpose": "reset"})
    bobs_code = code_in(api, "bob@example.com")
    # The original accepted any valid code for any user; a code is bound to its email.
    stolen = await api.client.post(
        "/api/v1/auth/password/reset",
        json={"email": "ann@example.com", "code": bobs_code, "new_password": "new horse 3"},
    )
    assert (stolen.status_code, stolen.json()["error"]["field"]) == (422, "code")
    await api.client.post(CODES, json={"email": "ann@example.com", "purpose": "reset"})
    body = {"email": "ann@example.com", "code": code_in(api, "ann@example.com")}
    reply = await api.client.post(
        "/api/v1/auth/password/reset", json={**body, "new_password": "new horse 3"}
    )
    assert reply.status_code == 204
    assert (await api.client.get(ME, headers=bearer(session))).status_code == 401
    await api.login("ann", "new horse 3")
    # The code is used up (the original never deleted it).
    again = await api.client.post(
        "/api/v1/auth/password/reset", json={**body, "new_password": "new horse 4"}
    )
    assert again.status_code == 422


# -- profiles ----------------------------------------------------------------------------


async def test_update_my_profile(api: Api) -> None:
    ann = await api.user("ann")
    changes = {
        "display_name": "Ann Lee",
        "gender": "female",
        "birthday": "1990-04-01",
        "signature": "hi there",
        "region": "Lisbon",
        "language": "pt-BR",
        "avatar": "https://example.org/ann.png",
        "find_by_phone": False,
    }
    reply = await api.client.patch(
        ME, json={**changes, "phone": "+351 912 345 678"}, headers=ann[1]
    )
    assert reply.status_code == 200, reply.text
    user = reply.json()["user"]
    assert {key: user[key] for key in changes} == changes
    assert (user["phone"], reply.json()["pending"]) == (None, ["phone"])
    confirmed = await api.client.patch(
        ME,
        json={"phone": "+351912345678", "phone_code": api.code_for("+351912345678")},
        headers=ann[1],
    )
    assert confirmed.json()["user"]["phone"] == "+351912345678"
    public = (await api.client.get(f"/api/v1/users/{ann[0]}", headers=ann[1])).json()["user"]
    assert public["display_name"] == "Ann Lee"
    assert "phone" not in public
    assert "email" not in public
    assert "birthday" not in public
    cleared = await api.client.patch(ME, json={"birthday": None, "phone": None}, headers=ann[1])
    assert (cleared.json()["user"]["birthday"], cleared.json()["user"]["phone"]) == (None, None)
    same = await api.client.patch(ME, json={}, headers=ann[1])
    assert same.json()["user"]["display_name"] == "Ann Lee"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": 5}, "display_name"),
        ({"gender": "robot"}, "gender"),
        ({"birthday": "1990-13-01"}, "birthday"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "19900401"}, "birthday"),
        ({"signature": "x" * 257}, "signature"),
        ({"language": "english!"}, "language"),
        ({"phone": "12"}, "phone"),
        ({"phone": 12}, "phone"),
        ({"find_by_email": "yes"}, "find_by_email"),
        ({"username": "other"}, "username"),
        ({"id": "someone-else"}, "id"),
        ({"disabled": False}, "disabled"),
    ],
)
async def test_bad_profile_fields_are_422(api: Api, changes: dict[str, object], field: str) -> None:
    ann = await api.user("ann")
    reply = await api.client.patch(ME, json=changes, headers=ann[1])
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, field)


async def test_only_i_change_my_profile(api: Api) -> None:
    ann, eve = await api.user("ann"), await api.user("eve")
    # There is no route to change anyone else (the original's PUT /user took any id).
    reply = await api.client.patch(
        f"/api/v1/users/{ann[0]}", json={"display_name": "x"}, headers=eve[1]
    )
    assert reply.status_code == 405
    await api.client.patch(ME, json={"display_name": "Eve"}, headers=eve[1])
    ann_now = (await api.client.get(ME, headers=ann[1])).json()["user"]
    assert ann_now["display_name"] == "ann"


async def test_a_taken_phone_is_a_conflict(api: Api) -> None:
    await api.user("ann")
    bob = await api.user("bob")
    await api.confirm("ann", phone="+15550001111")
    asked = await api.client.patch(ME, json={"phone": "+1 555 000 1111"}, headers=bob[1])
    assert (asked.status_code, asked.json()["pending"]) == (200, ["phone"])
    # Only whoever holds the number learns it is taken.
    code = api.code_for("+15550001111")
    reply = await api.client.patch(
        ME, json={"phone": "+15550001111", "phone_code": code}, headers=bob[1]
    )
    assert (reply.status_code, reply.json()["error"]["field"]) == (409, "phone")


async def test_disable_ends_sessions_hides_the_profile_and_refuses_login(api: Api) -> None:
    ann, bob = await api.user("ann"), await api.user("bob")
    wrong = await api.client.post(f"{ME}/disable", json={"password": "nope"}, headers=ann[1])
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (403, "password")
    reply = await api.client.post(f"{ME}/disable", json={"password": PASSWORD}, headers=ann[1])
    assert reply.status_code == 204
    assert api.closer.calls[-1][:3] == (ann[0], None, 4007)
    assert (await api.client.get(ME, headers=ann[1])).status_code == 401
    assert (await api.client.get(f"/api/v1/users/{ann[0]}", headers=bob[1])).status_code == 404
    login = await api.client.post(LOGIN, json={"login": "ann", "password": PASSWORD})
    assert login.status_code == 403
    found = await api.client.get("/api/v1/users/search?q=ann", headers=bob[1])
    assert found.json()["users"] == []
    # Friend requests to a disabled account look like requests to nobody.
    request = await api.client.post("/api/v1/friends/requests", json={"to": ann[0]}, headers=bob[1])
    assert request.status_code == 404


# -- search ------------------------------------------------------------------------------


async def test_search_by_exact_username_email_phone_then_prefix(api: Api) -> None:
    await api.client.post(
        REGISTER,
        json={"username": "anna", "password": PASSWORD, "email": "anna@example.com",
              "phone": "+15550002222", "display_name": "Anna K"},
    )  # fmt: skip
    await api.confirm("anna", email="anna@example.com", phone="+15550002222")
    await api.client.post(REGISTER, json={"username": "ann", "password": PASSWORD})
    await api.client.post(
        REGISTER, json={"username": "zed", "password": PASSWORD, "display_name": "Annabel Zed"}
    )
    me = await api.user("searcher")

    async def search(query: str, **extra: str) -> list[tuple[str, str]]:
        reply = await api.client.get(
            "/api/v1/users/search", params={"q": query, **extra}, headers=me[1]
        )
        assert reply.status_code == 200, reply.text
        return [(u["username"], u["match"]) for u in reply.json()["users"]]

    assert await search("ANN") == [("ann", "username"), ("anna", "prefix"), ("zed", "prefix")]
    assert await search("anna@example.com") == [("anna", "email")]
    assert await search("+1 555 000 2222") == [("anna", "phone")]
    assert await search("searcher") == []  # never yourself
    page = (
        await api.client.get(
            "/api/v1/users/search", params={"q": "an", "limit": "2"}, headers=me[1]
        )
    ).json()
    assert (len(page["users"]), page["next_offset"]) == (2, 2)
    rest = await search("an", limit="2", offset="2")
    assert rest == [("zed", "prefix")]


async def test_email_and_phone_search_can_be_switched_off(api: Api) -> None:
    await api.client.post(
        REGISTER,
        json={"username": "anna", "password": PASSWORD, "email": "anna@example.com",
              "phone": "+15550002222"},
    )  # fmt: skip
    await api.confirm("anna", email="anna@example.com", phone="+15550002222")
    anna = await api.login("anna")
    await api.client.patch(
        ME, json={"find_by_email": False, "find_by_phone": False}, headers=bearer(anna)
    )
    me = await api.user("searcher")
    for query in ("anna@example.com", "+15550002222"):
        reply = await api.client.get("/api/v1/users/search", params={"q": query}, headers=me[1])
        assert reply.json()["users"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("", "q"), ("q=" + "x" * 255, "q"), ("q=a&limit=0", "limit"), ("q=a&limit=51", "limit"),
     ("q=a&offset=-1", "offset"), ("q=a&offset=1001", "offset"), ("q=a&limit=1e3", "limit")],
)  # fmt: skip
async def test_bad_search_input_is_422(api: Api, query: str, field: str) -> None:
    me = await api.user("searcher")
    reply = await api.client.get(f"/api/v1/users/search?{query}", headers=me[1])
    assert (reply.status_code, reply.json()["error"]["field"]) == (422, field)
