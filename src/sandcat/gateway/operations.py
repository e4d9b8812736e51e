"""What each request frame does, once the session state machine admits it.

The reader of a connection calls ``hello`` for the first frame and ``handle``
for every later one, one at a time. Errors are raised as ``SandcatError`` and
turned into ERR replies by the connection. SEND goes to the pipeline and is
answered by the router after commit; everything else is answered here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import msgpack

from sandcat.clock import Clock
from sandcat.config import Config
from sandcat.errors import BadRequest, RateLimited, Unauthorized
from sandcat.gateway.peer import Peer
from sandcat.gateway.timeline import Timeline, entries
from sandcat.metrics import ServerMetrics
from sandcat.pipeline import Pipeline, SendRequest
from sandcat.protocol import (
    Auth,
    Call,
    ConvSet,
    Edit,
    Hello,
    Hide,
    History,
    InboxAck,
    InboxPull,
    Limits,
    Notify,
    Ok,
    Ping,
    PresenceSet,
    Pull,
    Read,
    Readers,
    ReadState,
    Recall,
    Send,
    Sync,
    Typing,
    encode,
    notice_body,
    validate_content,
)
from sandcat.store.history import HistoryStore
from sandcat.store.inbox import InboxPage
from sandcat.store.messages import MessageStore, NewMessage
from sandcat.view import conv_body

if TYPE_CHECKING:
    from sandcat.gateway.conversations import ConversationFrames
    from sandcat.gateway.hub import Hub
    from sandcat.gateway.signals import Signals

#: When a user at the connection cap may try again (a client's reconnect backoff).
_CONNECTIONS_RETRY_MS = 5000


class Identity(Protocol):
    @property
    def user(self) -> str: ...
    @property
    def session(self) -> str: ...
    @property
    def expires_at_ms(self) -> int: ...


class InboxReader(Protocol):
    async def pull(
        self, user: str, device: str, *, after: int | None = None, limit: int = 50
    ) -> InboxPage: ...

    async def ack(self, user: str, device: str, upto: int) -> int: ...

    async def head(self, user: str) -> int: ...


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Identity:
        """The identity behind a valid, unrevoked access token; ``Unauthorized`` otherwise."""
        ...


class AttachmentChecker(Protocol):
    async def attachments(self, user: str, kind: int, body: object) -> tuple[str, ...]:
        """The upload ids a valid body of ``kind`` refers to, once checked; ``BadRequest``
        for an unknown, unfinished or foreign upload."""
        ...


class Operations:
    def __init__(
        self,
        *,
        accounts: Authenticator,
        inbox: InboxReader,
        store: MessageStore,
        pipeline: Pipeline,
        hub: Hub,
        config: Config,
        clock: Clock,
        limits: Limits,
        metrics: ServerMetrics | None = None,
        files: AttachmentChecker | None = None,
        signals: Signals | None = None,
        conversations: ConversationFrames | None = None,
        history: HistoryStore,
    ) -> None:
        self._signals = signals
        self._conversations = conversations
        self._timeline = Timeline(
            history=history,
            pipeline=pipeline,
            chat=config.chat,
            limits=limits,
            max_reply_bytes=config.gateway.max_reply_bytes,
        )
        self._metrics = metrics or ServerMetrics.create()
        self._files = files
        self._accounts = accounts
        self._inbox = inbox
        self._store = store
        self._pipeline = pipeline
        self._hub = hub
        self._config = config
        self._clock = clock
        self._limits = limits

    async def hello(self, conn: Peer, frame: Hello) -> None:
        token = frame.token or conn.bearer
        if not token:
            raise Unauthorized("HELLO needs a token (or an Authorization header on the upgrade)")
        identity = await self._accounts.authenticate(token)
        cap = self._config.gateway.max_connections_per_user
        if self._hub.connections_besides(identity.user, frame.device) >= cap:
            raise RateLimited(
                f"this account already has {cap} connections here "
                "(gateway.max_connections_per_user); close one first",
                retry_after_ms=_CONNECTIONS_RETRY_MS,
            )
        conn.user, conn.device, conn.session = identity.user, frame.device, identity.session
        conn.renew(identity.expires_at_ms)
        self._hub.register(conn)
        conn.push(
            encode(
                Ok(
                    rid=frame.rid,
                    body={
                        "user": conn.user,
                        "device": conn.device,
                        "session": conn.session,
                        "server_time": self._clock(),
                        "heartbeat_ms": int(self._config.gateway.heartbeat_s * 1000),
                        "max_frame_bytes": self._limits.max_frame_bytes,
                    },
                )
            )
        )
        if self._signals is not None:
            await self._signals.connected(conn)

    def left(self, conn: Peer) -> None:
        """An authenticated connection closed (after the hub forgot it); never blocks."""
        if self._signals is not None:
            self._signals.left(conn)

    async def handle(self, conn: Peer, frame: object) -> None:
        match frame:
            case Send():
                await self._send(conn, frame)
            case Ping():
                conn.push(encode(Ok(rid=frame.rid, body={"server_time": self._clock()})))
            case Pull():
                await self._pull(conn, frame)
            case Sync():
                await self._sync(conn, frame)
            case Read():
                await self._read(conn, frame)
            case Auth():
                await self._auth(conn, frame)
            case InboxPull():
                await self._inbox_pull(conn, frame)
            case InboxAck():
                await self._inbox.ack(conn.user, conn.device, frame.upto)
                conn.push(encode(Ok(rid=frame.rid, body={})))
            case Typing() | PresenceSet() | Call() if self._signals is not None:
                await self._signals.handle(conn, frame)
            case ConvSet() | Readers() if self._conversations is not None:
                await self._conversations.handle(conn, frame)
            case Recall() | Edit() | History() | Hide():
                await self._revise(conn, frame)
            case _:  # pragma: no cover - the session state machine admits nothing else
                raise BadRequest(f"unexpected frame {type(frame).__name__}")

    async def _send(self, conn: Peer, frame: Send) -> None:
        try:
            validate_content(frame.kind, frame.body, self._limits)
        except ValueError as exc:
            raise BadRequest(f"body: {exc}", field="body") from exc
        forward = await self._timeline.check_send(conn.user, frame)
        attached: tuple[str, ...] = ()
        if self._files is not None:
            attached = await self._files.attachments(conn.user, frame.kind, frame.body)
        message = NewMessage(
            sender=conn.user,
            device=conn.device,
            cid=frame.cid,
            cmid=frame.cmid,
            kind=frame.kind,
            body=msgpack.packb(frame.body, use_bin_type=True),
            reply_to=frame.reply_to,
            mentions=frame.mentions,
            files=attached,
            forward=forward,
        )
        await self._pipeline.submit(
            SendRequest(
                message=message,
                body=frame.body,
                origin=conn,
                rid=frame.rid,
                received=time.perf_counter(),
            )
        )

    async def _revise(self, conn: Peer, frame: Recall | Edit | History | Hide) -> None:
        match frame:
            case Recall():
                await self._timeline.recall(conn, frame)
            case Edit():
                await self._timeline.edit(conn, frame)
            case History():
                await self._timeline.history(conn, frame)
            case Hide():
                await self._timeline.hide(conn, frame, now_ms=self._clock())

    async def _pull(self, conn: Peer, frame: Pull) -> None:
        started = time.perf_counter()
        page = await self._store.pull(conn.user, frame.cid, after=frame.after, limit=frame.limit)
        self._metrics.store_read.observe(time.perf_counter() - started)
        msgs, cut = entries(conn.user, page.messages, self._config.gateway.max_reply_bytes)
        conn.push(
            encode(
                Ok(
                    rid=frame.rid,
                    body={
                        "msgs": msgs,
                        "more": page.more or cut,
                        "min_seq": page.min_seq,
                        "max_seq": page.max_seq,
                    },
                )
            )
        )

    async def _sync(self, conn: Peer, frame: Sync) -> None:
        started = time.perf_counter()
        states, version = await self._store.conversations(
            conn.user, since=frame.since, limit=frame.limit
        )
        self._metrics.store_read.observe(time.perf_counter() - started)
        body = {
            "convs": [conv_body(conn.user, state) for state in states],
            "version": version,
            "inbox_max": await self._inbox.head(conn.user),
        }
        if frame.limit is not None:
            body["more"] = len(states) >= frame.limit
        conn.push(encode(Ok(rid=frame.rid, body=body)))

    async def _inbox_pull(self, conn: Peer, frame: InboxPull) -> None:
        page = await self._inbox.pull(conn.user, conn.device, after=frame.after, limit=frame.limit)
        notices = [
            notice_body(Notify(nseq=n.nseq, type=n.type, data=n.data, ts=n.created_at))
            for n in page.notices
        ]
        conn.push(
            encode(
                Ok(
                    rid=frame.rid,
                    body={"notices": notices, "more": page.more, "max_nseq": page.max_nseq},
                )
            )
        )

    async def _read(self, conn: Peer, frame: Read) -> None:
        mark = await self._store.mark_read(conn.user, frame.cid, frame.seq, now_ms=self._clock())
        conn.push(encode(Ok(rid=frame.rid, body={})))
        if not mark.advanced:
            return
        state = encode(ReadState(cid=frame.cid, user=conn.user, seq=mark.seq))
        targets: list[tuple[str, str | None]] = [(conn.user, conn.device)]
        self._hub.push_each(targets + [(observer, None) for observer in mark.observers], state)

    async def _auth(self, conn: Peer, frame: Auth) -> None:
        identity = await self._accounts.authenticate(frame.token)
        if identity.user != conn.user:
            raise Unauthorized("AUTH must present a token of the connected user")
        conn.session = identity.session
        conn.renew(identity.expires_at_ms)
        conn.push(encode(Ok(rid=frame.rid, body={"expires_at": identity.expires_at_ms})))
