"""Mail: the SMTP sender against a real SMTP server (aiosmtpd), the outbox
sender, the templates, and a postman that survives failures."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from sandcat.config import MailConfig
from sandcat.errors import ConfigError, Unavailable
from sandcat.mail import CodeTemplates, Mail, OutboxSender, Postman, SmtpSender, open_sender

MAIL = Mail(to="ann@example.com", subject="Your code", text="code 123456", html="<b>123456</b>")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
    ) -> AuthResult:
        self.logins.append((auth.login, auth.password))
        return AuthResult(success=auth.password == b"secret")


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield SmtpServer(port, inbox)
    controller.stop()


def plain_config(port: int, **extra: Any) -> MailConfig:
    return MailConfig(
        smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none",
        from_address="Sandcat <noreply@sandcat.test>", timeout_s=5, **extra,
    )  # fmt: skip


async def test_smtp_sender_delivers_text_and_html(smtp: SmtpServer) -> None:
    await SmtpSender(plain_config(smtp.port)).send(MAIL)
    (message,) = smtp.inbox.messages
    assert message["To"] == "ann@example.com"
    assert message["From"] == "Sandcat <noreply@sandcat.test>"
    assert message["Subject"] == "Your code"
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    assert parts["text/plain"].strip() == "code 123456"
    assert parts["text/html"].strip() == "<b>123456</b>"


async def test_smtp_sender_logs_in_with_credentials(smtp: SmtpServer) -> None:
    config = plain_config(smtp.port, smtp_username="sandcat", smtp_password="secret")
    await SmtpSender(config).send(MAIL)
    assert smtp.inbox.logins == [(b"sandcat", b"secret")]
    assert len(smtp.inbox.messages) == 1
    bad = plain_config(smtp.port, smtp_username="sandcat", smtp_password="wrong")
    bad = dataclasses.replace(bad, timeout_s=0.5)
    # A refused login (or a relay that stalls it) is an OSError, which the postman logs.
    with pytest.raises(OSError):  # noqa: PT011 - refused (535) or timed out: both OSError
        await SmtpSender(bad).send(MAIL)
    assert len(smtp.inbox.messages) == 1


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_smtp_sender_upgrades_with_starttls_and_checks_the_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        trusted = MailConfig(
            smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls", smtp_ca_file=str(cert)
        )
        await SmtpSender(trusted).send(MAIL)
        assert len(inbox.messages) == 1
        untrusted = MailConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls")
        with pytest.raises(ssl.SSLError):
            await SmtpSender(untrusted).send(MAIL)
    finally:
        controller.stop()


async def test_outbox_sender_writes_an_eml_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sender = open_sender(MailConfig(), tmp_path)
    assert isinstance(sender, OutboxSender)
    with caplog.at_level("INFO"):
        await sender.send(MAIL)
    (path,) = (tmp_path / "outbox").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "ann@example.com"
    assert "ann@example.com" in caplog.text
    # The code is a credential: it goes to the file, never to the log.
    assert "123456" not in caplog.text
    assert isinstance(open_sender(plain_config(25), tmp_path), SmtpSender)


@dataclass
class FlakySender:
    sent: list[Mail] = field(default_factory=list)

    async def send(self, mail: Mail) -> None:
        if mail.to.startswith("bad"):
            raise ConnectionRefusedError("relay down")
        if mail.to.startswith("slow"):
            await trio.sleep_forever()
        self.sent.append(mail)


async def test_postman_logs_failures_and_keeps_going(caplog: pytest.LogCaptureFixture) -> None:
    sender = FlakySender()
    postman = Postman(sender, queue=10, timeout_s=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(postman.run)
        for to in ("bad@x.test", "slow@x.test", "good@x.test"):
            postman.post(Mail(to=to, subject="s", text="t", html="h"))
        await postman.aclose()
    assert [m.to for m in sender.sent] == ["good@x.test"]
    assert "bad@x.test" in caplog.text
    assert "slow@x.test" in caplog.text


async def test_a_full_mail_queue_is_unavailable() -> None:
    postman = Postman(FlakySender(), queue=1, timeout_s=1)
    postman.post(MAIL)
    with pytest.raises(Unavailable):
        postman.post(MAIL)


def test_templates_escape_html_and_can_come_from_a_directory(tmp_path: Path) -> None:
    mail = CodeTemplates.load("").render(to="a@x.test", code="<1>", purpose="reset", minutes=5)
    assert "&lt;1&gt;" in mail.html
    assert "<1>" in mail.text
    assert "reset your password" in mail.text
    assert "5 minutes" in mail.text
    (tmp_path / "code.txt").write_text("CODE=$code for $purpose", encoding="utf-8")
    custom = CodeTemplates.load(str(tmp_path)).render(
        to="a@x.test", code="654321", purpose="register", minutes=5
    )
    assert custom.text == "CODE=654321 for create your account"
    assert "654321" in custom.html
    with pytest.raises(ConfigError):
        CodeTemplates.load(str(tmp_path / "missing"))
