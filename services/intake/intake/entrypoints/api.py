"""Intake's HTTP API: thin views that translate HTTP to the service layer and back."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import sqlalchemy as sa
from flask import Flask, url_for
from flask.views import MethodView
from flask_smorest import Page, abort
from werkplaats_shared.auth import current_principal, install_auth, roles
from werkplaats_shared.http import Blueprint, add_health, create_app
from werkplaats_shared.idempotency import install_idempotency
from werkplaats_shared.service import Infrastructure, health_checks

from ..adapters import orm
from ..domain.model import DomainError
from ..service_layer import services
from .schemas import (
    AssignmentFilter,
    AssignmentIn,
    AssignmentOut,
    AssignmentPatch,
    BatchFilter,
    BatchIn,
    BatchOut,
    BatchSummaryOut,
    OrganisationOut,
    TeamFilter,
    TeamIn,
    TeamOut,
    TeamPatch,
    WorkspaceIn,
    WorkspaceOut,
)

T = TypeVar("T")

def create_intake_app(infra: Infrastructure) -> Flask:
    app, api = create_app("Werkplaats intake")
    install_auth(app, infra.engine, infra.api_keys)
    install_idempotency(app, infra.engine, orm.idempotency)
    add_health(app, health_checks(infra))
    sf = infra.session_factory

    def in_tx(fn: Callable[..., T], *args: Any, emit: bool = False) -> T:
        try:
            with sf.begin() as session:
                if emit:
                    return fn(session, lambda env: infra.emit(session, env), *args)
                return fn(session, *args)
        except DomainError as exc:
            abort(exc.status, message=exc.reason, errors=[{"field": exc.field, "reason": exc.reason}])
        except services.NotFound:
            abort(404, message="not found")
        raise AssertionError("unreachable")

    def created(body: Any, endpoint: str, **values: Any) -> tuple[Any, int, dict[str, str]]:
        return body, 201, {"Location": url_for(endpoint, **values)}

    me = Blueprint("me", __name__, url_prefix="/me", description="The calling organisation")

    @me.route("")
    class Me(MethodView):
        @me.response(200, OrganisationOut)
        def get(self) -> Any:
            return in_tx(services.caller_organisation, current_principal())

    ws = Blueprint("workspaces", __name__, url_prefix="/workspaces",
                   description="Workspaces: working area (CBS municipality codes) and calendar")

    @ws.route("")
    class Workspaces(MethodView):
        @ws.response(200, WorkspaceOut(many=True))
        @ws.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                return session.execute(
                    sa.select(orm.Workspace).order_by(orm.Workspace.created_at, orm.Workspace.id)
                ).scalars().all()

        @roles("coordinator")
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
        @teams.paginate(Page, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            with sf() as session:
                query = services.filtered(services.visible_teams(current_principal()), orm.Team, filters)
                return session.execute(query).scalars().all()

        @roles("institution")
        @teams.arguments(TeamIn)
        @teams.response(201, TeamOut)
        def post(self, data: dict[str, Any]) -> Any:
            t = in_tx(services.register_team, current_principal(), data)
            return created(t, "teams.TeamItem", team_id=t.id)

    @teams.route("/<team_id>")
    @teams.etag
    class TeamItem(MethodView):
        @teams.response(200, TeamOut)
        def get(self, team_id: str) -> Any:
            return in_tx(services.get_visible, services.visible_teams(current_principal()), orm.Team, team_id)

        @roles("institution")
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
        @asg.paginate(Page, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            with sf() as session:
                query = services.filtered(services.visible_assignments(current_principal()), orm.Assignment,
                                          filters)
                return session.execute(query).scalars().all()

        @roles("entrepreneur")
        @asg.arguments(AssignmentIn)
        @asg.response(201, AssignmentOut)
        def post(self, data: dict[str, Any]) -> Any:
            a = in_tx(services.submit_assignment, current_principal(), data)
            return created(a, "assignments.AssignmentItem", assignment_id=a.id)

    @asg.route("/<assignment_id>")
    @asg.etag
    class AssignmentItem(MethodView):
        @asg.response(200, AssignmentOut)
        def get(self, assignment_id: str) -> Any:
            return in_tx(services.get_visible, services.visible_assignments(current_principal()),
                         orm.Assignment, assignment_id)

        @roles("entrepreneur")
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
        @roles("entrepreneur", "coordinator")
        @asg.response(200, AssignmentOut)
        def post(self, assignment_id: str) -> Any:
            def withdraw(session: Any) -> orm.Assignment:
                assignment = services.get_visible(
                    session, services.visible_assignments(current_principal()), orm.Assignment, assignment_id)
                return services.withdraw_assignment(session, assignment)

            return in_tx(withdraw)

    bat = Blueprint("batches", __name__, url_prefix="/batches", description="Batches for a matching round")

    def batch_view(session: Any, batch: orm.Batch) -> dict[str, Any]:
        assignments = session.execute(
            sa.select(orm.Assignment).where(orm.Assignment.batch_id == batch.id)
            .order_by(orm.Assignment.id)).scalars().all()
        return {**{c: getattr(batch, c) for c in ("id", "workspace_id", "period", "policy", "status", "run_id")},
                "assignments": assignments, "matches": services.batch_matches(session, batch.id, batch.run_id)}

    @bat.route("")
    class Batches(MethodView):
        @roles("coordinator")
        @bat.arguments(BatchFilter, location="query")
        @bat.response(200, BatchSummaryOut(many=True))
        @bat.paginate(Page, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            with sf() as session:
                query = services.filtered(services.visible_batches(current_principal()), orm.Batch, filters)
                return session.execute(query).scalars().all()

        @roles("coordinator")
        @bat.arguments(BatchIn)
        @bat.response(201, BatchOut)
        def post(self, data: dict[str, Any]) -> Any:
            def submit(session: Any, emit: Any) -> dict[str, Any]:
                batch = services.submit_batch(session, emit, current_principal(), data)
                return batch_view(session, batch)

            body = in_tx(submit, emit=True)
            return created(body, "batches.BatchItem", batch_id=body["id"])

    @bat.route("/<batch_id>")
    class BatchItem(MethodView):
        @roles("coordinator")
        @bat.response(200, BatchOut)
        def get(self, batch_id: str) -> Any:
            def view(session: Any) -> dict[str, Any]:
                batch = services.get_visible(session, services.visible_batches(current_principal()),
                                             orm.Batch, batch_id)
                return batch_view(session, batch)

            return in_tx(view)

    for blueprint in (me, ws, teams, asg, bat):
        api.register_blueprint(blueprint)
    return app
