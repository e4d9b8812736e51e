"""The postman: a bounded queue of mails and the one task that sends them.

Requests that produce mail (verification codes) only queue it, so they answer
at once and in the same time whether or not a mail is sent at all: the answer
must not tell whether an email address is registered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import trio

from sandcat.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


class MailSender(Protocol):
    async def send(self, mail: Mail) -> None:
        """Deliver one mail; raises ``OSError`` (or ``smtplib.SMTPException``) on failure."""


class Postman:
    """Queues mail for ``run``; ``post`` never blocks."""

    def __init__(self, sender: MailSender, *, queue: int, timeout_s: float) -> None:
        self._sender = sender
        self._timeout_s = timeout_s
        self._in, self._out = trio.open_memory_channel[Mail](queue)

    def post(self, mail: Mail) -> None:
        """Queue ``mail``; ``Unavailable`` if the queue is full."""
        try:
            self._in.send_nowait(mail)
        except trio.WouldBlock as exc:
            raise Unavailable("mail queue is full; try again later") from exc

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send queued mail one at a time until cancelled or closed; a mail that
        fails is logged and dropped."""
        task_status.started()
        async for mail in self._out:
            try:
                with trio.fail_after(self._timeout_s):
                    await self._sender.send(mail)
            except (OSError, trio.TooSlowError) as exc:
                # smtplib.SMTPException is an OSError. One mail that cannot be
                # sent must not stop the postman; the user asks for a new code.
                log.warning("mail to %s not sent: %r", mail.to, exc)

    async def aclose(self) -> None:
        await self._in.aclose()
