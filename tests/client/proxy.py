"""A TCP proxy between an SDK session and the server, to break the network on cue.

``cut()`` drops every connection (the client sees the TCP stream end, as on
a network failure), ``online = False`` refuses new ones, and ``mute = True``
swallows what the server sends (an ack lost in flight).
"""

from __future__ import annotations

import trio


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.online = True
        self.mute = False
        self.accepted = 0
        self._scopes: set[trio.CancelScope] = set()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def cut(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if not self.online:
                return
            self.accepted += 1
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                return
            async with upstream, trio.open_nursery() as nursery:
                self._scopes.add(nursery.cancel_scope)
                nursery.start_soon(self._pump, client, upstream, False, nursery.cancel_scope)
                nursery.start_soon(self._pump, upstream, client, True, nursery.cancel_scope)
            self._scopes.discard(nursery.cancel_scope)

    async def _pump(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        down: bool,
        scope: trio.CancelScope,
    ) -> None:
        try:
            while data := await source.receive_some():
                if not (down and self.mute):
                    await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()  # one direction ended: end the other, like a closed socket
