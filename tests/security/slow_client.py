"""A WebSocket client that reads only when told to, with a small receive buffer.

trio-websocket reads everything as it arrives; an attacker's client does not.
This one says HELLO, then sends whatever it is given and reads nothing until
``receive`` is called, so what it asked for piles up on the server's side.
"""

from __future__ import annotations

import socket

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    RejectConnection,
    Request,
)

from sandcat.protocol import Hello, Limits, Ok, ServerFrame, decode_server, encode

TIMEOUT_S = 10
#: Replies are as large as the server makes them (the test checks their size).
_ANY_SIZE = Limits(max_frame_bytes=1 << 30)


class Closed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"upgrade refused with HTTP {status}")
        self.status = status


class SlowReader:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._parts: list[bytes] = []

    @classmethod
    async def open(cls, port: int, token: str, *, device: str, rcvbuf: int = 4096) -> SlowReader:
        """Connected, upgraded and past HELLO."""
        reader = await cls.connect(port, rcvbuf=rcvbuf)
        reply = await reader.hello(token, device)
        assert isinstance(reply, Ok), reply
        return reader

    @classmethod
    async def connect(cls, port: int, *, rcvbuf: int = 4096) -> SlowReader:
        """Connected and upgraded (``Refused`` with the status if the server says no)."""
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connecting, so the window the server sees stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        with trio.fail_after(TIMEOUT_S):
            await sock.connect(("127.0.0.1", port))
            reader = cls(sock)
            upgrade = Request(host="127.0.0.1", target="/ws", subprotocols=["sandcat.v1"])
            await reader._write(reader._ws.send(upgrade))
            answer = await reader._event()
        if isinstance(answer, RejectConnection):
            sock.close()
            raise Refused(answer.status_code)
        assert isinstance(answer, AcceptConnection), answer
        return reader

    async def hello(self, token: str, device: str) -> ServerFrame:
        await self.send(encode(Hello(rid=1, token=token, device=device, platform="t")))
        return await self.receive()

    async def send(self, data: bytes) -> None:
        await self._write(self._ws.send(BytesMessage(data=data)))

    async def receive(self) -> ServerFrame:
        """The next frame; ``Closed`` with the server's code once it closed."""
        with trio.fail_after(TIMEOUT_S):
            while True:
                event = await self._event()
                if isinstance(event, CloseConnection):
                    raise Closed(event.code)
                if isinstance(event, BytesMessage):
                    self._parts.append(bytes(event.data))
                    if event.message_finished:
                        data, self._parts = b"".join(self._parts), []
                        return decode_server(data, _ANY_SIZE)

    def close(self) -> None:
        self._sock.close()

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[await self._sock.send(view) :]

    async def _event(self) -> Event:
        while True:
            for event in self._ws.events():
                return event
            data = await self._sock.recv(65536)
            self._ws.receive_data(data or None)
