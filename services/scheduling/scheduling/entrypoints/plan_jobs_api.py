"""Plan jobs over HTTP: a coordinator's kickoff or workshop plan, queued (202 with this URL), followed
(status, stage, elapsed, best value and gap) and cancelled; a coordinator's jobs listed, newest first."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import current_principal
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, Listed, QueryPage, service_errors

from ..service_layer import plan_jobs


class VerdictOut(Schema):
    valid = fields.Boolean(metadata={"description": "the validator (checked against the batch or programme as it "
                                                    "is when the plan is applied) found nothing wrong with the "
                                                    "plan; false only for a rejected job, whose plan was not applied"})
    violations = fields.List(fields.String(), metadata={"description": "the rules the plan breaks, in words (at "
                                                                       "most 50)"})
    details = fields.List(fields.Dict(), metadata={"description": (
        "a workshop plan's broken rules as data, in the order of violations: rule (a code: room_twice, "
        "facilitator_unavailable, session_over_capacity, seat_firm_day, ...) and facts (theme, venue: a room id "
        "or online, day, day_part, facilitator_id, firm_id, municipality, count, limit), so a page can say them "
        "in its reader's language with names")})


class PlanJobOut(Schema):
    id = fields.String()
    kind = fields.String(metadata={"description": "kickoffs (a batch's) or workshops (a programme's)"})
    batch_id = fields.String(allow_none=True)
    programme_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "queued, running, done, failed, cancelled or rejected (the "
                                                  "validator found the plan breaks a rule: nothing applied, the "
                                                  "violations in verdict)"})
    stage = fields.String(metadata={"description": "queued, reading, solving, applying or done"})
    time_limit = fields.Float(metadata={"description": "seconds the solver may take"})
    attempts = fields.Integer(metadata={"description": "claims by a worker (more than one: a worker died)"})
    elapsed_seconds = fields.Float(allow_none=True, metadata={"description": "since the worker claimed it"})
    best_value = fields.Float(allow_none=True, metadata={
        "description": "the best objective value the solver has found so far (null before one is found)"})
    gap = fields.Float(allow_none=True, metadata={"description": "the solver's relative gap to its bound"})
    progress = fields.Dict(allow_none=True, metadata={
        "description": "elapsed_seconds, best_value, gap; a workshop plan's target_gap (the gap it is solved to, "
                       "WERKPLAATS_WORKSHOP_PLAN_GAP); when done also time_limit_reached"})
    result = fields.Dict(allow_none=True, metadata={
        "description": "when done: the plan's report (kickoffs: placed, unplaced, changed, kept, solver, seconds, "
                       "daily_cap, warnings; workshops: status, reason, objective, unscheduled, figures, and gap, "
                       "bound and target_gap: the gap the plan is proven within, the bound that proves it, the gap "
                       "asked for)"})
    verdict = fields.Nested(VerdictOut, allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "why a failed or rejected job ended so"})
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


class PlanJobFilter(Schema):
    kind = fields.String(validate=validate.OneOf(plan_jobs.KINDS), metadata={"description": "kickoffs or workshops"})
    status = fields.String(validate=validate.OneOf(plan_jobs.STATUSES), metadata={
        "description": "queued, running, done, failed, cancelled or rejected (the "
                                                  "validator found the plan breaks a rule: nothing applied, the "
                                                  "violations in verdict)"})


class PlanJobListedOut(Schema):
    """A job in a list: what it plans and how it went; its progress, result and verdict are at its URL."""

    id = fields.String()
    kind = fields.String(metadata={"description": "kickoffs (a batch's) or workshops (a programme's)"})
    batch_id = fields.String(allow_none=True)
    programme_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "queued, running, done, failed, cancelled or rejected (the "
                                                  "validator found the plan breaks a rule: nothing applied, the "
                                                  "violations in verdict)"})
    stage = fields.String(metadata={"description": "queued, reading, solving, applying or done"})
    time_limit = fields.Float(metadata={"description": "seconds the solver may take"})
    attempts = fields.Integer(metadata={"description": "claims by a worker (more than one: a worker died)"})
    error = fields.String(allow_none=True, metadata={"description": "why a failed or rejected job ended so"})
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


def job_errors() -> Any:
    return service_errors((plan_jobs.Refused,), (plan_jobs.NotFound,))


def plan_jobs_blueprint(sf: sessionmaker[Session], out: type[PlanJobOut] = PlanJobOut) -> Blueprint:
    """``out``: the job's schema (the kickoffs' API adds the kickoffs of a done kickoff job)."""
    blp = Blueprint("plan_jobs", __name__, url_prefix="/plan-jobs", description=(
        "Kickoff and workshop plans, done by a worker: status, stage, elapsed time, best value and gap while "
        "it solves, the result with the validator's verdict when done; a queued or running job can be "
        "cancelled"))

    @blp.route("")
    class PlanJobs(MethodView):
        @blp.arguments(PlanJobFilter, location="query")
        @blp.response(200, PlanJobListedOut(many=True))
        @blp.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            """Your plan jobs, newest first, a page at a time; ended ones are kept for
            WERKPLAATS_RETENTION_PLAN_JOB_DAYS days (default 90)."""
            return Listed(sf, plan_jobs.jobs_of(current_principal().organisation_id, **filters),
                          plan_jobs.listed_view)

    @blp.route("/<job_id>")
    class PlanJobItem(MethodView):
        @blp.response(200, out)
        def get(self, job_id: str) -> Any:
            with job_errors(), sf() as session:
                job = plan_jobs.get_job(session, current_principal().organisation_id, job_id)
                return plan_jobs.job_view(session, job)

    @blp.route("/<job_id>/cancel")
    class PlanJobCancel(MethodView):
        @blp.response(200, out)
        @blp.alt_response(409, description="the job has ended already")
        def post(self, job_id: str) -> Any:
            """Cancel a queued or running plan: nothing of it is applied."""
            with job_errors(), sf.begin() as session:
                job = plan_jobs.cancel_job(session, current_principal().organisation_id, job_id)
                return plan_jobs.job_view(session, job)

    return blp
