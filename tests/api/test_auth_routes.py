"""Register, login, refresh, logout and bearer checks over a real server."""

from __future__ import annotations

import pytest

from tests.api.api_harness import Api

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_returns_the_new_user(api: Api) -> None:
    reply = await api.client.post(
        REGISTER,
        json={
            "username": "alice",
            "password": "correct horse",
            "email": " Alice@Example.COM ",
            "display_name": "Alice A.",
        },
    )
    assert reply.status_code == 201
    user = reply.json()["user"]
    assert {"id", "username", "display_name", "avatar", "created_at"} <= user.keys()
    assert user["username"] == "alice"
    assert user["display_name"] == "Alice A."
    # The address is added once its code comes back (email verification off).
    assert (user["email"], reply.json()["pending"]) == (None, ["email"])
    assert api.code_for("alice@example.com")
    assert "password_hash" not in user


async def test_display_name_defaults_to_username(api: Api) -> None:
    user = await api.register("bob")
    assert user["display_name"] == "bob"


async def test_duplicate_username_is_409(api: Api) -> None:
    await api.register("alice")
    reply = await api.client.post(REGISTER, json={"username": "alice", "password": "other pass"})
    assert reply.status_code == 409
    assert reply.json()["error"] == {
        "code": "conflict",
        "message": "username is already taken",
        "field": "username",
    }


async def test_a_taken_email_is_a_409_only_with_its_code_whatever_its_case(api: Api) -> None:
    body = {"username": "alice", "password": "correct horse", "email": "a@example.com"}
    assert (await api.client.post(REGISTER, json=body)).status_code == 201
    await api.confirm("alice", email="a@example.com")
    body = {"username": "alice2", "password": "correct horse", "email": "A@EXAMPLE.com"}
    reply = await api.client.post(REGISTER, json=body)
    # The same answer as for a free address; the owner is told, nobody gets a code.
    assert (reply.status_code, reply.json()["pending"]) == (201, ["email"])
    assert api.mailbox.mails[-1].to == "a@example.com"
    assert "already belongs to your account" in api.mailbox.mails[-1].text
    tokens = await api.login("alice2")
    headers = bearer(tokens["access_token"])
    guess = await api.client.patch(
        ME, json={"email": "a@example.com", "email_code": "123456"}, headers=headers
    )
    assert (guess.status_code, guess.json()["error"]["field"]) == (422, "email_code")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "a" * 33}, "username"),
        ({"username": "al ice"}, "username"),
        ({"username": 12345}, "username"),
        ({"username": None}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"password": ["a list"]}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 65}, "display_name"),
        ({"display_name": "bell\x07"}, "display_name"),
    ],
)
async def test_invalid_registration_field_is_422_naming_it(
    api: Api, patch: dict[str, object], field: str
) -> None:
    body: dict[str, object] = {"username": "alice", "password": "correct horse", **patch}
    reply = await api.client.post(REGISTER, json=dict(body.items()))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "bad_request"
    assert error["field"] == field


async def test_login_returns_tokens_user_and_ws_url(api: Api) -> None:
    await api.register("alice")
    result = await api.login("alice", device="phone-1", platform="mobile")
    assert result["user"]["username"] == "alice"
    assert result["ws_url"] == "ws://127.0.0.1:50000/ws"
    assert result["expires_in"] == 900
    assert result["device"] == "phone-1"
    me = await api.client.get(ME, headers=bearer(result["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["id"] == result["user"]["id"]


async def test_login_by_email_and_case_insensitive_username(api: Api) -> None:
    body = {"username": "alice", "password": "correct horse", "email": "a@example.com"}
    await api.client.post(REGISTER, json=body)
    await api.confirm("alice", email="a@example.com")
    assert (await api.login("A@Example.com"))["user"]["username"] == "alice"
    assert (await api.login("ALICE"))["user"]["username"] == "alice"


async def test_login_records_time_and_ip(api: Api) -> None:
    user = await api.register("alice")
    await api.login("alice")
    stored = await api.accounts.get_user(user["id"])
    assert stored.last_login_at == api.clock.now_ms
    assert stored.last_login_ip == "127.0.0.1"


async def test_logins_without_device_get_distinct_devices(api: Api) -> None:
    await api.register("alice")
    first, second = await api.login("alice"), await api.login("alice")
    assert first["device"] != second["device"]
    assert first["session"] != second["session"]


async def test_unknown_user_and_wrong_password_get_the_same_401(api: Api) -> None:
    await api.register("alice")
    wrong = await api.client.post(LOGIN, json={"login": "alice", "password": "wrong password"})
    unknown = await api.client.post(LOGIN, json={"login": "nobody", "password": "wrong password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == {
        "code": "unauthorized",
        "message": "invalid login or password",
    }


async def test_refresh_rotates_and_the_old_token_stops_working(api: Api) -> None:
    await api.register("alice")
    first = await api.login("alice")
    reply = await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reply.status_code == 200
    second = reply.json()
    assert set(second) == {"access_token", "refresh_token", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert (await api.client.get(ME, headers=bearer(second["access_token"]))).status_code == 200
    third = await api.client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_session(api: Api) -> None:
    await api.register("alice")
    first = await api.login("alice")
    second = (await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    reuse = await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert api.closer.calls == [
        (first["user"]["id"], first["session"], 4007, "refresh token reused")
    ]
    # The whole family is gone: the legitimate holder's tokens fail too.
    later = await api.client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert later.status_code == 401
    assert (await api.client.get(ME, headers=bearer(second["access_token"]))).status_code == 401


async def test_unknown_refresh_token_is_401(api: Api) -> None:
    reply = await api.client.post(REFRESH, json={"refresh_token": "not-a-token"})
    assert reply.status_code == 401
    assert api.closer.calls == []


async def test_expired_refresh_token_is_401(api: Api) -> None:
    await api.register("alice")
    first = await api.login("alice")
    api.clock.advance(31 * 86400)
    reply = await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reply.status_code == 401


async def test_logout_revokes_the_session_and_closes_its_sockets(api: Api) -> None:
    await api.register("alice")
    tokens = await api.login("alice")
    other = await api.login("alice")
    reply = await api.client.post(LOGOUT, headers=bearer(tokens["access_token"]))
    assert reply.status_code == 204
    assert reply.content == b""
    assert api.closer.calls == [(tokens["user"]["id"], tokens["session"], 4007, "logged out")]
    assert (await api.client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401
    refresh = await api.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    # Another session of the same user is untouched.
    assert (await api.client.get(ME, headers=bearer(other["access_token"]))).status_code == 200


async def test_expired_access_token_is_401(api: Api) -> None:
    await api.register("alice")
    tokens = await api.login("alice")
    api.clock.advance(901)
    reply = await api.client.get(ME, headers=bearer(tokens["access_token"]))
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    ],
)
async def test_missing_or_invalid_bearer_is_401(api: Api, headers: dict[str, str]) -> None:
    for method, path in (("GET", ME), ("POST", LOGOUT), ("GET", "/api/v1/friends")):
        reply = await api.client.request(method, path, headers=headers)
        assert reply.status_code == 401, (path, reply.text)
        assert reply.json()["error"]["code"] == "unauthorized"


async def test_public_profile_hides_private_fields(api: Api) -> None:
    alice = await api.user("alice")
    bob = await api.register("bob")
    reply = await api.client.get(f"/api/v1/users/{bob['id']}", headers=alice[1])
    assert reply.status_code == 200
    assert reply.json()["user"]["username"] == "bob"
    assert "email" not in reply.json()["user"]
    missing = await api.client.get("/api/v1/users/nobody", headers=alice[1])
    assert missing.status_code == 404
