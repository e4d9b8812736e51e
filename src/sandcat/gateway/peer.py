"""What the frame handlers need of a client connection (``gateway.connection.Connection``).

``Operations``, the timeline and the conversation frames take a ``Peer``, not
the connection class, so the imports inside the gateway point one way: the
connection runs the handlers, the handlers never import the connection.
"""

from __future__ import annotations

from typing import Protocol

from sandcat.gateway.hub import Member


class Peer(Member, Protocol):
    """An authenticated (or authenticating) connection as the handlers see it."""

    user: str
    device: str
    session: str
    #: The token of the upgrade's Authorization header, if it had one.
    bearer: str | None

    def renew(self, expires_at_ms: int) -> None:
        """The session's access now expires at ``expires_at_ms`` (HELLO, AUTH)."""
        ...
