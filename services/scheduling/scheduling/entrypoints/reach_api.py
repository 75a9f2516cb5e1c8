"""``GET /reach``: the workshops a coordinator's programmes run in a date range and their participants."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import current_principal
from werkplaats_shared.http import Blueprint
from werkplaats_shared.reach import DateRange, ReachOut

from ..service_layer import reach


def reach_blueprint(sf: sessionmaker[Session]) -> Blueprint:
    blp = Blueprint("reach", __name__, url_prefix="/reach",
                    description="Reach figures of the coordinator's workshops: sessions and participants")

    @blp.route("")
    class Reach(MethodView):
        @blp.arguments(DateRange, location="query")
        @blp.response(200, ReachOut)
        def get(self, query: dict[str, Any]) -> Any:
            """Sessions running on a day in the range, by region (the room's province, or online), theme and
            month; participants: the firms seated in them, each counted once (a firm in two themes counts under
            both themes, once in the total)."""
            with sf() as session:
                return reach.reach(session, current_principal().organisation_id, query["from_"], query["to"])

    return blp
