"""Where committed notices go: the live push to the user's devices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sandcat.store.inbox import Notice


class Notifier(Protocol):
    def publish(self, notices: Sequence[Notice]) -> None:
        """Push committed notices to every connected device of their users; never blocks."""
