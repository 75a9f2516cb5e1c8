"""A local SMTP server (aiosmtpd) that stores every mail it receives in a Maildir to read back.

Each mail is written (and synced to disk: ``mailbox`` does) off the server's event loop, so that mails arriving
over several connections are stored side by side, as a mail server does; aiosmtpd's own ``Mailbox`` handler
writes on the loop, one mail at a time, which held the local default's notices to the disk's pace (about 120
mails a second at 50,000 teams, whatever the number of connections scheduling sends over). A mail is stored as the
bytes it arrived in, with the envelope's headers (X-Peer, X-MailFrom, X-RcptTo) added at the end of its header as
aiosmtpd's handler adds them: that handler parsed each mail into an ``email`` message and the Maildir wrote it out
again through the generator, a third of the sink's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import signal
import threading
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


class ConcurrentMailbox(Mailbox):  # type: ignore[misc]
    """aiosmtpd's Maildir handler, writing each mail in a thread of the loop's default pool instead of on the
    event loop itself."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content
        message = (with_envelope(content, session.peer, envelope.mail_from, envelope.rcpt_tos)
                   if isinstance(content, bytes) else self.prepare_message(session, envelope))
        await asyncio.get_running_loop().run_in_executor(None, self._store, message)
        return "250 OK"

    def _store(self, message: Message | bytes) -> None:
        for attempt in range(3):  # two threads may pick the same unique name in one microsecond: another one
            try:
                self.mailbox.add(message)
                return
            except mailbox.ExternalClashError:
                if attempt == 2:
                    raise


def with_envelope(content: bytes, peer: Any, mail_from: str, rcpt_tos: list[str]) -> bytes:
    """The mail's bytes (line ends as the Maildir keeps them) with the envelope's headers added after its own."""
    text = content.replace(b"\r\n", b"\n")
    if text.startswith(b"\n"):  # no header at all
        head, rest = b"", text
    elif (end := text.find(b"\n\n")) >= 0:
        head, rest = text[:end + 1], text[end + 1:]
    else:  # a header and no body
        head, rest = (text if text.endswith(b"\n") else text + b"\n"), b"\n"
    added = f"X-Peer: {peer}\nX-MailFrom: {mail_from}\nX-RcptTo: {', '.join(rcpt_tos)}\n"
    return head + added.encode("utf-8", "surrogateescape") + rest


def read_mails(maildir: str) -> list[Message]:
    if not os.path.isdir(maildir):
        return []
    box = mailbox.Maildir(maildir, create=False)
    return [box.get_message(key) for key in sorted(box.keys())]


def main() -> None:
    parser = argparse.ArgumentParser(description="local SMTP sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    mailbox.Maildir(args.maildir, create=True)  # creates cur/, new/ and tmp/
    controller = Controller(ConcurrentMailbox(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"smtp sink on {args.host}:{args.port} -> {args.maildir}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
