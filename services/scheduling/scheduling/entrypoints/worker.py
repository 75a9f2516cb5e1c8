"""The notice sender loop."""

from __future__ import annotations

import threading

from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..adapters.mailer import SmtpMailer
from ..service_layer import services


def notice_loop(infra: Infrastructure) -> Loop:
    s = infra.settings
    mailer = SmtpMailer(s.smtp_host, s.smtp_port, s.mail_from)

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            if services.send_pending(infra.session_factory, mailer) == 0:
                stop.wait(s.poll_interval)

    return Loop("notices", run)
