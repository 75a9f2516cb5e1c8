"""``GET /workspaces/{id}/overview``: a coordinator's workspace in counts (open assignments and teams per period
and level, referrals, handovers), for the portal's workspace overview; another organisation's workspace is 404."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Api
from marshmallow import Schema, fields
from werkplaats_shared.auth import current_principal
from werkplaats_shared.http import Blueprint, service_errors
from werkplaats_shared.service import Infrastructure

from ..service_layer import overview
from ..service_layer.services import NotFound


class PeriodLevelCountOut(Schema):
    period = fields.String()
    level = fields.String()
    count = fields.Integer()


class WorkspaceOverviewOut(Schema):
    workspace_id = fields.String()
    open_assignments = fields.Integer(metadata={
        "description": "assignments submitted, in a round or left without a team"})
    open_assignments_by_period_level = fields.List(fields.Nested(PeriodLevelCountOut), metadata={
        "description": "an assignment that accepts several levels counts under each"})
    teams = fields.Integer()
    teams_by_period_level = fields.List(fields.Nested(PeriodLevelCountOut))
    referrals = fields.Integer(metadata={"description": "referrals made from this workspace"})
    handovers = fields.Integer(metadata={"description": "handovers from or to this workspace"})


def register_overview(api: Api, infra: Infrastructure) -> None:
    blp = Blueprint("workspace_overview", __name__, url_prefix="/workspaces",
                    description="A coordinator's workspace in counts")
    sf = infra.session_factory

    @blp.route("/<workspace_id>/overview")
    class WorkspaceOverview(MethodView):
        @blp.response(200, WorkspaceOverviewOut)
        def get(self, workspace_id: str) -> Any:
            """Open assignments and teams per period and level, referrals and handovers, counted."""
            with service_errors((), (NotFound,)), sf() as session:
                return overview.workspace_overview(session, current_principal(), workspace_id)

    api.register_blueprint(blp)
