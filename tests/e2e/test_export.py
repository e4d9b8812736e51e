"""The user data export (GET /api/v1/users/me/export, docs/export.md) after a scripted
session on a real server, on both engines: every message the user can read as the API
gives it, their files byte for byte, nothing of anyone else's private data."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sandcat.app import Server
from sandcat.client import HttpApi, HttpError, open_client
from sandcat.export import FORMAT, VERSION
from tests.e2e.process import serve_environment
from tests.scene import Api

PASSWORD = "correct horse 1"


@pytest.fixture(params=["sqlite", "postgres"])
def server_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "postgres":
        return {"backends.database_url": request.getfixturevalue("postgres_url")}
    return {}


def _code_in_outbox(outbox: Path, address: str) -> str | None:
    for path in sorted(outbox.glob("*.eml"), key=os.path.getmtime, reverse=True):
        text = path.read_text()
        if address in text and (found := re.search(r"code is\s+(\d{6})", text)):
            return found.group(1)
    return None


async def _mailed_code(outbox: Path, address: str) -> str:
    """The code in the newest mail to ``address`` (the outbox sender writes it)."""
    for _ in range(500):
        if (code := _code_in_outbox(outbox, address)) is not None:
            return code
        await trio.sleep(0.02)
    raise AssertionError(f"no code mailed to {address} in {outbox}")


async def _all_messages(http: httpx.AsyncClient, token: str, cid: str) -> list[Any]:
    """Every message of ``cid`` the HTTP history route gives ``token``'s user."""
    messages: list[Any] = []
    after = 0
    while True:
        page = (
            await http.get(
                f"/api/v1/conversations/{cid}/messages",
                params={"after": after, "limit": 100},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
        messages += page["messages"]
        if not page["more"]:
            return messages
        after = page["messages"][-1]["seq"]


def _entries(archive: zipfile.ZipFile) -> dict[str, bytes]:
    assert archive.testzip() is None  # every entry's CRC checks out
    return {name: archive.read(name) for name in archive.namelist()}


def _admin(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m sandcat admin ARGS`` as a child process, beside the running server."""
    return subprocess.run(
        [sys.executable, "-m", "sandcat", "admin", *args],
        env=serve_environment(
            {**{k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")}, **env}
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_export_holds_what_the_user_sees_and_nothing_else(
    server: Server, api: Api, tmp_path: Path, server_overrides: dict[str, object]
) -> None:
    url = f"http://127.0.0.1:{server.http_port}"
    outbox = tmp_path / "data" / "outbox"
    async with HttpApi(url) as sdk:
        for name in ("ann", "bob", "cat", "dan"):
            await sdk.register(name, PASSWORD)
        ann_login = await sdk.login("ann", PASSWORD, device="laptop")
        token = ann_login.tokens.access_token
        bob_login = await sdk.login("bob", PASSWORD, device="laptop")
        # bob's private email: confirmed with the code mailed to it.
        await sdk.update_me(bob_login.tokens.access_token, email="bob-secret@example.com")
        code = await _mailed_code(outbox, "bob-secret@example.com")
        await sdk.update_me(
            bob_login.tokens.access_token, email="bob-secret@example.com", email_code=code
        )
        await sdk.update_me(token, signature="ann's own words", read_receipts=False)

    ann, bob, cat, dan = [
        await api.login(n, PASSWORD, "setup") for n in ("ann", "bob", "cat", "dan")
    ]
    direct = await api.befriend(ann, bob)
    bob_cat = await api.befriend(bob, cat)
    group = await api.group(bob, [ann, cat], name="trip")
    # A pending request from dan, and an inbox notice about it.
    reply = await api.http.post(
        "/api/v1/friends/requests", json={"to": ann.id, "message": "hi"}, headers=api.auth(dan)
    )
    assert reply.status_code == 201, reply.text

    texts = ["héllo ✓ 🐈", 'line\nbreak\t"quoted"', "x" * 4000, "to hide", "to recall"]
    payload_a = os.urandom(300_000)
    payload_b = b"tiny text file\n"
    async with (
        open_client(url, login="ann", password=PASSWORD, device="phone") as a,
        open_client(url, login="bob", password=PASSWORD, device="phone") as b,
    ):
        acks = [await a.session.send(direct, text) for text in texts]
        acks.append(await b.session.send(direct, "from bob"))
        acks.append(await a.session.send(group, "to the group"))
        recalled = await b.session.send(group, "bob will recall this")
        await b.session.recall(group, recalled.seq)
        await b.session.send(bob_cat, "bob-cat-secret between bob and cat")
        sent_a = await a.send_file(
            direct, payload_a, content_type="application/octet-stream", name="random.bin"
        )
        sent_b = await a.send_file(
            group, payload_b, content_type="text/plain", name="../ev il:name.txt"
        )
        bobs = await b.send_file(group, b"bob own file", content_type="text/plain", name="b.txt")
        await a.session.hide(direct, [acks[3].seq])

    target = tmp_path / "ann.zip"
    async with HttpApi(url) as sdk:
        written = await sdk.export(token, target)
        assert written == target.stat().st_size > 300_000
        # One export per user per http.export_interval_s: the next is refused, clearly.
        with pytest.raises(HttpError) as refused:
            await sdk.export(token, tmp_path / "again.zip")
        assert refused.value.status == 429
        assert refused.value.code == "rate_limited"
        assert "one data export per 600 s" in refused.value.message
        assert refused.value.retry_after_ms is not None
        assert refused.value.retry_after_ms > 0
        assert not (tmp_path / "again.zip").exists()
        # Without a token: 401, and nothing streamed.
        no_token = await api.http.get("/api/v1/users/me/export")
        assert no_token.status_code == 401
        assert no_token.json()["error"]["code"] == "unauthorized"

    # The operator's export (the CLI, beside the running server) holds the same.
    env = {"SANDCAT_DATA_DIR": str(tmp_path / "data"), "SANDCAT_HTTP_PORT": "1"}
    if "backends.database_url" in server_overrides:
        env["SANDCAT_DATABASE_URL"] = str(server_overrides["backends.database_url"])
    by_cli = tmp_path / "by-cli.zip"
    done = await trio.to_thread.run_sync(
        lambda: _admin("export", "ann", "--out", str(by_cli), "--json", env=env)
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["exported"]["id"], report["bytes"]) == (ann.id, by_cli.stat().st_size)
    assert not by_cli.with_name("by-cli.zip.partial").exists()
    again = await trio.to_thread.run_sync(
        lambda: _admin("export", ann.id, "--out", str(by_cli), env=env)
    )
    assert again.returncode == 1
    assert "exists (not overwritten)" in again.stderr
    missing = await trio.to_thread.run_sync(
        lambda: _admin("export", "nobody", "--out", str(tmp_path / "x.zip"), env=env)
    )
    assert missing.returncode == 1
    assert "no user 'nobody'" in missing.stderr
    assert not (tmp_path / "x.zip").exists()
    audit = await trio.to_thread.run_sync(
        lambda: _admin("audit", "--action", "export", "--json", env=env)
    )
    assert [(e["action"], e["target"]) for e in json.loads(audit.stdout)["entries"]] == [
        ("export", ann.id)
    ]

    with zipfile.ZipFile(target) as archive:
        entries = _entries(archive)
    with zipfile.ZipFile(by_cli) as archive:
        from_cli = _entries(archive)
    assert set(from_cli) == set(entries)
    for name, data in entries.items():
        if name != "manifest.json":  # its created_at differs
            assert from_cli[name] == data, name
    everything = b"".join(entries.values())
    manifest = json.loads(entries["manifest.json"])
    assert (manifest["format"], manifest["version"], manifest["user"]) == (FORMAT, VERSION, ann.id)
    for document in manifest["documents"]:
        assert document in entries, document

    profile = json.loads(entries["profile.json"])["user"]
    assert (profile["id"], profile["username"], profile["signature"]) == (
        ann.id,
        "ann",
        "ann's own words",
    )
    settings = json.loads(entries["settings.json"])
    assert settings["account"]["read_receipts"] is False
    assert {c["cid"] for c in settings["conversations"]} == {direct, group}

    contacts = json.loads(entries["contacts.json"])
    assert [f["id"] for f in contacts["friends"]] == [bob.id]
    assert [(r["from"], r["message"]) for r in contacts["requests"]] == [(dan.id, "hi")]
    (trip,) = json.loads(entries["groups.json"])["groups"]
    assert trip["cid"] == group
    assert {m["user"] for m in trip["members"]} == {ann.id, bob.id, cat.id}
    assert json.loads(entries["inbox.json"])["notices"]  # the friend request, the group

    # Every message ann can read, exactly as the history route gives it to her.
    listed = json.loads(entries["conversations.json"])["conversations"]
    assert {c["conversation"]["cid"] for c in listed} == {direct, group}
    for item in listed:
        cid = item["conversation"]["cid"]
        exported = json.loads(entries[item["path"]])
        assert exported["cid"] == cid
        assert exported["messages"] == await _all_messages(api.http, token, cid)
    direct_messages = json.loads(entries[f"conversations/{direct.replace(':', '_')}.json"])
    by_seq = {m["seq"]: m for m in direct_messages["messages"]}
    for ack, text in zip(acks, [*texts, "from bob"], strict=False):
        if ack.cid == direct and ack.seq != acks[3].seq:
            assert by_seq[ack.seq]["body"]["text"] == text  # byte for byte
    assert acks[3].seq not in by_seq  # hidden by ann: left out
    group_messages = json.loads(entries[f"conversations/{group.replace(':', '_')}.json"])
    tombstone = next(m for m in group_messages["messages"] if m["seq"] == recalled.seq)
    assert tombstone.get("recalled") is True
    assert b"bob will recall this" not in everything

    # Her files, byte for byte; not bob's.
    files = {f["id"]: f for f in json.loads(entries["files.json"])["files"]}
    assert set(files) == {sent_a.file.id, sent_b.file.id}
    for sent, payload in ((sent_a, payload_a), (sent_b, payload_b)):
        info = files[sent.file.id]
        data = entries[info["path"]]
        assert (
            hashlib.sha256(data).hexdigest()
            == info["sha256"]
            == hashlib.sha256(payload).hexdigest()
        )
    assert files[sent_b.file.id]["path"] == f"files/{sent_b.file.id}/ev_il_name.txt"
    assert bobs.file.id.encode() not in b"".join(
        entries[name] for name in entries if name.startswith(("files", "manifest"))
    )

    # Nothing of anyone else's private data.
    assert b"bob-secret@example.com" not in everything
    assert b"bob-cat-secret" not in everything
    assert bob_cat.encode() not in everything
    assert bob_cat.replace(":", "_").encode() not in everything
