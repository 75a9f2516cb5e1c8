"""Sending mail by SMTP (plain text, with an HTML alternative when given; WERKPLAATS_SMTP_HOST/PORT,
WERKPLAATS_MAIL_FROM), for every service that
mails people: scheduling's notices, intake's sign-in links and invitations."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from .config import Settings


@dataclass(frozen=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    data: bytes
    params: dict[str, str] = field(default_factory=dict)


def message_id_header(message_id: str) -> str:
    """The Message-ID header of the mail sent for ``message_id``: every attempt of one notice carries the
    same one, so a receiver can drop a second copy (delivery is at least once)."""
    return f"<{message_id}@werkplaats>"


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        return cls(settings.smtp_host, settings.smtp_port, settings.mail_from)

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> None:
        """Send ``body`` as text/plain; with ``html``, as multipart/alternative with that HTML beside it."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id_header(message_id)
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        for a in attachments:
            msg.add_attachment(a.data, maintype=a.maintype, subtype=a.subtype, filename=a.filename,
                               params=dict(a.params))
        # after set_content and add_attachment, which move Content-* headers into the parts
        msg["Content-Language"] = language
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)
