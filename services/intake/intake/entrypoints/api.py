"""Intake's HTTP API: thin views that translate HTTP to the service layer and back."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable, TypeVar

import sqlalchemy as sa
from flask import Flask, Response, request, url_for
from flask.views import MethodView
from flask_smorest import Page, abort
from marshmallow import ValidationError
from werkplaats_shared import claimcheck
from werkplaats_shared.auth import current_principal, install_auth, refuse
from werkplaats_shared.authorization import install_authorization
from werkplaats_shared.db import utcnow
from werkplaats_shared.deadletters_api import dead_letter_blueprint
from werkplaats_shared.http import Blueprint, Listed, QueryPage, add_health, create_app, service_errors
from werkplaats_shared.idempotency import install_idempotency
from werkplaats_shared.ratelimit import install_rate_limits
from werkplaats_shared.service import Infrastructure, health_checks, ready_reports
from werkplaats_shared.tokens import verifier_for

from ..adapters import orm
from ..adapters.accounts_orm import Account
from ..domain.model import DomainError
from ..service_layer import accounts, assignments_bulk, services
from ..service_layer.accounts import AccountError
from .accounts_api import TOKENS_PATH, register_accounts
from .authorization import MATRIX
from .bulk_api import register_bulk
from .firms_api import register_firms
from .i18n import install_translations
from .organisations_api import register_organisations
from .overview_api import register_overview
from .placements_api import register_placements
from .privacy_api import register_privacy
from .reach_api import register_reach
from .schemas import (
    SCHEME_CODE,
    AssignmentFilter,
    AssignmentIn,
    AssignmentOut,
    AssignmentPatch,
    AssignmentsBulkIn,
    AssignmentsBulkOut,
    BatchFilter,
    BatchIn,
    BatchOut,
    BatchPatch,
    BatchSummaryOut,
    CapacityIn,
    CapacityOut,
    FirmIn,
    FirmOut,
    FirmPatch,
    HandoverIn,
    HandoverOut,
    InstitutionOut,
    InstitutionPatch,
    MeOut,
    ReferralFilter,
    ReferralOut,
    SchemeIn,
    SchemeOut,
    TeamFilter,
    TeamIn,
    TeamOut,
    TeamPatch,
    WorkspaceIn,
    WorkspaceOut,
)
from .sign_in_api import PUBLIC_PATHS, PUBLIC_PREFIXES, LanguageIn, MeAccountOut, register_sign_in

T = TypeVar("T")
BULK_MAX_BYTES = 8 * 1024 * 1024  # POST /assignments/bulk
ASSIGNMENT_IN = AssignmentIn()  # each item of POST /assignments/bulk: made once, not per request


def create_intake_app(infra: Infrastructure, clock: Callable[[], datetime] = utcnow) -> Flask:
    """``clock`` decides when sign-in links, invitations, sessions and sign-in locks expire (tests set it)."""
    app, api = create_app("Werkplaats intake")
    install_auth(app, infra.engine, infra.api_keys, (TOKENS_PATH, *PUBLIC_PREFIXES, claimcheck.PATH),
                 tokens=verifier_for(infra.settings), public_paths=PUBLIC_PATHS)
    install_rate_limits(app, infra.settings)
    install_authorization(app, MATRIX)
    install_idempotency(app, infra.engine, orm.idempotency)
    add_health(app, health_checks(infra), ready_reports(infra))
    install_translations(app)
    sf = infra.session_factory

    def in_tx(fn: Callable[..., T], *args: Any, emit: bool = False) -> T:
        with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
            if emit:
                return fn(session, lambda env: infra.emit(session, env), *args)
            return fn(session, *args)
        raise AssertionError("unreachable")

    @app.get(claimcheck.PATH + "<snapshot_id>", endpoint="batch_snapshot")
    def batch_snapshot(snapshot_id: str) -> Response:
        """A stored batch snapshot, for matching's signed request only (claimcheck.py); not in the API docs."""
        if not claimcheck.signature_valid(infra.settings.secret_key, snapshot_id, request.args.get("expires", ""),
                                          request.args.get("signature", "")):
            refuse(403, "the signature of this snapshot request is not valid or has expired", "signature")
        with sf() as session:
            found = services.batch_snapshot_body(session, snapshot_id)
        if found is None:
            abort(404, message="no such batch snapshot")
            raise AssertionError("unreachable")
        body, headers = found
        return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store", **headers})

    def created(body: Any, endpoint: str, **values: Any) -> tuple[Any, int, dict[str, str]]:
        return body, 201, {"Location": url_for(endpoint, **values)}

    me = Blueprint("me", __name__, url_prefix="/me",
                   description="The calling organisation, and the person when the caller signed in with an account")

    @me.route("")
    class Me(MethodView):
        @me.response(200, MeOut)
        def get(self) -> Any:
            principal = current_principal()
            with sf() as session:
                org = services.caller_organisation(session, principal)
                account = session.get(Account, principal.account_id) if principal.account_id else None
                return {"id": org.id, "name": org.name, "role": org.role, "levels": org.levels,
                        "organisation_name": org.name,
                        "account": None if account is None else {"id": account.id, "email": account.email,
                                                                 "language": account.language}}

    @me.route("/language")
    class MeLanguage(MethodView):
        @me.arguments(LanguageIn)
        @me.response(200, MeAccountOut)
        def put(self, data: dict[str, Any]) -> Any:
            """The signed-in person's language (nl or en): of the portal's pages and of the mails they get."""
            with service_errors((AccountError,), (services.NotFound,)), sf.begin() as session:
                return accounts.set_language(session, current_principal(), data["language"])

    ws = Blueprint("workspaces", __name__, url_prefix="/workspaces",
                   description="Workspaces: working area (CBS municipality codes) and calendar")

    @ws.route("")
    class Workspaces(MethodView):
        @ws.response(200, WorkspaceOut(many=True))
        @ws.paginate(QueryPage, max_page_size=100)
        def get(self) -> Any:
            return Listed(sf, sa.select(orm.Workspace).order_by(orm.Workspace.created_at, orm.Workspace.id))

        @ws.arguments(WorkspaceIn)
        @ws.response(201, WorkspaceOut)
        def post(self, data: dict[str, Any]) -> Any:
            w = in_tx(services.create_workspace, current_principal(), data)
            return created(w, "workspaces.WorkspaceItem", workspace_id=w.id)

    @ws.route("/<workspace_id>")
    class WorkspaceItem(MethodView):
        @ws.response(200, WorkspaceOut)
        def get(self, workspace_id: str) -> Any:
            return in_tx(services.get_workspace, workspace_id)

    teams = Blueprint("teams", __name__, url_prefix="/teams", description="Student teams (pseudonymous)")

    @teams.route("")
    class Teams(MethodView):
        @teams.arguments(TeamFilter, location="query")
        @teams.response(200, TeamOut(many=True))
        @teams.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            return Listed(sf, services.filtered(services.visible_teams(current_principal()), orm.Team, filters))

        @teams.arguments(TeamIn)
        @teams.response(201, TeamOut)
        def post(self, data: dict[str, Any]) -> Any:
            def register(session: Any, emit: Any) -> orm.Team:
                return services.register_team(session, current_principal(), data, emit)

            t = in_tx(register, emit=True)
            return created(t, "teams.TeamItem", team_id=t.id)

    @teams.route("/<team_id>")
    @teams.etag
    class TeamItem(MethodView):
        @teams.response(200, TeamOut)
        def get(self, team_id: str) -> Any:
            return in_tx(services.get_visible, services.visible_teams(current_principal()), orm.Team, team_id)

        @teams.arguments(TeamPatch)
        @teams.response(200, TeamOut)
        def patch(self, data: dict[str, Any], team_id: str) -> Any:
            def update(session: Any) -> orm.Team:
                team: orm.Team = services.get_visible(session, services.visible_teams(current_principal()),
                                                      orm.Team, team_id)
                teams.check_etag(team, TeamOut)
                return services.update_team(session, team, data)

            return in_tx(update)

    asg = Blueprint("assignments", __name__, url_prefix="/assignments", description="Firms' assignments")

    @asg.route("")
    class Assignments(MethodView):
        @asg.arguments(AssignmentFilter, location="query")
        @asg.response(200, AssignmentOut(many=True))
        @asg.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            return Listed(sf, services.filtered(services.visible_assignments(current_principal()), orm.Assignment,
                                                filters))

        @asg.arguments(AssignmentIn)
        @asg.response(201, AssignmentOut)
        def post(self, data: dict[str, Any]) -> Any:
            a, routing = in_tx(services.submit_assignment, current_principal(), data, emit=True)
            body = {c.key: getattr(a, c.key) for c in orm.Assignment.__table__.columns}
            body["firm_name"] = a.firm_name
            body["routing"] = {"outcome": routing.outcome, "workspace_id": routing.workspace_id,
                               "reason": routing.reason}
            return created(body, "assignments.AssignmentItem", assignment_id=a.id)

    @asg.url_value_preprocessor
    def _bulk_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
        """Runs before the before_request hooks (one of them reads the body): a bulk request may be larger
        than the app's 1 MiB cap."""
        if endpoint == "assignments.AssignmentsBulk" and request.method == "POST":
            request.max_content_length = BULK_MAX_BYTES

    @asg.route("/bulk")
    class AssignmentsBulk(MethodView):
        @asg.arguments(AssignmentsBulkIn)
        @asg.response(201, AssignmentsBulkOut)
        def post(self, data: dict[str, Any]) -> Any:
            """Submit many assignments of the calling firm at once: all of them, or none.

            Each item is what ``POST /assignments`` takes, under the same rules (routing to the workspace
            that covers the firm, or referral). When any item is wrong, nothing is stored and the answer
            (422) names every bad item: ``row`` is its position in ``assignments`` (from 0), ``field`` the
            path (``assignments.3.title``) and ``reason`` why. Send an ``Idempotency-Key`` to retry safely:
            the same key and body answer the first response again and store nothing twice."""
            schema = ASSIGNMENT_IN
            loaded: list[tuple[int, dict[str, Any]]] = []
            problems: list[assignments_bulk.Problem] = []
            for n, item in enumerate(data["assignments"]):
                try:
                    loaded.append((n, schema.load(item)))
                except ValidationError as exc:
                    problems += [assignments_bulk.Problem(n, path, reason)
                                 for path, reason in assignments_bulk.flatten_messages(exc.messages)]
            try:
                with service_errors((DomainError,), (services.NotFound,)), sf.begin() as session:
                    done = assignments_bulk.submit_assignments(
                        session, lambda env: infra.emit(session, env), current_principal(), loaded, problems,
                        emit_all=lambda envs: infra.emit_all(session, envs))
            except assignments_bulk.ItemsRejected as exc:
                rows = len({p.row for p in exc.problems})
                abort(422, message=f"{len(exc.problems)} problems in {rows} assignments; nothing was stored",
                      errors=[{"field": f"assignments.{p.row}.{p.field}", "row": p.row, "reason": p.reason}
                              for p in exc.problems])
            return {"count": len(done), "assignments": [
                {"row": d.row, "id": d.id, "workspace_id": d.workspace_id, "status": d.status,
                 "routing": {"outcome": d.routing.outcome, "workspace_id": d.routing.workspace_id,
                             "reason": d.routing.reason}} for d in done]}, 201

    @asg.route("/<assignment_id>")
    @asg.etag
    class AssignmentItem(MethodView):
        @asg.response(200, AssignmentOut)
        def get(self, assignment_id: str) -> Any:
            return in_tx(services.get_visible, services.visible_assignments(current_principal()),
                         orm.Assignment, assignment_id)

        @asg.arguments(AssignmentPatch)
        @asg.response(200, AssignmentOut)
        def patch(self, data: dict[str, Any], assignment_id: str) -> Any:
            def update(session: Any) -> orm.Assignment:
                assignment: orm.Assignment = services.get_visible(
                    session, services.visible_assignments(current_principal()), orm.Assignment, assignment_id)
                asg.check_etag(assignment, AssignmentOut)
                return services.update_assignment(session, assignment, data)

            return in_tx(update)

    @asg.route("/<assignment_id>/withdraw")
    class AssignmentWithdrawal(MethodView):
        @asg.response(200, AssignmentOut)
        def post(self, assignment_id: str) -> Any:
            def withdraw(session: Any, emit: Any) -> orm.Assignment:
                assignment = services.get_visible(
                    session, services.visible_assignments(current_principal()), orm.Assignment, assignment_id)
                return services.withdraw_assignment(session, assignment, emit)

            return in_tx(withdraw, emit=True)

    bat = Blueprint("batches", __name__, url_prefix="/batches", description="Batches for a matching round")

    def batch_view(session: Any, batch: orm.Batch) -> dict[str, Any]:
        assignments = session.execute(
            sa.select(orm.Assignment).where(orm.Assignment.batch_id == batch.id)
            .order_by(orm.Assignment.id)).scalars().all()
        last_run = None if batch.last_run_id is None else {
            "run_id": batch.last_run_id, "status": batch.last_run_status, "trigger": batch.last_run_trigger,
            "ended_at": batch.last_run_ended_at, "error": batch.last_run_error,
            "diagnosis": batch.last_run_diagnosis}
        return {**{c: getattr(batch, c) for c in ("id", "workspace_id", "period", "policy", "auto_publish", "status",
                                                         "run_id", "fairness_floors", "closed_at",
                                                         "released_assignment_ids", "round_workspace_ids")},
                "assignments": assignments, "matches": services.batch_matches(session, batch.id, batch.run_id),
                "last_run": last_run}

    @bat.route("")
    class Batches(MethodView):
        @bat.arguments(BatchFilter, location="query")
        @bat.response(200, BatchSummaryOut(many=True))
        @bat.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            return Listed(sf, services.filtered(services.visible_batches(current_principal()), orm.Batch, filters))

        @bat.arguments(BatchIn)
        @bat.response(201, BatchOut)
        def post(self, data: dict[str, Any]) -> Any:
            def submit(session: Any, emit: Any) -> dict[str, Any]:
                batch = services.submit_batch(session, emit, current_principal(), data,
                                              inline_max_bytes=services.inline_max_bytes(infra.settings))
                return batch_view(session, batch)

            body = in_tx(submit, emit=True)
            return created(body, "batches.BatchItem", batch_id=body["id"])

    @bat.route("/<batch_id>")
    @bat.etag
    class BatchItem(MethodView):
        @bat.response(200, BatchOut)
        def get(self, batch_id: str) -> Any:
            def view(session: Any) -> dict[str, Any]:
                batch = services.get_visible(session, services.visible_batches(current_principal()),
                                             orm.Batch, batch_id)
                return batch_view(session, batch)

            return in_tx(view)

        @bat.arguments(BatchPatch)
        @bat.response(200, BatchOut)
        def patch(self, data: dict[str, Any], batch_id: str) -> Any:
            """Change a batch whose run ended without a matching (infeasible, failed or cancelled): policy,
            fairness floors, auto_publish. Needs If-Match; matching then runs the batch again."""
            def update(session: Any, emit: Any) -> dict[str, Any]:
                batch = services.get_visible(session, services.visible_batches(current_principal()),
                                             orm.Batch, batch_id, lock=True)
                bat.check_etag(batch_view(session, batch), BatchOut)
                services.update_batch(session, emit, current_principal(), batch, data,
                                      inline_max_bytes=services.inline_max_bytes(infra.settings))
                return batch_view(session, batch)

            return in_tx(update, emit=True)

    @bat.route("/<batch_id>/close")
    class BatchClose(MethodView):
        @bat.response(200, BatchOut)
        def post(self, batch_id: str) -> Any:
            """Close a batch whose run ended without a matching: its assignments are released for a new batch
            and matching runs it no more."""
            def close(session: Any, emit: Any) -> dict[str, Any]:
                batch = services.get_visible(session, services.visible_batches(current_principal()),
                                             orm.Batch, batch_id, lock=True)
                services.close_batch(session, emit, current_principal(), batch)
                return batch_view(session, batch)

            return in_tx(close, emit=True)

    firm = Blueprint("firm", __name__, url_prefix="/firm",
                     description="The calling firm's profile; its municipality decides which workspace serves it")

    @firm.route("")
    @firm.etag
    class Firm(MethodView):
        @firm.response(200, FirmOut)
        def get(self) -> Any:
            found = in_tx(services.caller_organisation, current_principal())
            if found.kvk_number is None:
                abort(404, message="no firm profile yet: POST /firm")
            return found

        @firm.arguments(FirmIn)
        @firm.response(201, FirmOut)
        def post(self, data: dict[str, Any]) -> Any:
            def register(session: Any) -> orm.Organisation:
                return services.register_firm(session, current_principal(), data, create=True)

            return created(in_tx(register), "firm.Firm")

        @firm.arguments(FirmPatch)
        @firm.response(200, FirmOut)
        def patch(self, data: dict[str, Any]) -> Any:
            def update(session: Any) -> orm.Organisation:
                current = services.caller_organisation(session, current_principal())
                if current.kvk_number is None:
                    raise services.NotFound(current.id)
                firm.check_etag(current, FirmOut)
                return services.register_firm(session, current_principal(), data, create=False)

            return in_tx(update)

    ref = Blueprint("referrals", __name__, url_prefix="/referrals",
                    description="Firms outside every working area, referred to support schemes")

    @ref.route("")
    class Referrals(MethodView):
        @ref.arguments(ReferralFilter, location="query")
        @ref.response(200, ReferralOut(many=True))
        @ref.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            """The referrals you may see, a page at a time: a firm its own, a coordinator its workspaces'."""
            return Listed(sf, services.referral_query(current_principal(), **filters))

    schemes = Blueprint("referral_schemes", __name__, url_prefix="/referral-schemes",
                        description="Support schemes out-of-area firms are referred to: the national list (kept by "
                                    "the operator) and each workspace's own (kept by its coordinator)")

    @schemes.route("")
    class Schemes(MethodView):
        @schemes.response(200, SchemeOut(many=True))
        @schemes.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            """The caller's applicable list: the national schemes, with a coordinator's own workspaces'
            schemes and an entrepreneur's referring workspaces' schemes."""
            with sf() as session:
                return services.applicable_schemes(session, current_principal())

    @ws.route("/<workspace_id>/referral-schemes/<code>")
    class WorkspaceScheme(MethodView):
        @ws.arguments(SchemeIn)
        @ws.response(200, SchemeOut)
        def put(self, data: dict[str, Any], workspace_id: str, code: str) -> Any:
            """Create or change one of the workspace's own schemes (its coordinator only; audited). Its
            referrals offer these and the national ones; the national list is not changed here."""
            if not re.fullmatch(SCHEME_CODE, code):
                abort(422, message="invalid scheme code",
                      errors=[{"field": "code", "reason": "lowercase letters, digits and '-', at most 40"}])
            return in_tx(services.put_scheme, current_principal(), workspace_id, code, data)

    hand = Blueprint("handovers", __name__, url_prefix="/handovers",
                     description="Move firms and their open assignments to another workspace, audited")

    @hand.route("")
    class Handovers(MethodView):
        @hand.response(200, HandoverOut(many=True))
        @hand.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                own = sa.select(orm.Workspace.id).where(orm.Workspace.organisation_id ==
                                                        current_principal().organisation_id)
                return session.execute(sa.select(orm.Handover).where(sa.or_(
                    orm.Handover.from_workspace_id.in_(own), orm.Handover.to_workspace_id.in_(own)))
                    .order_by(orm.Handover.created_at)).scalars().all()

        @hand.arguments(HandoverIn)
        @hand.response(201, HandoverOut)
        def post(self, data: dict[str, Any]) -> Any:
            return in_tx(services.hand_over, current_principal(), data, emit=True)

    inst = Blueprint("institution", __name__, url_prefix="/institution",
                     description="The calling institution's programmes and campuses")

    @inst.route("")
    @inst.etag
    class Institution(MethodView):
        @inst.response(200, InstitutionOut)
        def get(self) -> Any:
            return in_tx(services.caller_organisation, current_principal())

        @inst.arguments(InstitutionPatch)
        @inst.response(200, InstitutionOut)
        def patch(self, data: dict[str, Any]) -> Any:
            def update(session: Any) -> orm.Organisation:
                inst.check_etag(services.caller_organisation(session, current_principal()), InstitutionOut)
                return services.update_institution(session, current_principal(), data)

            return in_tx(update)

    cap = Blueprint("capacity", __name__, url_prefix="/capacity",
                    description="Institutions' capacity per workspace period and level")

    @cap.route("")
    class Capacities(MethodView):
        @cap.response(200, CapacityOut(many=True))
        @cap.paginate(QueryPage, max_page_size=100)
        def get(self) -> Any:
            return Listed(sf, services.visible_capacities(current_principal()))

        @cap.arguments(CapacityIn)
        @cap.response(201, CapacityOut)
        def post(self, data: dict[str, Any]) -> Any:
            c = in_tx(services.register_capacity, current_principal(), data, emit=True)
            return created(c, "capacity.CapacityItem", capacity_id=c.id)

    @cap.route("/<capacity_id>")
    class CapacityItem(MethodView):
        @cap.response(200, CapacityOut)
        def get(self, capacity_id: str) -> Any:
            return in_tx(services.get_visible, services.visible_capacities(current_principal()), orm.Capacity,
                         capacity_id)

    for blueprint in (me, ws, teams, asg, bat, firm, ref, schemes, hand, inst, cap):
        api.register_blueprint(blueprint)
    register_bulk(api, infra)
    register_accounts(app, api, infra)
    register_sign_in(app, api, infra, clock)
    register_privacy(app, api, infra)
    register_placements(api, infra)
    register_firms(api, infra)
    register_reach(api, infra)
    register_overview(api, infra)
    register_organisations(app, api, infra)
    api.register_blueprint(dead_letter_blueprint(infra))
    return app
