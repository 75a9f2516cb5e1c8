"""Intake's reconciliation (issue 19, item 5): nothing intake announced may stay unanswered for good.

- A workspace never announced (``workspace.registered``; workspaces made before announcements existed) is
  announced.
- A batch still ``submitted`` with no run outcome since it was (re)submitted, for longer than
  ``WERKPLAATS_RECONCILE_AFTER_SECONDS``, is announced again: its last ``batch.submitted`` outbox row is marked
  unsent, so the relay publishes the very same message (same message id) once more. Matching and scheduling
  record every message id they applied (inbox): a batch they had is not acted on twice; one that never reached
  them (lost, or dead-lettered before its workspace was known) is acted on now. A batch is announced again at
  most ``MAX_REANNOUNCEMENTS`` times, each after the same age; then it is logged for an operator.

Runs now and then in intake's worker (``reconcile_loop``) and once with ``python -m intake reconcile``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.db import utcnow
from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..adapters import orm
from ..domain.model import BatchStatus
from . import services

log = logging.getLogger(__name__)

MAX_REANNOUNCEMENTS = 5


@dataclass(frozen=True)
class Reconciled:
    workspaces_announced: int
    batches_reannounced: int
    batches_given_up: int


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def stuck_batches(session: Session, now: datetime, after: timedelta) -> list[orm.Batch]:
    """Batches submitted longer than ``after`` ago with no run outcome since, not announced again recently."""
    cutoff = now - after
    candidates = session.execute(sa.select(orm.Batch).where(
        orm.Batch.status == BatchStatus.SUBMITTED.value, orm.Batch.submitted_at <= cutoff,
        sa.or_(orm.Batch.reannounced_at.is_(None), orm.Batch.reannounced_at <= cutoff))
        .order_by(orm.Batch.submitted_at, orm.Batch.id).with_for_update(skip_locked=True)).scalars().all()
    stuck = []
    for batch in candidates:
        ended, submitted = _aware(batch.last_run_ended_at), _aware(batch.submitted_at)
        if ended is None or submitted is None or ended < submitted:
            stuck.append(batch)
    return stuck


def _last_announcement(session: Session, batch: orm.Batch) -> str | None:
    """The message id of the batch's last batch.submitted still in the outbox."""
    outbox = orm.outbox
    if batch.announced_message_id is not None:
        found = session.execute(sa.select(outbox.c.message_id).where(
            outbox.c.message_id == batch.announced_message_id)).scalar_one_or_none()
        if found is not None:
            return str(found)
    # a batch submitted before its message id was kept: its last batch.submitted row
    rows = session.execute(sa.select(outbox.c.message_id, outbox.c.body).where(
        outbox.c.type == "batch.submitted", outbox.c.body.contains(batch.id))
        .order_by(outbox.c.created_at.desc())).all()
    for message_id, body in rows:
        if json.loads(body)["payload"].get("batch_id") == batch.id:
            return str(message_id)
    return None


def reconcile(session: Session, emit: services.Emit, *, after: timedelta, now: datetime | None = None,
              inline_max_bytes: int | None = None) -> Reconciled:
    moment = now or utcnow()
    announced = 0
    for ws in session.execute(sa.select(orm.Workspace).where(orm.Workspace.announced_at.is_(None))
                              .order_by(orm.Workspace.created_at, orm.Workspace.id)).scalars():
        services.announce_workspace(session, emit, ws)
        announced += 1
    reannounced = given_up = 0
    for batch in stuck_batches(session, moment, after):
        if batch.reannouncements >= MAX_REANNOUNCEMENTS:
            if batch.reannouncements == MAX_REANNOUNCEMENTS:
                log.error("batch has no run outcome after every re-announcement; look at matching's dead letters",
                          extra={"batch_id": batch.id, "reannouncements": batch.reannouncements})
                batch.reannouncements += 1  # logged once
            given_up += 1
            continue
        message_id = _last_announcement(session, batch)
        if message_id is None:  # its message is gone: announce the batch anew (a new message id)
            assignments = list(session.execute(sa.select(orm.Assignment).where(
                orm.Assignment.batch_id == batch.id).order_by(orm.Assignment.created_at, orm.Assignment.id)).scalars())
            count = batch.reannouncements
            services.announce_batch(session, emit, services.get_workspace(session, batch.workspace_id), batch,
                                    assignments, inline_max_bytes=inline_max_bytes)
            batch.reannouncements = count
        else:
            for ws in services.round_workspaces(session, batch):
                services.announce_workspace(session, emit, ws)
            session.execute(orm.outbox.update().where(orm.outbox.c.message_id == message_id).values(
                sent_at=None, last_error=None, created_at=utcnow()))  # after the workspace's announcement
            batch.announced_message_id = message_id
        batch.reannounced_at = moment
        batch.reannouncements += 1
        reannounced += 1
        log.warning("batch announced to matching again: no run outcome", extra={
            "batch_id": batch.id, "reannouncements": batch.reannouncements})
    return Reconciled(announced, reannounced, given_up)


def reconcile_once(infra: Infrastructure) -> Reconciled:
    with infra.session_factory.begin() as session:
        return reconcile(session, lambda envelope: infra.emit(session, envelope),
                         after=timedelta(seconds=infra.settings.reconcile_after_seconds),
                         inline_max_bytes=services.inline_max_bytes(infra.settings))


def reconcile_loop(infra: Infrastructure) -> Loop:
    """The reconciliation in intake's worker, every ``WERKPLAATS_RECONCILE_INTERVAL`` seconds."""

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                done = reconcile_once(infra)
                if done.workspaces_announced or done.batches_reannounced:
                    log.info("reconciled", extra={"workspaces": done.workspaces_announced,
                                                  "batches": done.batches_reannounced})
            except Exception:
                log.exception("reconciliation failed")
            stop.wait(infra.settings.reconcile_interval)

    return Loop("reconcile", run)
