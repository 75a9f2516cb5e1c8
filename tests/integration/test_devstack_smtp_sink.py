"""The local default's SMTP sink keeps every mail in its Maildir as it arrived, with the envelope (peer, sender,
recipients) beside it, over several connections at once: what ``read_mails`` gives back reads as the mail sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from werkplaats_shared.devstack.smtp_sink import ConcurrentMailbox, read_mails, with_envelope
from werkplaats_shared.mail import Attachment, SmtpMailer

from ..conftest import free_port

TEXT = "Beste ondernemer,\n\nUw opdracht “Webshop voor café” heeft een team.\n"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, str]]:
    maildir, port = tmp_path / "mail", free_port()
    controller = Controller(ConcurrentMailbox(maildir), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, str(maildir)
    finally:
        controller.stop()


def test_mails_sent_over_several_connections_are_kept_as_they_were_sent(sink: tuple[int, str]) -> None:
    port, maildir = sink
    mailer = SmtpMailer("127.0.0.1", port, "Werkplaats <noreply@werkplaats.test>", per_connection=10)

    def send(first: int) -> None:
        with mailer.connection() as connection:
            for i in range(first, 60, 3):
                connection.send(to=f"firm-{i}@example.nl", subject=f"Uw match {i} voor café", body=TEXT,
                                message_id=f"notice-{i}", language="nl", html=f"<p>{i}</p>",
                                attachments=[Attachment("kickoff.ics", "text", "calendar", b"BEGIN:VCALENDAR\r\n",
                                                        {"method": "REQUEST"})] if i % 2 else ())

    threads = [threading.Thread(target=send, args=(first,)) for first in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    mails = {m["Message-ID"]: m for m in read_mails(maildir)}
    assert sorted(mails) == sorted(f"<notice-{i}@werkplaats>" for i in range(60))
    for i in range(60):
        mail = mails[f"<notice-{i}@werkplaats>"]
        assert (mail["To"], mail["X-MailFrom"], mail["X-RcptTo"]) == (f"firm-{i}@example.nl", "noreply@werkplaats.test",
                                                                      f"firm-{i}@example.nl")
        assert mail["X-Peer"].startswith("('127.0.0.1', ")
        parts = {p.get_content_type(): p for p in mail.walk()}
        plain = parts["text/plain"].get_payload(decode=True)
        assert isinstance(plain, bytes) and plain.decode("utf-8").replace("\r\n", "\n") == TEXT
        assert ("text/calendar" in parts) == bool(i % 2) and "text/html" in parts


def test_the_envelope_goes_at_the_end_of_the_mails_header() -> None:
    added = b"X-Peer: peer\nX-MailFrom: a@b.nl\nX-RcptTo: c@d.nl, e@f.nl\n"
    assert with_envelope(b"Subject: x\r\nTo: c@d.nl\r\n\r\nbody\r\n.line\r\n", "peer", "a@b.nl",
                         ["c@d.nl", "e@f.nl"]) == b"Subject: x\nTo: c@d.nl\n" + added + b"\nbody\n.line\n"
    assert with_envelope(b"Subject: x", "peer", "a@b.nl", ["c@d.nl", "e@f.nl"]) == b"Subject: x\n" + added + b"\n"
    assert with_envelope(b"\r\nno header", "peer", "a@b.nl", ["c@d.nl", "e@f.nl"]) == added + b"\nno header"
