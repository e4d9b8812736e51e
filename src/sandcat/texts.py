"""Text messages to phone numbers (verification codes): the sender interface and
its embedded default.

``TextSender`` is what the use cases need; a deployment plugs in an SMS
gateway behind it. The embedded default, ``OutboxTextSender``, writes each
message to ``DATA_DIR/texts/<id>.txt`` (0600: the codes are live), like mail's
``DATA_DIR/outbox`` when no SMTP relay is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

from sandcat.ids import new_id
from sandcat.private_files import make_private_dir, private_opener

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TextMessage:
    #: E.164, normalised.
    to: str
    text: str


class TextSender(Protocol):
    async def send(self, message: TextMessage) -> None:
        """Deliver one text; raises ``OSError`` on failure."""


class OutboxTextSender:
    """Texts written to files in ``directory`` (the embedded default)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: TextMessage) -> None:
        data = f"To: {message.to}\n\n{message.text}\n".encode()

        def write() -> Path:
            make_private_dir(self.directory)
            path = self.directory / f"{new_id()}.txt"
            with open(path, "xb", opener=private_opener) as out:
                out.write(data)
            return path

        path = await trio.to_thread.run_sync(write)
        log.info("text to %s written to %s", message.to, path)
