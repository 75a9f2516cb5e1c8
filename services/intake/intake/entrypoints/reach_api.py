"""``GET /reach``: a workspace's reach figures in a date range, for its coordinator (counts only)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Api
from werkplaats_shared.auth import current_principal, refuse
from werkplaats_shared.http import Blueprint
from werkplaats_shared.reach import ReachOut, ReachQuery
from werkplaats_shared.service import Infrastructure

from ..service_layer import reach


def register_reach(api: Api, infra: Infrastructure) -> None:
    blp = Blueprint("reach", __name__, url_prefix="/reach",
                    description="Reach figures of a workspace: firms, assignments, teams, students, referrals")
    sf = infra.session_factory

    @blp.route("")
    class Reach(MethodView):
        @blp.arguments(ReachQuery, location="query")
        @blp.response(200, ReachOut)
        def get(self, query: dict[str, Any]) -> Any:
            """Counts by region (the firm's province), level, period, theme and month; each firm, assignment,
            team and referral counted once. Another's workspace, or an unknown one: 403."""
            with sf() as session:
                try:
                    return reach.reach(session, current_principal().organisation_id, query["workspace_id"],
                                       query["from_"], query["to"])
                except reach.NotYours:
                    refuse(403, "not one of your workspaces", "workspace_id")

    api.register_blueprint(blp)
