"""Mail senders: SMTP (a relay, with STARTTLS, TLS or neither), or the outbox.

``smtplib`` is blocking, so each mail is sent from a worker thread with a
socket timeout. The outbox sender, the embedded default, writes each mail as
an ``.eml`` file into ``DATA_DIR/outbox`` and logs where it went (not its
body: a verification code is a credential and never goes to a log).
"""

from __future__ import annotations

import email.message
import email.utils
import logging
import smtplib
import ssl
from pathlib import Path

import trio

from sandcat.config import MailConfig
from sandcat.ids import new_id
from sandcat.mail.postman import Mail, MailSender
from sandcat.private_files import make_private_dir, private_opener

log = logging.getLogger(__name__)


def _message(mail: Mail, sender: str) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain="sandcat")
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


class OutboxSender:
    def __init__(self, directory: Path, *, sender: str) -> None:
        self._directory = directory
        self._sender = sender

    async def send(self, mail: Mail) -> None:
        data = _message(mail, self._sender).as_bytes()

        def write() -> Path:
            make_private_dir(self._directory)
            path = self._directory / f"{new_id()}.eml"
            # Mails hold live codes: readable by the server's user only.
            with open(path, "xb", opener=private_opener) as out:
                out.write(data)
            return path

        path = await trio.to_thread.run_sync(write)
        log.info("mail to %s (%s) written to %s", mail.to, mail.subject, path)


class SmtpSender:
    def __init__(self, config: MailConfig) -> None:
        self._config = config

    async def send(self, mail: Mail) -> None:
        message = _message(mail, self._config.from_address)
        await trio.to_thread.run_sync(self._send_sync, message)

    def _send_sync(self, message: email.message.EmailMessage) -> None:
        config = self._config
        context = ssl.create_default_context()
        if config.smtp_ca_file:
            context.load_verify_locations(config.smtp_ca_file)
        client: smtplib.SMTP
        if config.smtp_tls == "tls":
            client = smtplib.SMTP_SSL(
                config.smtp_host, config.smtp_port, timeout=config.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s)
        with client:
            if config.smtp_tls == "starttls":
                client.starttls(context=context)
            if config.smtp_username:
                client.login(config.smtp_username, config.smtp_password)
            client.send_message(message)


def open_sender(config: MailConfig, data_dir: Path) -> MailSender:
    """SMTP when ``mail.smtp_host`` is set, else the outbox in the data directory."""
    if config.smtp_host:
        return SmtpSender(config)
    return OutboxSender(data_dir / "outbox", sender=config.from_address)
