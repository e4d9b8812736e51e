"""Outgoing mail: verification codes over SMTP, or into the outbox directory."""

from sandcat.mail.postman import Mail, MailSender, Postman
from sandcat.mail.senders import OutboxSender, SmtpSender, open_sender
from sandcat.mail.templates import CodeTemplates

__all__ = [
    "CodeTemplates",
    "Mail",
    "MailSender",
    "OutboxSender",
    "Postman",
    "SmtpSender",
    "open_sender",
]
