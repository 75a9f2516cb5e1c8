"""Sending notices by SMTP; texts come from templates, Dutch by default, English on request."""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    return SUBJECTS[kind][lang], render_text(kind, lang, context)


def render_text(name: str, language: str, context: dict[str, Any]) -> str:
    lang = language if language in LANGUAGES else "nl"
    return _env.get_template(f"{name}.{lang}.txt").render(**context).strip("\n") + "\n"


@dataclass(frozen=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    data: bytes
    params: dict[str, str] = field(default_factory=dict)


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = ()) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{message_id}@werkplaats>"
        msg.set_content(body)
        for a in attachments:
            msg.add_attachment(a.data, maintype=a.maintype, subtype=a.subtype, filename=a.filename,
                               params=dict(a.params))
        # after set_content and add_attachment, which move Content-* headers into the parts
        msg["Content-Language"] = language
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)
