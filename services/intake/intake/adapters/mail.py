"""Sending intake's mails: now (an invitation: the inviter learns when the mail server refuses) or in the
background (a sign-in link: the answer must not take longer when the address has an account)."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from werkplaats_shared.mail import SmtpMailer

log = logging.getLogger(__name__)


class MailOut:
    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-mail")

    def send_now(self, *, to: str, subject: str, body: str, message_id: str, language: str) -> None:
        self.mailer.send(to=to, subject=subject, body=body, message_id=message_id, language=language)

    def send_later(self, *, to: str, subject: str, body: str, message_id: str, language: str,
                   about: str) -> Future[None]:
        """Send on the background thread; a failure is logged with ``about`` (an id, never the address)."""
        def send() -> None:
            try:
                self.send_now(to=to, subject=subject, body=body, message_id=message_id, language=language)
            except Exception:  # noqa: BLE001 - the person asks again; the failure must not reach the caller
                log.warning("mail for %s could not be sent", about)

        return self._background.submit(send)
