"""Matching's HTTP API: policies, runs (jobs) with their progress, explanations and models, the
coordinator's control over a batch (pins, forbids, re-runs, audit), and matches, all scoped to the
caller's organisation."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from flask import Flask, Response, url_for
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import RAISE, Schema, fields, validate
from werkplaats_shared.auth import current_principal, install_auth
from werkplaats_shared.authorization import install_authorization
from werkplaats_shared.contracts import POLICIES
from werkplaats_shared.deadletters_api import dead_letter_blueprint
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, Listed, QueryPage, add_health, create_app, service_errors
from werkplaats_shared.idempotency import install_idempotency
from werkplaats_shared.ratelimit import install_rate_limits
from werkplaats_shared.service import Infrastructure, health_checks, ready_reports
from werkplaats_shared.tokens import verifier_for

from ..adapters import orm
from ..domain.policies import POLICIES as POLICY_TEXTS
from ..service_layer import services
from .authorization import MATRIX
from .reach_api import reach_blueprint

T = TypeVar("T")


def _id() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=36))


class ObjectiveOut(Schema):
    name = fields.String()
    en = fields.String()
    nl = fields.String()
    minimise = fields.Boolean(metadata={"description": "true: as few as possible (blocking pairs); else as many"})


class PolicyOut(Schema):
    name = fields.String()
    selectable = fields.Boolean(metadata={"description": "false: used by the system only (re-runs after a decline)"})
    objectives = fields.List(fields.Nested(ObjectiveOut), metadata={"description": "solved in this order"})
    en = fields.String()
    nl = fields.String()


class RunOut(Schema):
    id = fields.String()
    batch_id = fields.String()
    workspace_id = fields.String()
    period = fields.String()
    policy = fields.String()
    status = fields.String(metadata={"description": "queued, running, solved (waiting for publication), "
                                                    "published, superseded, infeasible, failed or cancelled"})
    stage = fields.String(metadata={"description": "queued, building, solving, extracting or done"})
    elapsed_seconds = fields.Method("_elapsed", allow_none=True)
    trigger = fields.String(metadata={"description": "batch.submitted, coordinator, declined or withdrawn"})
    parent_run_id = fields.String(allow_none=True)
    auto_publish = fields.Boolean()
    controls = fields.Dict(allow_none=True, metadata={
        "description": "pins, forbids and reference pairs used; accepted: the pairs firms accepted, held like "
                       "pins; released: accepted pairs the coordinator let go, with the reason"})
    input_hash = fields.String()
    model_hash = fields.String(allow_none=True)
    seed = fields.Integer()
    solver = fields.String(allow_none=True)
    solver_version = fields.String(allow_none=True)
    library_versions = fields.Dict(allow_none=True)
    solver_status = fields.String(allow_none=True)
    objective = fields.Float(allow_none=True, metadata={"description": "total fit of the matches"})
    objective_values = fields.Dict(allow_none=True)
    gap = fields.Float(allow_none=True)
    progress = fields.Dict(allow_none=True, metadata={
        "description": "while solving: the objective being solved (step of steps), best value found, gap"})
    time_limit_reached = fields.Boolean()
    build_seconds = fields.Float(allow_none=True)
    solve_seconds = fields.Float(allow_none=True)
    figures = fields.Method("_figures", allow_none=True, metadata={
        "description": "served shares by region, level and institution, preference profile, blocking pairs "
                       "(as the stable policy defines them: count and the first few), unused capacity"})
    precheck = fields.Dict(allow_none=True, metadata={
        "description": "before solving: supply against demand per level x period x region x skill; each ranked "
                       "assignment that is not in the batch (team, rank, assignment)"})
    diagnosis = fields.Dict(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    published_at = UtcDateTime(allow_none=True)
    cancelled_at = UtcDateTime(allow_none=True)
    superseded_at = UtcDateTime(allow_none=True)

    def _elapsed(self, run: orm.Run) -> float | None:
        return services.elapsed_seconds(run)

    def _figures(self, run: orm.Run) -> Any:
        return run.figures  # the explanations' figures, kept apart: a run is shown without reading its explanations


class ExplanationsOut(Schema):
    run_id = fields.String()
    unmatched_assignments = fields.List(fields.Dict())
    unmatched_teams = fields.List(fields.Dict())
    matches = fields.List(fields.Dict(), metadata={"description": "each match with its score taken apart"})
    figures = fields.Dict()
    filters = fields.Dict(metadata={"description": "the eligibility filters, in the order applied, in plain "
                                                   "words; 'removed' counts candidates per filter"})
    held_by_round = fields.List(fields.Dict(), metadata={
        "description": "teams left out because another batch of the same workspace and period holds them "
                       "(team_id, batch_id), in plain words"})


class MatchOut(Schema):
    id = fields.String()
    run_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    firm_id = fields.String()
    institution_id = fields.String()
    score = fields.Float()
    response = fields.String(allow_none=True)
    responded_at = UtcDateTime(allow_none=True)


class CompareArgs(Schema):
    class Meta:
        unknown = RAISE

    a = _id()
    b = _id()


class PairOut(Schema):
    team_id = fields.String()
    assignment_id = fields.String()
    score = fields.Float()
    why = fields.Dict(metadata={"description": "added and removed pairs: why the pair changed (code, en, nl and "
                                              "the coordinator's reason where one was given)"})


class RunSummaryOut(Schema):
    id = fields.String()
    batch_id = fields.String()
    policy = fields.String()
    trigger = fields.String()
    status = fields.String()
    objective = fields.Float(allow_none=True)
    objective_values = fields.Dict(allow_none=True)
    figures = fields.Dict(allow_none=True)


class CompareOut(Schema):
    a = fields.Nested(RunSummaryOut)
    b = fields.Nested(RunSummaryOut)
    same_batch = fields.Boolean()
    added = fields.List(fields.Nested(PairOut), metadata={"description": "pairs in b, not in a"})
    removed = fields.List(fields.Nested(PairOut), metadata={"description": "pairs in a, not in b"})
    kept = fields.List(fields.Nested(PairOut))


class ResultArgs(Schema):
    class Meta:
        unknown = RAISE

    show = fields.String(load_default="matches", validate=validate.OneOf(
        ["matches", "unmatched_assignments", "unmatched_teams"]))
    level = fields.String(validate=validate.Length(min=1, max=10),
                          metadata={"description": "the team's level; an unmatched assignment: a level it accepts"})
    institution_id = fields.String(validate=validate.Length(min=1, max=36))
    firm_id = fields.String(validate=validate.Length(min=1, max=36))
    assignment_id = fields.List(fields.String(validate=validate.Length(min=1, max=36)),
                                validate=validate.Length(max=500),
                                metadata={"description": "only these assignments (repeat the parameter)"})
    min_fit = fields.Float(validate=validate.Range(min=0, max=1000))
    max_fit = fields.Float(validate=validate.Range(min=0, max=1000))
    answer = fields.String(validate=validate.OneOf(["pending", "accepted", "declined"]))
    sort = fields.String(load_default="fit_desc", validate=validate.OneOf(services.RESULT_SORTS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class ResultsOut(Schema):
    run_id = fields.String()
    status = fields.String()
    show = fields.String()
    total = fields.Integer(metadata={"description": "items that pass the filters"})
    page = fields.Integer()
    page_size = fields.Integer()
    items = fields.List(fields.Dict(), metadata={
        "description": "matches: team_id, assignment_id, firm_id, institution_id, level, fit, score (taken apart), "
                       "answer (pending, accepted or declined), responded_at; unmatched: the id(s), reason, en, nl, "
                       "counts, binding"})
    counts = fields.Dict(metadata={"description": "matches, unmatched_assignments, unmatched_teams (unfiltered)"})
    levels = fields.List(fields.String())
    institutions = fields.List(fields.Dict(), metadata={
        "description": "each institution with teams in the run: institution_id and one of its team_id (for its name)"})
    answers = fields.Dict(metadata={"description": "the firms' answers to the run's matches: accepted, declined, "
                                                  "pending (counts)"})


class ReleaseIn(Schema):
    team_id = _id()
    assignment_id = _id()
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class RunRequestIn(Schema):
    policy = fields.String(validate=validate.OneOf(POLICIES), metadata={"description": "default: the batch's"})
    release = fields.List(fields.Nested(ReleaseIn), validate=validate.Length(max=1000), metadata={
        "description": "pairs of the published matching a firm accepted that this re-run may change, each with "
                       "the coordinator's reason (audited as match.released); every other accepted pair is "
                       "held as it is"})
    auto_publish = fields.Boolean(metadata={"description": "publish when solved; default: the batch's"})
    seed = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**31 - 1),
                          metadata={"description": "the solver's random seed; default 0"})


class ControlIn(Schema):
    team_id = _id()
    assignment_id = _id()
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ControlOut(Schema):
    id = fields.String(dump_only=True)
    batch_id = fields.String(dump_only=True)
    kind = fields.String(dump_only=True)
    team_id = fields.String()
    assignment_id = fields.String()
    reason = fields.String()
    author_organisation_id = fields.String(dump_only=True)
    author_key_id = fields.String(dump_only=True, allow_none=True)
    created_at = UtcDateTime(dump_only=True)
    warning = fields.String(dump_only=True, allow_none=True,
                            metadata={"description": "a pin on a pair that can never be matched"})


class AuditOut(Schema):
    id = fields.String()
    batch_id = fields.String()
    run_id = fields.String(allow_none=True)
    action = fields.String()
    actor_organisation_id = fields.String(allow_none=True)
    actor_key_id = fields.String(allow_none=True)
    details = fields.Dict()
    occurred_at = UtcDateTime()


def create_matching_app(infra: Infrastructure) -> Flask:
    app, api = create_app("Werkplaats matching")
    install_auth(app, infra.engine, infra.api_keys, tokens=verifier_for(infra.settings))
    install_rate_limits(app, infra.settings)
    install_authorization(app, MATRIX)
    install_idempotency(app, infra.engine, orm.idempotency)
    add_health(app, health_checks(infra), ready_reports(infra))
    sf = infra.session_factory

    def in_tx(fn: Callable[..., T], *args: Any, emit: bool = False) -> T:
        with service_errors((services.ServiceError,), (services.NotFound,)), sf.begin() as session:
            if emit:
                return fn(session, infra.emit, current_principal(), *args)
            return fn(session, current_principal(), *args)
        raise AssertionError("unreachable")

    pol = Blueprint("policies", __name__, url_prefix="/policies",
                    description="Matching policies, each in plain words (Dutch and English)")

    @pol.route("")
    class Policies(MethodView):
        @pol.response(200, PolicyOut(many=True))
        def get(self) -> Any:
            return [{"name": p.name, "selectable": p.selectable, "en": p.en, "nl": p.nl,
                     "objectives": [vars(o) for o in p.objectives]} for p in POLICY_TEXTS.values()]

    runs = Blueprint("runs", __name__, url_prefix="/runs", description="Matching runs (jobs)")

    @runs.route("")
    class Runs(MethodView):
        @runs.response(200, RunOut(many=True))
        @runs.paginate(QueryPage, max_page_size=100)
        def get(self) -> Any:
            """The caller's runs, oldest first; as a list shows them: without the snapshot and explanations
            (GET /runs/{id}/explanations), the figures kept."""
            return Listed(sf, services.listed_runs(current_principal()), services.run_listed)

    @runs.route("/compare")
    class RunComparison(MethodView):
        @runs.arguments(CompareArgs, location="query", unknown=RAISE)
        @runs.response(200, CompareOut)
        def get(self, args: dict[str, str]) -> Any:
            return in_tx(services.compare_runs, args["a"], args["b"])

    @runs.route("/<run_id>")
    class RunItem(MethodView):
        @runs.response(200, RunOut)
        def get(self, run_id: str) -> Any:
            return in_tx(services.visible_run, run_id)

    @runs.route("/<run_id>/explanations")
    class RunExplanations(MethodView):
        @runs.response(200, ExplanationsOut)
        def get(self, run_id: str) -> Any:
            run, explanations = in_tx(services.explained_run, run_id)
            if explanations is None:
                abort(409, message=f"a {run.status} run has no explanations",
                      errors=[{"field": "status", "reason": "the run has no matching (yet)"}])
            return {"run_id": run.id, **(explanations or {})}

    @runs.route("/<run_id>/results")
    class RunResults(MethodView):
        @runs.arguments(ResultArgs, location="query", unknown=RAISE)
        @runs.response(200, ResultsOut)
        def get(self, args: dict[str, Any], run_id: str) -> Any:
            """One page of the run's result, filtered and sorted by matching (big rounds): its matches with their
            fit and the firm's answer, or its unmatched assignments or teams with the reason in words."""
            return in_tx(services.run_results, run_id, args)

    @runs.route("/<run_id>/cancel")
    class RunCancel(MethodView):
        @runs.response(200, RunOut)
        def post(self, run_id: str) -> Any:
            return in_tx(services.cancel_run, run_id, emit=True)

    @runs.route("/<run_id>/publish")
    class RunPublish(MethodView):
        @runs.response(200, RunOut)
        def post(self, run_id: str) -> Any:
            return in_tx(services.publish_run, run_id, emit=True)

    def model_view(fmt: str) -> type[MethodView]:
        class RunModel(MethodView):
            @runs.doc(responses={"200": {"description": f"the model as a .{fmt} file",
                                         "content": {"text/plain": {}}}})
            def get(self, run_id: str) -> Any:
                body = in_tx(services.run_model, run_id, fmt)
                return Response(body, mimetype="text/plain", headers={
                    "Content-Disposition": f'attachment; filename="run-{run_id}.{fmt}"'})

        RunModel.__name__ = f"RunModel{fmt.upper()}"
        return RunModel

    runs.route("/<run_id>/model.lp")(model_view("lp"))
    runs.route("/<run_id>/model.mps")(model_view("mps"))

    bat = Blueprint("batches", __name__, url_prefix="/batches",
                    description="A coordinator's control over a batch: pins, forbids, re-runs, audit trail")

    @bat.route("/<batch_id>/runs")
    class BatchRuns(MethodView):
        @bat.response(200, RunOut(many=True))
        def get(self, batch_id: str) -> Any:
            with sf() as session:
                try:
                    services.visible_batch(session, current_principal(), batch_id)
                except services.NotFound:
                    abort(404, message="not found")
                return services.batch_runs(session, current_principal(), batch_id)

        @bat.arguments(RunRequestIn)
        @bat.response(202, RunOut)
        def post(self, data: dict[str, Any], batch_id: str) -> Any:
            run = in_tx(services.request_run, batch_id, data, infra.settings.max_open_runs)
            return run, 202, {"Location": url_for("runs.RunItem", run_id=run.id)}

    def control_views(kind: str, plural: str) -> None:
        class Controls(MethodView):
            @bat.response(200, ControlOut(many=True))
            def get(self, batch_id: str) -> Any:
                return in_tx(services.list_controls, batch_id, kind)

            @bat.arguments(ControlIn)
            @bat.response(201, ControlOut)
            def post(self, data: dict[str, Any], batch_id: str) -> Any:
                control = in_tx(services.add_control, batch_id, kind, data)
                return control, 201, {"Location": url_for(
                    f"batches.{plural.title()}Item", batch_id=batch_id, control_id=control["id"])}

        class ControlItem(MethodView):
            @bat.response(204)
            def delete(self, batch_id: str, control_id: str) -> Any:
                in_tx(services.remove_control, batch_id, kind, control_id)
                return None

        Controls.__name__ = plural.title()
        ControlItem.__name__ = f"{plural.title()}Item"
        bat.route(f"/<batch_id>/{plural}")(Controls)
        bat.route(f"/<batch_id>/{plural}/<control_id>")(ControlItem)

    control_views("pin", "pins")
    control_views("forbid", "forbids")

    @bat.route("/<batch_id>/audit")
    class BatchAudit(MethodView):
        @bat.response(200, AuditOut(many=True))
        @bat.paginate(QueryPage, max_page_size=100)
        def get(self, batch_id: str) -> Any:
            return Listed(sf, in_tx(services.audit_query, batch_id))

    matches = Blueprint("matches", __name__, url_prefix="/matches",
                        description="Matches: all of a coordinator's runs; an institution's or firm's own "
                                    "published matches")

    @matches.route("")
    class Matches(MethodView):
        @matches.response(200, MatchOut(many=True))
        @matches.paginate(QueryPage, max_page_size=100)
        def get(self) -> Any:
            return Listed(sf, services.visible_matches(current_principal()))

    for blueprint in (pol, runs, bat, matches, reach_blueprint(infra), dead_letter_blueprint(infra)):
        api.register_blueprint(blueprint)
    return app
