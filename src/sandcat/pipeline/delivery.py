"""Delivery: a committed message pushed as MSG to every local device of its members.

One function for every route a message takes to this instance's sockets:
the router (this instance's sends, once committed), the consumer (other
instances' sends, from the bus) and group system messages (committed with a
group change). Each MSG is encoded once for all recipients, and once more
with ``cmid`` and ``device`` for the sender's other devices
(protocol/SPEC.md §4.12, MSG). The sending connection gets its ack instead:
``origin`` when it is known here (the router), else the sender's device.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import msgpack

from sandcat.pipeline.outlet import Directory, Outlet
from sandcat.store.messages import StoredMessage
from sandcat.view import msg_push

log = logging.getLogger(__name__)

#: ``deliver``'s body when the caller has not decoded it (decoded once, when needed).
UNREAD: object = object()


def deliver(
    directory: Directory,
    message: StoredMessage,
    members: Iterable[str],
    *,
    body: object = UNREAD,
    origin: Outlet | None = None,
) -> int:
    """Push ``message`` to every local device of ``members`` but the one that sent it;
    how many devices it was pushed to."""
    plain: bytes | None = None
    own: bytes | None = None
    pushed = 0
    for member in members:
        mine = member == message.sender
        for outlet in directory.outlets(member):
            if outlet is origin or (origin is None and mine and outlet.device == message.device):
                continue
            if body is UNREAD:
                try:
                    body = msgpack.unpackb(message.body, raw=False)
                except (ValueError, TypeError) as exc:
                    log.warning(
                        "message %s/%d has an unreadable body: %s", message.cid, message.seq, exc
                    )
                    return 0
            if mine:
                own = own or msg_push(message, body, own=True)
                outlet.push(own)
            else:
                plain = plain or msg_push(message, body, own=False)
                outlet.push(plain)
            pushed += 1
    return pushed


class Delivery:
    """``deliver`` to one directory (the hub): what the domain's group changes push with."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def deliver(self, message: StoredMessage, members: Iterable[str]) -> None:
        deliver(self._directory, message, members)
