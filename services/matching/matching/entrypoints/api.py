"""Matching's HTTP API: runs and their matches, scoped to the caller's organisation."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.views import MethodView
from flask_smorest import Page, abort
from marshmallow import Schema, fields
from werkplaats_shared.auth import current_principal, install_auth, roles
from werkplaats_shared.http import Blueprint, add_health, create_app
from werkplaats_shared.service import Infrastructure, health_checks

from ..adapters import orm
from ..service_layer import services


class RunOut(Schema):
    id = fields.String()
    batch_id = fields.String()
    workspace_id = fields.String()
    period = fields.String()
    policy = fields.String()
    status = fields.String(metadata={"description": "queued, running, published or failed"})
    input_hash = fields.String()
    model_hash = fields.String(allow_none=True)
    solver = fields.String(allow_none=True)
    solver_version = fields.String(allow_none=True)
    library_versions = fields.Dict(allow_none=True)
    solver_status = fields.String(allow_none=True)
    objective = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)


class MatchOut(Schema):
    id = fields.String()
    run_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    firm_id = fields.String()
    institution_id = fields.String()
    score = fields.Float()


def create_matching_app(infra: Infrastructure) -> Flask:
    app, api = create_app("Werkplaats matching")
    install_auth(app, infra.engine, infra.api_keys)
    add_health(app, health_checks(infra))
    sf = infra.session_factory

    runs = Blueprint("runs", __name__, url_prefix="/runs", description="Matching runs (jobs)")

    @runs.route("")
    class Runs(MethodView):
        @roles("coordinator")
        @runs.response(200, RunOut(many=True))
        @runs.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                return session.execute(services.visible_runs(current_principal())).scalars().all()

    @runs.route("/<run_id>")
    class RunItem(MethodView):
        @roles("coordinator")
        @runs.response(200, RunOut)
        def get(self, run_id: str) -> Any:
            with sf() as session:
                run = session.execute(services.visible_runs(current_principal())
                                      .where(orm.Run.id == run_id)).scalar_one_or_none()
            if run is None:
                abort(404, message="not found")
            return run

    matches = Blueprint("matches", __name__, url_prefix="/matches",
                        description="Matches: all of a coordinator's runs; an institution's or firm's own "
                                    "published matches")

    @matches.route("")
    class Matches(MethodView):
        @matches.response(200, MatchOut(many=True))
        @matches.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                return session.execute(services.visible_matches(current_principal())).scalars().all()

    for blueprint in (runs, matches):
        api.register_blueprint(blueprint)
    return app
