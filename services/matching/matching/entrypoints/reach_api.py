"""``GET /reach``: the assignments served and teams placed in a workspace's rounds, for its coordinator."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from werkplaats_shared.auth import current_principal, refuse
from werkplaats_shared.http import Blueprint
from werkplaats_shared.reach import ReachOut, ReachQuery
from werkplaats_shared.service import Infrastructure

from ..service_layer import reach


def reach_blueprint(infra: Infrastructure) -> Blueprint:
    blp = Blueprint("reach", __name__, url_prefix="/reach",
                    description="Reach figures of a workspace's rounds: assignments served, teams placed")
    sf = infra.session_factory

    @blp.route("")
    class Reach(MethodView):
        @blp.arguments(ReachQuery, location="query")
        @blp.response(200, ReachOut)
        def get(self, query: dict[str, Any]) -> Any:
            """Counts by region (the firm's province), level (the team's), period and month of the rounds
            submitted in the range, from each round's current published matching; each assignment and each team
            counted once. A workspace of another coordinator: 403."""
            with sf() as session:
                try:
                    return reach.reach(session, current_principal().organisation_id, query["workspace_id"],
                                       query["from_"], query["to"])
                except reach.NotYours:
                    refuse(403, "not one of your workspaces", "workspace_id")

    return blp
