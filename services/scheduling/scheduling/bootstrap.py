"""Scheduling's composition root."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping

from werkplaats_shared.config import Settings
from werkplaats_shared.metrics import NOTICE_CHANNELS, NOTICE_DELIVERIES, PLAN_JOBS, LeasedWork, start_at_zero
from werkplaats_shared.service import Infrastructure, consumer_loop, relay_loop, start_infrastructure

from .adapters import orm
from .domain.responses import DEFAULT_ANSWER_DAYS, MAX_ANSWER_DAYS
from .entrypoints.handlers import HANDLERS
from .service_layer.plan_jobs import KINDS as PLAN_KINDS

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def answer_days(env: Mapping[str, str] | None = None) -> int:
    """WERKPLAATS_ANSWER_DEADLINE_DAYS: days a firm has to answer a match notice (1 to the link's validity)."""
    raw = (os.environ if env is None else env).get("WERKPLAATS_ANSWER_DEADLINE_DAYS", str(DEFAULT_ANSWER_DAYS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ANSWER_DAYS:
        raise ValueError(f"WERKPLAATS_ANSWER_DEADLINE_DAYS must be a whole number from 1 to {MAX_ANSWER_DAYS}")
    return int(raw)


def workshop_plan_gap(env: Mapping[str, str] | None = None) -> float:
    """WERKPLAATS_WORKSHOP_PLAN_GAP: the relative gap a workshop plan job is solved to, as a fraction (0.01 is
    1%: the plan is within 1% of the best possible; 0 asks for a proven optimum, which can take much longer)."""
    from .service_layer.plan_jobs import MAX_WORKSHOP_PLAN_GAP, WORKSHOP_PLAN_GAP

    raw = (os.environ if env is None else env).get("WERKPLAATS_WORKSHOP_PLAN_GAP", "").strip()
    if not raw:
        return WORKSHOP_PLAN_GAP
    try:
        gap = float(raw)
    except ValueError:
        gap = -1.0
    if not 0 <= gap <= MAX_WORKSHOP_PLAN_GAP:  # also refuses nan
        raise ValueError(f"WERKPLAATS_WORKSHOP_PLAN_GAP must be a fraction from 0 to {MAX_WORKSHOP_PLAN_GAP:g} "
                         f"(0.01 is 1%), not {raw!r}")
    return gap


# The worker's cyclic garbage collector: a send pass makes many short-lived objects (rows, texts, mails) and keeps a
# batch's decoded names (hundreds of thousands of objects at 50,000 teams) for the next pass. With the default
# thresholds (700, 10, 10) the survivors of the young collections soon start full collections, each walking every
# object in the process: 15-20% of the notices' CPU (``python -m benchmarks.notices --gc``). What was made at
# start-up (modules, classes, the app) is set aside once (``gc.freeze``), and a young collection waits for 20,000
# allocations: the garbage a pass leaves in cycles is still collected, a few thousand objects later.
COLLECTOR_THRESHOLDS = (20_000, 20, 20)


def settle_collector() -> None:
    """Freeze what is alive now (start-up's objects) and raise the collector's thresholds (see above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def bootstrap(settings: Settings | None = None) -> Infrastructure:
    settings = settings or Settings.from_env("scheduling")
    if len(settings.secret_key) < 32:
        raise ValueError("WERKPLAATS_SECRET_KEY must be set to at least 32 characters: it signs the "
                         "accept/decline links in notices")
    infra = start_infrastructure(settings, (orm.outbox, orm.inbox, orm.api_keys), MIGRATIONS)
    # werkplaats_work_items: the planning jobs by kind
    infra.leased_work = LeasedWork(orm.PlanJob.__table__, kinds=PLAN_KINDS, kind_column="kind")
    # the failures the alert rules watch exist from the start (deploy/prometheus/alerts.yml)
    start_at_zero(PLAN_JOBS, *({"kind": kind, "status": "failed"} for kind in PLAN_KINDS))
    start_at_zero(NOTICE_DELIVERIES, *({"channel": channel, "outcome": outcome} for channel in NOTICE_CHANNELS
                                       for outcome in ("sent", "failed")))
    return infra


def main() -> None:
    from werkplaats_shared import service

    from .entrypoints.api import create_scheduling_app
    from .entrypoints.worker import deadline_loop, notice_loop, planning_loop, webhook_loop
    from .service_layer import privacy

    days, gap = answer_days(), workshop_plan_gap()
    infra = bootstrap()
    if infra.settings.process != "api":  # this process sends the notices: see settle_collector
        settle_collector()
    service.run(infra, lambda: create_scheduling_app(infra),
                [relay_loop(infra), consumer_loop(infra, HANDLERS), notice_loop(infra, days), webhook_loop(infra),
                 deadline_loop(infra), planning_loop(infra, gap), privacy.retention_worker(infra)])
