"""NUL characters in input (issue 19, item 10): a title, code or name holding one is refused with 422
naming the field, on SQLite and PostgreSQL alike (PostgreSQL cannot store NUL in text and answered 500),
and nothing is stored; a NUL in a query parameter names it, one in a path is simply not found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from intake import bootstrap as intake_bootstrap
from intake.adapters import orm as intake_orm
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services as intake_services
from scheduling.adapters import workshop_orm as w
from sqlalchemy.orm import Session
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope

from .test_intake_api import assert_error, team_body, workspace_body
from .test_matching_scheduling_api import Service
from .test_scheduling_workshops import PROGRAMME, SLOTS, _service


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def scheduling(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    url = (f"sqlite:///{tmp_path}/scheduling.sqlite3" if request.param == "sqlite"
           else request.getfixturevalue("make_postgres_db")("nul_scheduling"))
    yield from _service(url, tmp_path)


class Intake:
    def __init__(self, url: str, tmp_path: Path) -> None:
        settings = Settings.from_env("intake", {"WERKPLAATS_DATABASE_URL": url, "WERKPLAATS_DATA_DIR": str(tmp_path)})
        self.infra = intake_bootstrap.bootstrap(settings)
        self.client = create_intake_app(self.infra).test_client()
        self.keys: dict[str, str] = {}
        for who, role, levels in [("coord", "coordinator", []), ("inst", "institution", ["HBO"])]:
            with self.infra.session_factory.begin() as session:
                def emit(env: Envelope, session: Session = session) -> None:
                    self.infra.emit(session, env)

                _, self.keys[who] = intake_services.create_organisation(
                    session, emit, name=f"Org {who}", role=role, levels=levels)

    def call(self, who: str, method: str, path: str, body: Any = None) -> Any:
        return self.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {self.keys[who]}"})

    def count(self, table: Any) -> int:
        with self.infra.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def intake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Intake]:
    url = (f"sqlite:///{tmp_path}/intake.sqlite3" if request.param == "sqlite"
           else request.getfixturevalue("make_postgres_db")("nul_intake"))
    svc = Intake(url, tmp_path)
    yield svc
    svc.infra.engine.dispose()


def test_a_workshop_programme_title_with_nul_is_refused_naming_the_field(scheduling: Service) -> None:
    resp = scheduling.call("coord_1", "POST", "/workshop-programmes", {**PROGRAMME, "title": "Voorjaar\x002031"})
    body = assert_error(resp, 422, "title")
    assert "NUL" in body["errors"][0]["reason"]
    nested = {**PROGRAMME, "slots": [{**SLOTS[0], "day_part": "morning\x00"}]}
    assert_error(scheduling.call("coord_1", "POST", "/workshop-programmes", nested), 422, "slots.0.day_part")
    with scheduling.infra.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(w.WorkshopProgramme.__table__)).scalar_one() == 0
    # the same programme without the NUL is stored
    assert scheduling.call("coord_1", "POST", "/workshop-programmes", PROGRAMME).status_code == 201
    assert_error(scheduling.get("coord_1", "/workshop-programmes/%00"), 404)
    assert_error(scheduling.get("firm_1", "/notices?page=1%00"), 422, "query.page")


def test_a_team_code_and_a_workspace_name_with_nul_are_refused_naming_the_field(intake: Intake) -> None:
    refused = assert_error(intake.call("coord", "POST", "/workspaces", workspace_body(name="Werkplaats\x00")), 422,
                           "name")
    assert refused["errors"][0]["reason"] == "Mag geen NUL-tekens bevatten."  # Dutch by default
    assert intake.count(intake_orm.Workspace.__table__) == 0
    created = intake.call("coord", "POST", "/workspaces", workspace_body())
    assert created.status_code == 201, created.get_data(as_text=True)
    ws = created.get_json()["id"]
    assert_error(intake.call("inst", "POST", "/teams", team_body(ws, code="UT-\x00T01")), 422, "code")
    assert intake.count(intake_orm.Team.__table__) == 0
    assert_error(intake.call("inst", "GET", "/teams/\x00"), 404)
    assert intake.call("inst", "POST", "/teams", team_body(ws)).status_code == 201
