"""A real hypercorn server on 127.0.0.1 with a temporary SQLite database, and a client."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio
from quart_trio import QuartTrio

from sandcat.api import create_app, serve_http
from sandcat.app import Services, build_services
from sandcat.blobs import LocalBlobStore
from sandcat.clock import system_clock
from sandcat.config import ChatConfig, Config
from sandcat.domain.accounts import Accounts
from sandcat.domain.admin import Admin
from sandcat.domain.conversations import Conversations
from sandcat.domain.direct_uploads import DirectUploads
from sandcat.domain.file_links import FileLinks
from sandcat.domain.files import Files
from sandcat.export import Exports, ExportSources
from sandcat.mail import Mail
from sandcat.store.backends import Stores
from sandcat.store.inbox import Notice
from sandcat.store.sql.accounts import SqlAccountStore
from sandcat.store.sql.admin import SqlAdminStore
from sandcat.store.sql.census import SqlCensusStore
from sandcat.store.sql.contacts import SqlContactStore
from sandcat.store.sql.conversation_list import SqlConversationStore
from sandcat.store.sql.files import SqlFileStore
from sandcat.store.sql.groups.backend import SqlGroupStore
from sandcat.store.sql.history import SqlHistoryStore
from sandcat.store.sql.inbox import SqlInboxStore
from sandcat.store.sql.revocation_log import SqlRevocationLog
from sandcat.store.sql.token_keys import TokenKeyStore
from sandcat.store.sqlite import Database, open_database
from sandcat.store.sqlite.append import message_store
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from sandcat.texts import TextMessage
from tests.passwords import FAST_PASSWORDS

SECRET = b"test-secret-of-at-least-32-bytes!!"


@dataclass
class RecordingCloser:
    calls: list[tuple[str, str | None, int, str]] = field(default_factory=list)

    def end_sessions(
        self, user: str, *, session: str | None = None, code: int = 4007, reason: str = ""
    ) -> None:
        self.calls.append((user, session, code, reason))


@dataclass
class RecordingNotifier:
    notices: list[Notice] = field(default_factory=list)
    settings: list[tuple[str, Any]] = field(default_factory=list)

    def publish(self, notices: Any) -> None:
        self.notices.extend(notices)

    def settings_changed(self, user: str, settings: Any, *, skip_device: str | None) -> None:
        self.settings.append((user, settings))


@dataclass
class RecordingMailbox:
    mails: list[Mail] = field(default_factory=list)

    def post(self, mail: Mail) -> None:
        self.mails.append(mail)


@dataclass
class RecordingTexts:
    texts: list[TextMessage] = field(default_factory=list)

    async def send(self, message: TextMessage) -> None:
        self.texts.append(message)


@dataclass
class ManualClock:
    now_ms: int = field(default_factory=system_clock)

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@dataclass
class Api:
    app: QuartTrio
    client: httpx.AsyncClient
    db: Database
    accounts: Accounts
    closer: RecordingCloser
    clock: ManualClock
    ready: list[Any]
    services: Services
    notifier: RecordingNotifier
    mailbox: RecordingMailbox
    texts: RecordingTexts = field(default_factory=RecordingTexts)

    async def register(self, username: str, password: str = "correct horse") -> dict[str, Any]:
        reply = await self.client.post(
            "/api/v1/auth/register", json={"username": username, "password": password}
        )
        assert reply.status_code == 201, reply.text
        user: dict[str, Any] = reply.json()["user"]
        return user

    async def login(self, login: str, password: str = "correct horse", **extra: str) -> Any:
        reply = await self.client.post(
            "/api/v1/auth/login", json={"login": login, "password": password, **extra}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()

    def code_for(self, address: str) -> str:
        """The last code mailed or texted to ``address``."""
        sent = [m.text for m in self.mailbox.mails if m.to == address]
        sent += [t.text for t in self.texts.texts if t.to == address]
        match = re.search(r"\b([0-9]{6})\b", sent[-1])
        assert match is not None, sent[-1]
        return match.group(1)

    async def confirm(self, login: str, **contacts: str) -> None:
        """Log ``login`` in and add ``email`` / ``phone`` (normalised) with their
        codes, asking for them first unless one was sent (at registration)."""
        tokens = await self.login(login)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        for kind, address in contacts.items():
            sent = [m for m in [*self.mailbox.mails, *self.texts.texts] if m.to == address]
            if not sent:  # not asked for at registration: ask now
                asked = await self.client.patch(
                    "/api/v1/users/me", json={kind: address}, headers=headers
                )
                assert asked.json()["pending"] == [kind], asked.text
            body = {kind: address, f"{kind}_code": self.code_for(address)}
            reply = await self.client.patch("/api/v1/users/me", json=body, headers=headers)
            assert reply.status_code == 200, reply.text

    async def user(self, username: str) -> tuple[str, dict[str, str]]:
        """Register and log in ``username``; its id and bearer headers."""
        user = await self.register(username)
        tokens = await self.login(username)
        return user["id"], {"Authorization": f"Bearer {tokens['access_token']}"}

    async def befriend(self, a: tuple[str, dict[str, str]], b: tuple[str, dict[str, str]]) -> None:
        reply = await self.client.post("/api/v1/friends/requests", json={"to": b[0]}, headers=a[1])
        assert reply.status_code == 201, reply.text
        request_id = reply.json()["request"]["id"]
        reply = await self.client.post(
            f"/api/v1/friends/requests/{request_id}/accept", headers=b[1]
        )
        assert reply.status_code == 200, reply.text


def build_config(**sections: Any) -> Config:
    defaults: dict[str, Any] = {"chat": ChatConfig(max_group_members=4)}
    defaults.update(sections)
    return Config(**defaults)


async def open_api(
    tmp_path: Path, config: Config, ready: Callable[[], bool] | None = None
) -> AsyncIterator[Api]:
    clock = ManualClock()
    closer = RecordingCloser()
    notifier = RecordingNotifier()
    mailbox = RecordingMailbox()
    texts = RecordingTexts()
    flag: list[Any] = [True]
    async with open_database(tmp_path / "db.sqlite") as db, trio.open_nursery() as nursery:
        stores = Stores(
            kind="sqlite",
            accounts=SqlAccountStore(db, SQLITE),
            contacts=SqlContactStore(db, SQLITE),
            groups=SqlGroupStore(db, SQLITE),
            messages=message_store(db),
            files=SqlFileStore(db, SQLITE),
            inbox=SqlInboxStore(db, SQLITE),
            conversations=SqlConversationStore(db, SQLITE),
            history=SqlHistoryStore(db, SQLITE),
            token_keys=TokenKeyStore(db, SQLITE),
            census=SqlCensusStore(db, SQLITE),
            admin=SqlAdminStore(db, SQLITE),
            revocation_log=SqlRevocationLog(db, SQLITE, clock=clock),
        )
        services = build_services(
            stores,
            config,
            secret=SECRET,
            clock=clock,
            notifier=notifier,
            mailbox=mailbox,
            passwords=FAST_PASSWORDS,
            texts=texts,
        )
        accounts = services.accounts
        blobs = LocalBlobStore(tmp_path / "blobs")
        await blobs.open_store()
        files = Files(
            stores.files, blobs, config=config.files, spool=tmp_path / "spool", clock=clock
        )
        await files.prepare_spool()
        app = create_app(
            accounts=accounts,
            contacts=services.contacts,
            groups=services.groups,
            conversations=Conversations(
                stores.conversations, stores.messages, listener=notifier, clock=clock
            ),
            profiles=services.profiles,
            codes=services.codes,
            inbox=services.inbox,
            github=services.github,
            files=files,
            links=FileLinks(SECRET, ttl_s=config.files.signed_url_ttl_s, clock=clock),
            direct=DirectUploads(files, None, clock=clock),
            sessions=closer,
            config=config,
            ready=ready or (lambda: bool(flag[0])),
            history=stores.history,
            clock=clock,
            admin=Admin(
                accounts=stores.accounts,
                store=stores.admin,
                groups=services.groups,
                contacts=services.contacts,
                inbox=stores.inbox,
                passwords=FAST_PASSWORDS,
                clock=clock,
                revocations=stores.revocation_log,
                closer=lambda user, session: closer.end_sessions(user, session=session),
                notifier=notifier,
            ),
            exports=Exports(
                ExportSources.of(stores, blobs),
                interval_s=config.http.export_interval_s,
                clock=clock,
            ),
        )
        shutdown = trio.Event()
        port = await nursery.start(
            partial(serve_http, app, host="127.0.0.1", port=0, shutdown_trigger=shutdown.wait)
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Api(
                app, client, db, accounts, closer, clock, flag, services, notifier, mailbox, texts
            )
        shutdown.set()


#: A cold start on a loaded machine: imports are done, but CPU is short.
_THREAD_START_TIMEOUT_S = 60


@contextmanager
def api_in_thread(tmp_path: Path, config: Config) -> Iterator[str]:
    """`open_api` on a Trio loop of its own in a thread; yields its base URL.

    pytest-trio's fixtures live for one test, so every ``api`` is a new server.
    Tests that only read a server (no accounts, no state) can share this one for
    a whole module; they talk to it over real sockets like to any other.
    """
    ready = threading.Event()
    errors: list[BaseException] = []
    running: dict[str, Any] = {}

    async def serve() -> None:
        done = trio.Event()
        async for api in open_api(tmp_path, config):
            running.update(
                url=str(api.client.base_url), done=done, token=trio.lowlevel.current_trio_token()
            )
            ready.set()
            await done.wait()

    def thread_main() -> None:
        try:
            trio.run(serve)
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="api-in-thread", daemon=True)
    thread.start()
    try:
        if not ready.wait(_THREAD_START_TIMEOUT_S):
            raise RuntimeError(f"the shared API did not start in {_THREAD_START_TIMEOUT_S} s")
        if errors:
            raise errors[0]
        yield running["url"]
    finally:
        if "done" in running:
            trio.from_thread.run_sync(running["done"].set, trio_token=running["token"])
        thread.join(_THREAD_START_TIMEOUT_S)
    if errors:
        raise errors[0]
