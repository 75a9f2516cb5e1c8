"""Sending mail by SMTP (plain text, with an HTML alternative when given; WERKPLAATS_SMTP_HOST/PORT,
WERKPLAATS_MAIL_FROM), for every service that
mails people: scheduling's notices, intake's sign-in links and invitations.

``SmtpMailer.send`` opens one connection per mail. ``SmtpMailer.connection()`` gives one connection kept open
across mails (a sender thread's own): reopened after ``per_connection`` mails (WERKPLAATS_MAIL_PER_CONNECTION)
and when the server dropped or closed it before the mail's data was handed over - then the mail is tried once
more on a new connection; a failure once the data was on its way is the caller's to record and retry (with the
same Message-ID, so a receiver can drop a second copy).

A mail is written straight to the bytes SMTP carries (``wire``) whenever its headers are plain enough (ASCII
addresses, a subject in ASCII or in RFC 2047 words), the same MIME structure the ``email`` package builds:
building it through ``EmailMessage`` and its generator (header objects parsed and folded again, the content
manager's choices) cost about 1.3 ms of CPU a mail, most of a notice's sending. Anything else goes through
``compose`` as before."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
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


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_PLAIN_SENDER = re.compile(r"(?:[A-Za-z0-9 .!#$%&'*+/=?^_`{|}~-]* <" + _PLAIN_ADDRESS.pattern + ">)|"
                           + _PLAIN_ADDRESS.pattern)
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # a MIME parameter value that needs no escaping
_SHORT_SUBJECT = 78 - len("Subject: ")


def _subject_header(subject: str) -> str | None:
    """The Subject line's value as it goes on the wire (folded with CRLF), or None where only the ``email``
    package can write it."""
    if "\r" in subject or "\n" in subject:
        return None  # refused by compose (no header injection)
    if subject.isascii():
        if "=?" in subject:
            return None  # would read as an encoded word
        if len(subject) <= _SHORT_SUBJECT:
            return subject
    return Header(subject, "us-ascii" if subject.isascii() else "utf-8", header_name="Subject").encode(
        linesep="\r\n")


def _text_part(text: str, subtype: str) -> tuple[list[str], str]:
    """A text part's headers and body (CRLF): 7bit when it is ASCII in lines of at most 78 characters, else
    quoted-printable (UTF-8)."""
    lines = text.encode("utf-8").splitlines()
    if all(len(line) <= 78 and line.isascii() for line in lines):
        cte, payload = "7bit", b"\r\n".join(lines).decode("ascii") + "\r\n"
    else:
        encoded = binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True).decode("ascii")
        cte, payload = "quoted-printable", encoded.replace("\n", "\r\n")
    return [f'Content-Type: text/{subtype}; charset="utf-8"', f"Content-Transfer-Encoding: {cte}"], payload


def _multipart(subtype: str, parts: list[tuple[list[str], str]]) -> tuple[list[str], str]:
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        if not any(f"--{boundary}" in payload for _, payload in parts):
            break
    body = "".join(f"--{boundary}\r\n" + "".join(f"{h}\r\n" for h in headers) + f"\r\n{payload}\r\n"
                   for headers, payload in parts)
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], f"{body}--{boundary}--\r\n"


@dataclass(frozen=True)
class Wire:
    """A mail as SMTP carries it: the envelope's addresses and the message (CRLF line ends)."""

    from_addr: str
    to_addrs: list[str]
    data: bytes


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

    def wire(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> Wire | None:
        """What ``compose`` makes, as the bytes ``send_message`` would hand to SMTP, without the ``email``
        package; None when an address is not plain ASCII, a subject would need more than RFC 2047 words, or an
        attachment's name or parameters need quoting (``compose`` writes those)."""
        if not (_PLAIN_ADDRESS.fullmatch(to) and _PLAIN_SENDER.fullmatch(self.sender) and language.isascii()
                and _TOKEN.fullmatch(language) and _TOKEN.fullmatch(message_id)):
            return None
        subject_line = _subject_header(subject)
        if subject_line is None:
            return None
        for a in attachments:
            if not all(_TOKEN.fullmatch(v) for v in (a.filename, a.maintype, a.subtype, *a.params, *a.params.values())):
                return None
        headers, payload = _text_part(body, "plain")
        if html is not None:
            headers, payload = _multipart("alternative", [(headers, payload), _text_part(html, "html")])
        if attachments:
            parts = [(headers, payload)]
            for a in attachments:
                params = "".join(f'; {k}="{v}"' for k, v in a.params.items())
                parts.append(([f"Content-Type: {a.maintype}/{a.subtype}{params}", "Content-Transfer-Encoding: base64",
                               f'Content-Disposition: attachment; filename="{a.filename}"'],
                              base64.encodebytes(a.data).decode("ascii").replace("\n", "\r\n")))
            headers, payload = _multipart("mixed", parts)
        head = [f"From: {self.sender}", f"To: {to}", f"Subject: {subject_line}", f"Date: {formatdate(localtime=False)}",
                f"Message-ID: {message_id_header(message_id)}", "MIME-Version: 1.0", *headers,
                f"Content-Language: {language}"]
        data = ("".join(f"{h}\r\n" for h in head) + "\r\n" + payload).encode("ascii")
        return Wire(getaddresses([self.sender])[0][1], [to], data)

    def send(self, *, to: str, subject: str, body: str, message_id: str, language: str,
             attachments: Sequence[Attachment] = (), html: str | None = None) -> None:
        """Send one mail on a connection of its own."""
        mail = self._prepare(to=to, subject=subject, body=body, message_id=message_id, language=language,
                             attachments=attachments, html=html)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            _hand_over(smtp, mail)

    def _prepare(self, *, to: str, subject: str, body: str, message_id: str, language: str,
                 attachments: Sequence[Attachment] = (), html: str | None = None) -> Wire | EmailMessage:
        fast = self.wire(to=to, subject=subject, body=body, message_id=message_id, language=language,
                         attachments=attachments, html=html)
        return fast if fast is not None else self.compose(
            to=to, subject=subject, body=body, message_id=message_id, language=language, attachments=attachments,
            html=html)

    def connection(self) -> SmtpConnection:
        """One connection kept open across mails (use it from one thread; close it, or use ``with``)."""
        return SmtpConnection(self)


def _hand_over(smtp: smtplib.SMTP, mail: Wire | EmailMessage) -> None:
    if isinstance(mail, Wire):
        smtp.sendmail(mail.from_addr, mail.to_addrs, mail.data)
    else:
        smtp.send_message(mail)


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
        msg = self.mailer._prepare(to=to, subject=subject, body=body, message_id=message_id, language=language,
                                   attachments=attachments, html=html)
        if self._smtp is not None and self._sent >= max(1, self.mailer.per_connection):
            self.close()
        reused = self._smtp is not None
        smtp = self._smtp or self._open()
        smtp.data_started = False
        try:
            _hand_over(smtp, msg)
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
                _hand_over(smtp, msg)
            except OSError:
                self._smtp = None
                smtp.close()
                raise
        self._sent += 1
