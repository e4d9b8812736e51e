"""The smaller holes of issue 12, item 10, attacked over real sockets: files sent
before a late joiner joined, a signed link with a non-ASCII digit, names with
bidi and zero-width characters, free-text avatars, cacheable token responses,
sniffable JSON, and a world-readable data directory."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import trio

from sandcat.protocol import Send
from tests.files.media import png
from tests.files.scene import content, uploaded
from tests.gateway.conftest import connect  # noqa: F401 - the fixture
from tests.gateway.raw import Connect, Raw, ok_body
from tests.scene import Account, Api


def _image(conn: Raw, cid: str, file: dict[str, Any], cmid: str) -> Send:
    body = {
        "file": file["id"],
        "mime": file["content_type"],
        "size": file["size"],
        "width": file["width"],
        "height": file["height"],
    }
    return Send(rid=conn.rid(), cid=cid, cmid=cmid, kind=2, body=body)


@pytest.fixture(params=["sqlite", "postgres"])
def server_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "postgres":
        return {"backends.database_url": request.getfixturevalue("postgres_url")}
    return {}


async def test_a_late_joiner_with_history_hidden_cannot_fetch_earlier_files(
    api: Api,
    connect: Connect,  # noqa: F811 - the fixture
) -> None:
    alice, bob, carol = [await api.account() for _ in range(3)]
    await api.befriend(alice, bob)
    await api.befriend(alice, carol)
    cid = await api.group(alice, [bob])  # history_visible is off by default
    group_id = cid.removeprefix("g:")
    sender = await connect(alice.token)
    file = await uploaded(api, alice, png(), "image/png")
    ok_body(await sender.request(_image(sender, cid, file, "before")))
    invited = await api.http.post(
        f"/api/v1/groups/{group_id}/members", json={"users": [carol.id]}, headers=api.auth(alice)
    )
    assert invited.status_code == 200, invited.text
    late = (await content(api, carol, file["id"])).status_code
    print(f"late joiner fetching a file sent before they joined: {late}")
    assert late == 404
    assert (await content(api, bob, file["id"])).status_code == 200
    # Sent again after the join: now it is theirs to read.
    ok_body(await sender.request(_image(sender, cid, file, "after")))
    assert (await content(api, carol, file["id"])).status_code == 200


@pytest.mark.parametrize("server_overrides", [{}], ids=["sqlite"])
@pytest.mark.parametrize("expires", ["²", "١٢٣", "1²", "Ⅻ", "12.5", ""])
async def test_a_signed_link_with_a_non_ascii_digit_is_a_clean_403(api: Api, expires: str) -> None:
    reply = await api.http.get("/api/v1/files/x/content", params={"expires": expires, "sig": "a"})
    print(f"expires={expires!r}: {reply.status_code}")
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "forbidden"


NAMES_REFUSED = [
    "ali\u202ece",  # right-to-left override
    "\u2067alice",  # right-to-left isolate
    "alice\u200f",  # right-to-left mark
    "al\u200bice",  # zero-width space
    "ali\u200dce",  # a joiner between letters
    "al\u2060ice",  # word joiner
    "\ufeffalice",  # byte order mark
    "\u200b",
]
NAMES_ALLOWED = [
    "Ann",
    "Zoë",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",
    "\u0639\u0644\u064a",
]


async def _patch_me(api: Api, who: Account, **fields: object) -> int:
    reply = await api.http.patch("/api/v1/users/me", json=fields, headers=api.auth(who))
    return reply.status_code


@pytest.mark.parametrize("server_overrides", [{}], ids=["sqlite"])
async def test_names_with_bidi_or_zero_width_characters_are_refused(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    cid = await api.group(alice, [bob])
    group_id = cid.removeprefix("g:")
    for index, name in enumerate(NAMES_REFUSED):
        registered = await api.http.post(
            "/api/v1/auth/register",
            json={"username": f"spoof{index}", "password": "correct horse 1", "display_name": name},
        )
        assert registered.status_code == 422, name
        assert registered.json()["error"]["field"] == "display_name"
        assert await _patch_me(api, alice, display_name=name) == 422, name
        renamed = await api.http.patch(
            f"/api/v1/groups/{group_id}", json={"name": name}, headers=api.auth(alice)
        )
        assert renamed.status_code == 422, name
        alias = await api.http.put(
            f"/api/v1/groups/{group_id}/alias", json={"alias": name}, headers=api.auth(bob)
        )
        assert alias.status_code == 422, name
    for name in NAMES_ALLOWED:
        assert await _patch_me(api, alice, display_name=name) == 200, name


AVATARS_REFUSED = [
    "javascript:alert(1)",
    "http://example.org/a.png",
    "https://user:pw@example.org/a.png",
    "https:///a.png",
    "https://example.org/<script>",
    "https://example.org/a b.png",
    "data:image/png;base64,AAAA",
    "avatar2.png",
    "https://:xampl[.org/a.png",  # found by nox -s fuzz: urlsplit raises
    "https://example.org/" + "a" * 493,  # 513 characters
]
AVATARS_ALLOWED = [
    "",
    "default-avatar-2",
    "https://example.org/a.png?size=64",
    "https://example.org/" + "a" * 492,  # 512 characters
]


@pytest.mark.parametrize("server_overrides", [{}], ids=["sqlite"])
async def test_avatars_are_a_file_id_or_an_https_url(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    await api.befriend(alice, bob)
    group_id = (await api.group(alice, [bob])).removeprefix("g:")
    for avatar in AVATARS_REFUSED:
        assert await _patch_me(api, alice, avatar=avatar) == 422, avatar
        group = await api.http.patch(
            f"/api/v1/groups/{group_id}", json={"avatar": avatar}, headers=api.auth(alice)
        )
        assert group.status_code == 422, avatar
    for avatar in AVATARS_ALLOWED:
        assert await _patch_me(api, alice, avatar=avatar) == 200, avatar
        group = await api.http.patch(
            f"/api/v1/groups/{group_id}", json={"avatar": avatar}, headers=api.auth(alice)
        )
        assert group.status_code == 200, avatar


@pytest.mark.parametrize("server_overrides", [{}], ids=["sqlite"])
async def test_token_responses_are_never_cached_and_json_is_never_sniffed(api: Api) -> None:
    alice = await api.account()
    login = await api.http.post(
        "/api/v1/auth/login", json={"login": alice.username, "password": alice.password}
    )
    refreshed = await api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
    )
    failed = await api.http.post("/api/v1/auth/login", json={"login": "x", "password": "y"})
    for reply in (login, refreshed, failed):
        assert reply.headers.get("Cache-Control") == "no-store", reply.request.url
    me = await api.http.get("/api/v1/users/me", headers=api.auth(alice))
    missing = await api.http.get("/api/v1/no-such-route")
    for reply in (login, refreshed, failed, me, missing):
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.headers.get("X-Content-Type-Options") == "nosniff", reply.request.url


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("server_overrides", [{}], ids=["sqlite"])
async def test_the_data_directory_is_private(api: Api, tmp_path: Path) -> None:
    alice = await api.account()
    await uploaded(api, alice, png(), "image/png")
    code = await api.http.post(
        "/api/v1/auth/codes", json={"email": "ann@example.org", "purpose": "register"}
    )
    assert code.status_code == 202
    data = tmp_path / "data"
    outbox = data / "outbox"
    for _ in range(100):  # the postman writes the mail in the background
        if outbox.exists() and any(outbox.iterdir()):
            break
        await trio.sleep(0.05)
    dirs = [data, data / "blobs", data / "blobs" / "objects", outbox, data / "spool"]
    dirs += [p for p in (data / "blobs").rglob("*") if p.is_dir()]
    files = [data / "sandcat.db", data / "sandcat.db-wal"]
    files += list(data.glob("*.key"))
    files += [p for p in (data / "blobs").rglob("*") if p.is_file()]
    files += list(outbox.iterdir())
    modes = {str(p.relative_to(data)): oct(_mode(p)) for p in dirs + files}
    print(f"data dir modes: {modes}")
    assert len(files) > 5
    assert {oct(_mode(p)) for p in dirs} == {"0o700"}
    assert {oct(_mode(p)) for p in files} == {"0o600"}
