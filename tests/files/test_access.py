"""Who may read a file: its uploader, members where it was sent, signed links; avatars."""

from __future__ import annotations

import pytest

from sandcat.clock import system_clock
from sandcat.domain.file_links import FileLinks
from sandcat.errors import Forbidden
from tests.files.media import PDF, png
from tests.files.scene import content, upload, uploaded
from tests.scene import Api


async def test_someone_elses_file_is_404_like_a_missing_one(api: Api) -> None:
    alice, mallory = await api.account(), await api.account()
    file = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    for path in (f"/api/v1/files/{file['id']}", f"/api/v1/files/{file['id']}/content"):
        theirs = await api.http.get(path, headers=api.auth(mallory))
        missing = await api.http.get(
            path.replace(file["id"], "no-such-file"), headers=api.auth(mallory)
        )
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
    links = await api.http.post(f"/api/v1/files/{file['id']}/links", headers=api.auth(mallory))
    assert links.status_code == 404
    assert (await content(api, None, file["id"])).status_code == 401


async def test_signed_link_works_without_a_token_and_refuses_tampering(api: Api) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, png(), "image/png")
    reply = await api.http.post(f"/api/v1/files/{file['id']}/links", headers=api.auth(alice))
    assert reply.status_code == 200
    links = reply.json()
    assert links["expires_at"] > system_clock()
    fetched = await api.http.get(links["url"])
    assert fetched.status_code == 200
    assert fetched.content == png()
    thumb = await api.http.get(links["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/jpeg"

    url = links["url"]
    sig = url.rsplit("sig=", 1)[1]
    tampered = [
        url.replace(f"sig={sig}", f"sig={sig[:-1]}{'0' if sig[-1] != '0' else '1'}"),
        url.replace("expires=", "expires=9"),
        url.replace("/content?", "/thumbnail?"),
        url.split("&sig=")[0],
        url.replace("expires=", "expires=-"),
        url.replace(f"sig={sig}", "sig=%FF%FE"),
    ]
    for bad in tampered:
        refused = await api.http.get(bad)
        assert refused.status_code == 403, bad
        assert refused.json()["error"]["code"] == "forbidden"
    other = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    swapped = url.replace(file["id"], other["id"])
    assert (await api.http.get(swapped)).status_code == 403


def test_expired_signed_link_is_forbidden() -> None:
    now = [1_000_000]
    links = FileLinks(b"k" * 32, ttl_s=60, clock=lambda: now[0])
    link = links.sign("abc", "content")
    query = dict(part.split("=") for part in link.url.split("?")[1].split("&"))
    links.verify("abc", "content", query["expires"], query["sig"])
    now[0] += 60_000
    with pytest.raises(Forbidden, match="expired"):
        links.verify("abc", "content", query["expires"], query["sig"])


async def test_deleted_file_signed_link_is_404(api: Api) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    url = (await api.http.post(f"/api/v1/files/{file['id']}/links", headers=api.auth(alice))).json()
    await api.http.delete(f"/api/v1/files/{file['id']}", headers=api.auth(alice))
    assert (await api.http.get(url["url"])).status_code == 404


async def test_links_on_s3_include_a_working_presigned_url(api: Api, backend: str) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, PDF, "application/pdf", kind="file")
    links = (
        await api.http.post(f"/api/v1/files/{file['id']}/links", headers=api.auth(alice))
    ).json()
    if backend == "local":
        assert "direct_url" not in links
        return
    direct = await api.http.get(links["direct_url"])
    assert direct.status_code == 200
    assert direct.content == PDF
    assert direct.headers["content-type"] == "application/pdf"


async def test_new_accounts_get_a_shipped_default_avatar_served_publicly(api: Api) -> None:
    alice = await api.account()
    me = (await api.http.get("/api/v1/users/me", headers=api.auth(alice))).json()["user"]
    assert me["avatar"].startswith("default-avatar-")
    reply = await api.http.get(f"/api/v1/avatars/{me['avatar']}")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["cache-control"].startswith("public")
    assert reply.content.startswith(b"\x89PNG")


async def test_set_my_avatar_replaces_and_removes_the_old_one(api: Api) -> None:
    alice = await api.account()
    first = await api.http.put(
        "/api/v1/users/me/avatar",
        content=png(600, 300),
        headers={**api.auth(alice), "Content-Type": "image/png"},
    )
    assert first.status_code == 200, first.text
    avatar = first.json()["avatar"]
    assert first.json()["file"]["width"] == first.json()["file"]["height"] == 256
    me = (await api.http.get("/api/v1/users/me", headers=api.auth(alice))).json()["user"]
    assert me["avatar"] == avatar
    public = await api.http.get(f"/api/v1/avatars/{avatar}")
    assert public.status_code == 200
    assert public.content.startswith(b"\x89PNG")

    second = await api.http.put(
        "/api/v1/users/me/avatar",
        files={"file": ("me.jpg", png(), "image/png")},
        headers=api.auth(alice),
    )
    assert second.status_code == 200, second.text
    assert (await api.http.get(f"/api/v1/avatars/{avatar}")).status_code == 404
    assert (await api.http.get(f"/api/v1/avatars/{second.json()['avatar']}")).status_code == 200


async def test_avatar_route_serves_avatars_only(api: Api) -> None:
    alice = await api.account()
    file = await uploaded(api, alice, png(), "image/png")
    assert (await api.http.get(f"/api/v1/avatars/{file['id']}")).status_code == 404
    assert (await api.http.get("/api/v1/avatars/bad:id")).status_code == 422


@pytest.mark.parametrize(
    ("data", "ctype", "status"),
    [(PDF, "application/pdf", 415), (b"not png", "image/png", 415), (png(), None, 415)],
)
async def test_bad_avatars_are_refused(
    api: Api, data: bytes, ctype: str | None, status: int
) -> None:
    alice = await api.account()
    headers = {**api.auth(alice), **({"Content-Type": ctype} if ctype else {})}
    reply = await api.http.put("/api/v1/users/me/avatar", content=data, headers=headers)
    assert reply.status_code == status
    me = (await api.http.get("/api/v1/users/me", headers=api.auth(alice))).json()["user"]
    assert me["avatar"].startswith("default-avatar-")


async def test_group_avatar_by_owner_only(api: Api) -> None:
    owner, member, outsider = await api.account(), await api.account(), await api.account()
    await api.befriend(owner, member)
    cid = await api.group(owner, [member])
    group_id = cid.removeprefix("g:")
    path = f"/api/v1/groups/{group_id}/avatar"
    body = {"content": png(), "headers": {"Content-Type": "image/png"}}

    async def put(who: object) -> int:
        headers = {**api.auth(who), **body["headers"]}  # type: ignore[arg-type, dict-item]
        reply = await api.http.put(path, content=body["content"], headers=headers)  # type: ignore[arg-type]
        return reply.status_code

    assert await put(member) == 403
    assert await put(outsider) == 404
    assert await put(owner) == 200
    group = (await api.http.get(f"/api/v1/groups/{group_id}", headers=api.auth(member))).json()
    avatar = group["group"]["avatar"]
    assert (await api.http.get(f"/api/v1/avatars/{avatar}")).status_code == 200
    missing = await api.http.put(
        "/api/v1/groups/nosuchgroup/avatar",
        content=png(),
        headers={**api.auth(owner), "Content-Type": "image/png"},
    )
    assert missing.status_code == 404


async def test_upload_is_listed_only_for_its_owner(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    await uploaded(api, alice, png(), "image/png")
    listing = await api.http.get("/api/v1/files", headers=api.auth(bob))
    assert listing.json()["files"] == []
    assert (await upload(api, bob, png(), "image/png")).status_code == 201
