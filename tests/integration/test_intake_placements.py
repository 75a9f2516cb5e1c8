"""``GET /placements``: the published matches each organisation may see, in names people know (the portal's
match and placement pages): the firm sees its teams, the institution where its teams went, the coordinator all
of its workspace; a re-run's dropped match is no placement any more; nobody sees another organisation's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from intake.entrypoints.api import create_intake_app
from intake.service_layer import services
from werkplaats_shared.auth import Principal

from .test_intake_events import World
from .test_intake_events import world as world


@pytest.fixture
def api(world: World) -> Iterator[tuple[World, Any, dict[str, str]]]:
    app = create_intake_app(world.infra)
    keys: dict[str, str] = {}
    with world.infra.session_factory.begin() as s:
        def emit(env: Any) -> None:
            world.infra.emit(s, env)

        for who, principal in (("coord", world.coord), ("inst", world.inst), ("firm", world.firm)):
            keys[who] = services.issue_key(s, emit, principal.organisation_id)
        other_firm, _ = services.create_organisation(s, emit, name="Other firm", role="entrepreneur")
        other_inst, _ = services.create_organisation(s, emit, name="Other school", role="institution", levels=["WO"])
        keys["other_firm"] = services.issue_key(s, emit, other_firm.id)
        keys["other_inst"] = services.issue_key(s, emit, other_inst.id)
    yield world, app.test_client(), keys


def _get(client: Any, key: str, path: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {key}"})


def test_each_side_sees_the_placement_in_names_and_others_see_nothing(api: tuple[World, Any, dict[str, str]]) -> None:
    world, client, keys = api
    _run, (m0,) = world.publish([(0, 1)])
    firm_view = _get(client, keys["firm"], "/placements")
    assert firm_view.status_code == 200
    (placement,) = firm_view.get_json()
    assert placement["match_id"] == m0
    assert (placement["assignment_title"], placement["team_code"], placement["institution_name"],
            placement["team_level"], placement["firm_name"], placement["period"]) == ("A0", "T1", "HBO", "HBO",
                                                                                     "Firm", "P1")
    assert placement["assignment_status"] == "matched"
    assert _get(client, keys["inst"], "/placements").get_json() == [placement]
    assert _get(client, keys["coord"], "/placements").get_json() == [placement]
    assert _get(client, keys["inst"], f"/placements/{m0}").get_json() == placement
    for outsider in ("other_firm", "other_inst"):
        assert _get(client, keys[outsider], "/placements").get_json() == []
        assert _get(client, keys[outsider], f"/placements/{m0}").status_code == 404


def test_a_re_run_replaces_the_placements_and_filters_narrow_them(api: tuple[World, Any, dict[str, str]]) -> None:
    world, client, keys = api
    _run, (old,) = world.publish([(0, 0)])
    _run2, (kept, new) = world.publish([(1, 0), (0, 1)])
    seen = {p["match_id"]: p for p in _get(client, keys["firm"], "/placements").get_json()}
    assert set(seen) == {kept, new}  # the dropped match of the first run is no placement any more
    assert _get(client, keys["firm"], f"/placements/{old}").status_code == 404
    by_team = _get(client, keys["inst"], f"/placements?team_id={world.teams[1].id}").get_json()
    assert [p["match_id"] for p in by_team] == [new]
    assert _get(client, keys["inst"], "/placements?period=P2").get_json() == []
    by_match = _get(client, keys["firm"], f"/placements?match_id={new}&match_id={old}").get_json()
    assert [p["match_id"] for p in by_match] == [new]  # a page of kickoffs is named by its matches only
    too_many = "&".join(f"match_id=m{n}" for n in range(101))
    assert _get(client, keys["firm"], f"/placements?{too_many}").status_code == 422


def test_principals_of_no_known_role_see_nothing(world: World) -> None:
    world.publish([(0, 0)])
    from intake.service_layer.placements import visible_placements

    with world.infra.session_factory() as s:
        assert visible_placements(s, Principal(world.firm.organisation_id, "auditor", "k"), {}) == []
