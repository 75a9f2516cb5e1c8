"""The worker loops: e-mail and webhooks, each on its own so a slow webhook never holds up mail, the
answer-deadline tick that declines matches left unanswered, and the planner that does plan jobs."""

from __future__ import annotations

import threading

from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..adapters.links import ResponseLinks
from ..adapters.mailer import SmtpMailer
from ..adapters.webhook_client import WebhookClient
from ..domain.responses import DEFAULT_ANSWER_DAYS
from ..service_layer import plan_jobs, services


def notice_loop(infra: Infrastructure, answer_days: int = DEFAULT_ANSWER_DAYS) -> Loop:
    s = infra.settings
    mailer = SmtpMailer.from_settings(s)
    links = ResponseLinks(s.secret_key, s.public_url)

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            if services.send_pending(infra.session_factory, mailer, links, answer_days=answer_days,
                                     concurrency=s.mail_concurrency) == 0:
                stop.wait(s.poll_interval)

    return Loop("notices", run)


def webhook_loop(infra: Infrastructure) -> Loop:
    s = infra.settings
    client = WebhookClient(allow_loopback=s.webhook_allow_loopback)
    links = ResponseLinks(s.secret_key, s.public_url)

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            if services.deliver_webhooks(infra.session_factory, client, links) == 0:
                stop.wait(s.poll_interval)

    return Loop("webhooks", run)


def deadline_loop(infra: Infrastructure) -> Loop:
    s = infra.settings

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            if services.expire_unanswered(infra.session_factory) == 0:
                stop.wait(s.poll_interval)

    return Loop("answer-deadlines", run)


def planning_loop(infra: Infrastructure, workshop_gap: float = plan_jobs.WORKSHOP_PLAN_GAP) -> Loop:
    """Claims plan jobs (queued, or whose worker died) and does them, one at a time; a workshop plan is solved
    to ``workshop_gap`` (WERKPLAATS_WORKSHOP_PLAN_GAP)."""
    s = infra.settings

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            if plan_jobs.run_pending(infra.session_factory, stop, workshop_gap=workshop_gap) == 0:
                stop.wait(s.poll_interval)

    return Loop("planner", run)
