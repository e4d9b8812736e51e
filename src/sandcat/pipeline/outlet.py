"""What the send path needs of client connections: somewhere to push frames."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Outlet(Protocol):
    """One client connection, seen from the send path."""

    @property
    def device(self) -> str: ...

    def push(self, data: bytes) -> None:
        """Queue an encoded frame; never blocks (a full queue drops the client)."""
        ...


class Directory(Protocol):
    def outlets(self, user: str) -> Iterable[Outlet]:
        """The live connections of ``user`` on this instance."""
        ...
