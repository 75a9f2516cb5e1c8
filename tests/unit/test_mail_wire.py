"""A mail written straight to SMTP's bytes (``SmtpMailer.wire``) reads, to a mail client, as the one the ``email``
package composes: the same headers, the same parts in the same structure, the same text and attachments; and what
only the ``email`` package can write (addresses beyond ASCII, a header with a line break) is left to it."""

from __future__ import annotations

import email
import email.policy
import io
from email.generator import BytesGenerator
from email.message import EmailMessage
from typing import Any

import pytest
from werkplaats_shared.mail import Attachment, SmtpMailer

MAILER = SmtpMailer("127.0.0.1", 25, "Werkplaats <noreply@werkplaats.example.nl>")
MATCH_TEXT = ("Beste ondernemer,\n\nWe hebben een studententeam gevonden voor “Webshop voor café De Gouden Ürn”.\n\n"
              "- Accepteren of afwijzen: https://werkplaats.example.nl/scheduling/responses/eyJub3RpY2UiOiIxMjMiLCJt"
              "YXRjaCI6IjQ1NiJ9.Z5x1Qw.abcdefghijklmnopqrstuvwxyz\n\nAntwoord uiterlijk maandag 14 december 2026.\n")
ICS = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Kennismaking\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
MAILS: dict[str, dict[str, Any]] = {
    "match notice": dict(to="planning@bakkerij.nl", subject="Uw match voor “Webshop voor café”", body=MATCH_TEXT,
                         html="<p>Webshop voor caf&eacute;</p>\n" + "<p style=\"margin:0\">" + "x" * 200 + "</p>\n"),
    "ascii in short lines": dict(to="office@salon.nl", subject="Your match", body="Dear owner,\n\nA team.\n",
                                 html="<p>A team.</p>\n"),
    "kickoff with invitation": dict(to="a@b.nl", subject="Uitnodiging: kennismaking voor \"Cyberscan\"",
                                    body="Tijd: 14:00\n", html="<p>Tijd: 14:00</p>\n",
                                    attachments=[Attachment("kickoff.ics", "text", "calendar", ICS,
                                                            {"method": "REQUEST"})]),
    "long subjects, text only": dict(to="a@b.nl", subject="Lange onderwerpregel " * 9 + "é" * 40,
                                     body="a\r\nb\rc\n" + "é" * 300 + "\n\ttab and trailing space \n.\n..dots\n"),
    "cancellation without html": dict(to="a@b.nl", subject="Afgezegd: kennismaking " + "x" * 90, body="Afgezegd.\n",
                                      attachments=[Attachment("kickoff.ics", "text", "calendar", ICS * 40,
                                                              {"method": "CANCEL"})]),
}


def _parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _composed(mail: dict[str, Any]) -> EmailMessage:
    """What ``compose`` hands to SMTP (``send_message``'s flattening), read back."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(MAILER.compose(message_id="n-1", language="nl", **mail), linesep="\r\n")
    return _parsed(out.getvalue())


def _reading(message: EmailMessage) -> list[tuple[Any, ...]]:
    """What a mail client shows: each part's type, disposition, file name, parameters and content (text with
    its line ends as the reader's)."""
    out: list[tuple[Any, ...]] = []
    for part in message.walk():
        params = {k: v for k, v in part.get_params() or [] if k != "boundary"}
        if part.is_multipart():
            out.append((part.get_content_type(), params))
            continue
        content = part.get_content()
        if isinstance(content, str):
            content = content.replace("\r\n", "\n")
        out.append((part.get_content_type(), params, part.get_content_disposition(), part.get_filename(), content))
    return out


@pytest.mark.parametrize("name", sorted(MAILS))
def test_the_wire_mail_reads_as_the_composed_one(name: str) -> None:
    mail = MAILS[name]
    wire = MAILER.wire(message_id="n-1", language="nl", **mail)
    assert wire is not None
    assert (wire.from_addr, wire.to_addrs) == ("noreply@werkplaats.example.nl", [mail["to"]])
    lines = wire.data.split(b"\r\n")
    assert b"\n" not in wire.data.replace(b"\r\n", b"") and wire.data.isascii()  # CRLF only, 7 bits
    assert max(len(line) for line in lines) <= 998
    read, composed = _parsed(wire.data), _composed(mail)
    for header in ("From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Language"):
        assert str(read[header]) == str(composed[header]), header
    assert read["Message-ID"] == "<n-1@werkplaats>" and read["Subject"] == mail["subject"]
    assert read["Date"].datetime is not None
    assert _reading(read) == _reading(composed)
    body = read.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == mail["body"].replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("change", [
    {"to": "jé@bakkerij.nl"},  # an address beyond ASCII: SMTPUTF8, which send_message negotiates
    {"to": "Jan Jansen <jan@bakkerij.nl>"},
    {"subject": "Uw match\r\nBcc: someone@elsewhere.nl"},  # a line break in a header: compose refuses it
    {"subject": "=?utf-8?q?looks_encoded?="},
    {"attachments": [Attachment("kick off.ics", "text", "calendar", b"x")]},
])
def test_what_the_wire_cannot_say_is_left_to_the_email_package(change: dict[str, Any]) -> None:
    mail = {**MAILS["ascii in short lines"], **change}
    assert MAILER.wire(message_id="n-1", language="nl", **mail) is None


def test_a_header_with_a_line_break_is_still_refused_when_sent() -> None:
    # send() takes the email package's path for it, which refuses it before any connection is opened
    with pytest.raises(ValueError):
        MAILER.send(message_id="n-1", language="nl", **{**MAILS["ascii in short lines"],
                                                          "subject": "Uw match\r\nBcc: someone@elsewhere.nl"})
