"""``POST /firm`` and ``PATCH /firm`` place the firm with the workspace whose working area covers its municipality,
the oldest where two do, none where none does, in SQLite and PostgreSQL (the lookup reads one municipality, not
every working area; benchmarks/firm_profile.py measures it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from intake import bootstrap as intake_bootstrap
from intake.entrypoints.api import create_intake_app
from werkplaats_shared.config import Settings

from .test_intake_api import World, firm_body, workspace_body


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    url = (str(request.getfixturevalue("make_postgres_db")("intake")) if request.param == "postgresql"
           else f"sqlite:///{tmp_path}/intake.sqlite3")
    infra = intake_bootstrap.bootstrap(Settings.from_env("intake", {
        "WERKPLAATS_DATABASE_URL": url, "WERKPLAATS_DATA_DIR": str(tmp_path)}))
    app = create_intake_app(infra)
    world = World(infra, app, app.test_client())
    try:
        world.add_org("coord", "Gemeente Alfa", "coordinator", [])
        for n in range(3):
            world.add_org(f"firm_{n}", f"Bakkerij {n}", "entrepreneur", [])
        yield world
    finally:
        infra.engine.dispose()
        root.handlers[:] = saved
        root.setLevel(level)


def test_a_firm_is_placed_with_the_oldest_workspace_covering_its_municipality(w: World) -> None:
    older = w.created("coord", "/workspaces", workspace_body(name="Werkplaats Oud", municipalities=["GM0363",
                                                                                                   "GM0384"]))
    newer = w.created("coord", "/workspaces", workspace_body(name="Werkplaats Nieuw", municipalities=["GM0344",
                                                                                                     "GM0363"]))
    placed = {}
    for n, municipality in enumerate(("GM0363", "GM0344", "GM0193")):
        body = w.created(f"firm_{n}", "/firm", firm_body(kvk_number=f"1234567{n}", municipality=municipality))
        placed[municipality] = body["workspace_id"]
    assert placed == {"GM0363": older["id"], "GM0344": newer["id"], "GM0193": None}

    # moving the firm moves it to the workspace that covers its new municipality
    etag = w.get("firm_2", "/firm").headers["ETag"]
    resp = w.call("firm_2", "PATCH", "/firm", {"municipality": "GM0384"}, headers={"If-Match": etag})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert (resp.get_json()["municipality"], resp.get_json()["workspace_id"]) == ("GM0384", older["id"])
    assert w.get("firm_2", "/firm").get_json()["workspace_id"] == older["id"]
    # a change that leaves the municipality leaves the workspace
    etag = w.get("firm_1", "/firm").headers["ETag"]
    resp = w.call("firm_1", "PATCH", "/firm", {"sector": "drukkerij"}, headers={"If-Match": etag})
    assert resp.status_code == 200 and resp.get_json()["workspace_id"] == newer["id"]
