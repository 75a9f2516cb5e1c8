"""Sending notices by SMTP; texts come from templates, Dutch by default, English on request."""

from __future__ import annotations

import json
import os
import smtplib
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates")
LANGUAGES = ("nl", "en")

_env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,  # noqa: S701 - plain text
                   keep_trailing_newline=True)
with open(os.path.join(TEMPLATES, "subjects.json"), encoding="utf-8") as _fh:
    SUBJECTS: dict[str, dict[str, str]] = json.load(_fh)


def render(kind: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    lang = language if language in LANGUAGES else "nl"
    return SUBJECTS[kind][lang], _env.get_template(f"{kind}.{lang}.txt").render(**context)


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{message_id}@werkplaats>"
        msg.set_content(body)
        msg["Content-Language"] = language  # after set_content, which resets Content-* headers
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)
