"""Sending mail by SMTP (plain text, with an HTML alternative when given; WERKPLAATS_SMTP_HOST/PORT,
WERKPLAATS_MAIL_FROM), for every service that
mails people: scheduling's notices, intake's sign-in links and invitations.

``SmtpMailer.send`` opens one connection per mail. ``SmtpMailer.connection()`` gives one connection kept open
across mails (a sender thread's own): reopened after ``per_connection`` mails (WERKPLAATS_MAIL_PER_CONNECTION)
and when the server dropped or closed it before the mail's data was handed over - then the mail is tried once
more on a new connection; a failure once the data was on its way is the caller's to record and retry (with the
same Message-ID, so a receiver can drop a second copy)."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from types import TracebackType
from typing import Any

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


class _Smtp(smtplib.SMTP):
    """An SMTP connection that knows whether the current mail's data was handed over (``data`` called)."""

    data_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0, per_connection: int = 100) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self.per_connection = per_connection

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        return cls(settings.smtp_host, settings.smtp_port, settings.mail_from,
                   per_connection=settings.mail_per_connection)

    def compose(self, *, to: str, subject: str, body: str, message_id: str, language: str,
                attachments: Sequence[Attachment] = (), html: str | None = None) -> EmailMessage:
        """``body`` as text/plain; with ``html``, as multipart/alternative with that HTML beside it."""
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
        return msg

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> None:
        """Send one mail on a connection of its own."""
        msg = self.compose(to=to, subject=subject, body=body, message_id=message_id, language=language,
                           attachments=attachments, html=html)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)

    def connection(self) -> SmtpConnection:
        """One connection kept open across mails (use it from one thread; close it, or use ``with``)."""
        return SmtpConnection(self)


class SmtpConnection:
    """One SMTP connection of an ``SmtpMailer``, opened at the first mail and kept open across mails."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer, self.sender = mailer, mailer.sender
        self._smtp: _Smtp | None = None
        self._sent = 0  # mails sent on the open connection
        self.opened = 0  # connections opened, for tests and benchmarks

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp, self._sent = self._smtp, None, 0
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def _open(self) -> _Smtp:
        m = self.mailer
        self._smtp, self._sent = _Smtp(m.host, m.port, timeout=m.timeout), 0
        self.opened += 1
        return self._smtp

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> None:
        msg = self.mailer.compose(to=to, subject=subject, body=body, message_id=message_id, language=language,
                                  attachments=attachments, html=html)
        if self._smtp is not None and self._sent >= max(1, self.mailer.per_connection):
            self.close()
        reused = self._smtp is not None
        smtp = self._smtp or self._open()
        smtp.data_started = False
        try:
            smtp.send_message(msg)
        except OSError as exc:  # smtplib's errors are OSErrors too
            self._smtp = None
            smtp.close()
            dropped = (not isinstance(exc, smtplib.SMTPException) or isinstance(exc, smtplib.SMTPServerDisconnected)
                       or getattr(exc, "smtp_code", None) == 421)
            if not (reused and dropped and not smtp.data_started):
                raise
            # the server dropped or closed the kept connection before this mail's data: a new one, once
            smtp = self._open()
            try:
                smtp.send_message(msg)
            except OSError:
                self._smtp = None
                smtp.close()
                raise
        self._sent += 1
