"""The verification-code mail, in text and HTML, from built-in or configured templates.

Templates use ``string.Template`` placeholders: ``$code``, ``$minutes`` and
``$purpose`` (what the code is for, in words). A configured directory holds
``code.txt`` and ``code.html``; a missing file falls back to the built-in one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from string import Template

from sandcat.errors import ConfigError
from sandcat.mail.postman import Mail

_TEXT = """Your Sandcat verification code is $code

Use it to $purpose. It expires in $minutes minutes and works once.
If you did not ask for it, ignore this mail.
"""
_HTML = """<!doctype html>
<html><body style="font-family: sans-serif">
<p>Your Sandcat verification code is</p>
<p style="font-size: 28px; letter-spacing: 4px"><b>$code</b></p>
<p>Use it to $purpose. It expires in $minutes minutes and works once.<br>
If you did not ask for it, ignore this mail.</p>
</body></html>
"""
_PURPOSES = {
    "register": "create your account",
    "reset": "reset your password",
    "contact": "add this address to your account",
}


@dataclass(frozen=True, slots=True)
class CodeTemplates:
    subject: str
    text: Template
    html: Template

    @classmethod
    def load(
        cls, directory: str, *, subject: str = "Your Sandcat verification code"
    ) -> CodeTemplates:
        text, markup = _TEXT, _HTML
        if directory:
            folder = Path(directory)
            if not folder.is_dir():
                raise ConfigError("mail.template_dir", directory, "not a directory")
            if (folder / "code.txt").is_file():
                text = (folder / "code.txt").read_text(encoding="utf-8")
            if (folder / "code.html").is_file():
                markup = (folder / "code.html").read_text(encoding="utf-8")
        return cls(subject, Template(text), Template(markup))

    def render(self, *, to: str, code: str, purpose: str, minutes: int) -> Mail:
        words = _PURPOSES.get(purpose, purpose)
        values = {"code": code, "minutes": str(minutes), "purpose": words}
        escaped = {key: html.escape(value) for key, value in values.items()}
        return Mail(
            to=to,
            subject=self.subject,
            text=self.text.safe_substitute(values),
            html=self.html.safe_substitute(escaped),
        )
