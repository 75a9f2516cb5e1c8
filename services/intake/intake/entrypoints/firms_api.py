"""``GET /firms``: the names of firms a coordinator works with (served by one of its workspaces, or with an
assignment or referral there), looked up by id, so the portal names the firms in a workshop session."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Api
from marshmallow import Schema, fields, validate
from werkplaats_shared.auth import Principal, current_principal
from werkplaats_shared.http import Blueprint, Listed, QueryPage
from werkplaats_shared.service import Infrastructure

from ..adapters import orm


class FirmLookup(Schema):
    id = fields.List(fields.String(validate=validate.Length(min=1, max=36)), required=True,
                     validate=validate.Length(min=1, max=100), metadata={
                         "description": "the firms' ids (repeat the parameter, at most 100)"})


class FirmNameOut(Schema):
    id = fields.String()
    name = fields.String()
    municipality = fields.String(allow_none=True, metadata={"description": "CBS municipality code"})


def known_firms(principal: Principal, ids: list[str]) -> sa.Select[Any]:
    """Of these firms, the ones the coordinator's workspaces serve or received an assignment or referral from;
    anyone else's firms are left out as if they did not exist."""
    own = sa.select(orm.Workspace.id).where(orm.Workspace.organisation_id == principal.organisation_id)
    with_work = sa.select(orm.Assignment.firm_id).where(orm.Assignment.workspace_id.in_(own))
    referred = sa.select(orm.Referral.firm_id).where(orm.Referral.from_workspace_id.in_(own))
    return sa.select(orm.Organisation).where(
        orm.Organisation.id.in_(ids), orm.Organisation.role == "entrepreneur",
        sa.or_(orm.Organisation.workspace_id.in_(own), orm.Organisation.id.in_(with_work),
               orm.Organisation.id.in_(referred))).order_by(orm.Organisation.name, orm.Organisation.id)


def register_firms(api: Api, infra: Infrastructure) -> None:
    blp = Blueprint("firms", __name__, url_prefix="/firms",
                    description="Firms a coordinator works with, by id: their names for its pages")

    @blp.route("")
    class Firms(MethodView):
        @blp.arguments(FirmLookup, location="query")
        @blp.response(200, FirmNameOut(many=True))
        @blp.paginate(QueryPage, max_page_size=100)
        def get(self, lookup: dict[str, Any]) -> Any:
            """Coordinators: the name and municipality of each of these firms that one of your workspaces
            serves, or that has an assignment or a referral there; other firms are not listed."""
            return Listed(infra.session_factory, known_firms(current_principal(), lookup["id"]))

    api.register_blueprint(blp)
