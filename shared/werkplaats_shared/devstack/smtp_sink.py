"""A local SMTP server (aiosmtpd) that stores every mail it receives in a Maildir to read back."""

from __future__ import annotations

import argparse
import mailbox
import os
import signal
import threading
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


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
    controller = Controller(Mailbox(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"smtp sink on {args.host}:{args.port} -> {args.maildir}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
