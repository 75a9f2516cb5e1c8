"""``GET /placements``: the published matches the caller may see, named as people know them (the portal's match
pages and the institution's placement overview read them)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Api, abort
from marshmallow import Schema, fields, validate
from werkplaats_shared.auth import current_principal
from werkplaats_shared.http import Blueprint, Listed, QueryPage
from werkplaats_shared.service import Infrastructure

from ..service_layer import placements


class PlacementFilter(Schema):
    assignment_id = fields.String(validate=validate.Length(min=1, max=36))
    team_id = fields.String(validate=validate.Length(min=1, max=36))
    period = fields.String(validate=validate.Length(min=1, max=40))
    match_id = fields.List(fields.String(validate=validate.Length(min=1, max=36)),
                           validate=validate.Length(min=1, max=100), metadata={
                               "description": "only these matches (repeat the parameter, at most 100): the names "
                                              "of a page of kickoffs"})


class PlacementOut(Schema):
    match_id = fields.String()
    batch_id = fields.String()
    run_id = fields.String()
    period = fields.String()
    score = fields.Float()
    assignment_id = fields.String()
    assignment_title = fields.String()
    assignment_status = fields.String(metadata={"description": "matched, accepted, declined, ..."})
    firm_id = fields.String()
    firm_name = fields.String()
    team_id = fields.String()
    team_code = fields.String()
    team_level = fields.String()
    team_size = fields.Integer()
    team_skills = fields.List(fields.String())
    institution_id = fields.String()
    institution_name = fields.String()


def register_placements(api: Api, infra: Infrastructure) -> None:
    blp = Blueprint("placements", __name__, url_prefix="/placements",
                    description="Published matches in plain words: a firm's teams, an institution's placements")
    sf = infra.session_factory

    @blp.route("")
    class Placements(MethodView):
        @blp.arguments(PlacementFilter, location="query")
        @blp.response(200, PlacementOut(many=True))
        @blp.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            return Listed(sf, placements.placements_query(current_principal(), filters), placements.placement_of)

    @blp.route("/<match_id>")
    class PlacementItem(MethodView):
        @blp.response(200, PlacementOut)
        def get(self, match_id: str) -> Any:
            with sf() as session:
                found = placements.get_placement(session, current_principal(), match_id)
            if found is None:
                abort(404, message="not found")
            return found

    api.register_blueprint(blp)
