"""``POST /organisations/firms``: the operator onboards many firms at once, each an entrepreneur organisation
with its profile and first API key; all or none, every bad item named by its position, field and reason."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from intake.adapters import orm

from . import test_intake_organisations
from .test_intake_organisations import World

world = test_intake_organisations.world  # an operator, a coordinator, an institution and a firm


def firm(n: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"Bedrijf {n}", "kvk_number": f"{30000000 + n}", "sector": "bakkerij",
                            "size_class": "micro", "municipality": "GM0363", "language": "nl"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def post(w: World, firms: Any, who: str | None = "operator", **kwargs: Any) -> Any:
    return w.call(who, "POST", "/organisations/firms", {"firms": firms}, **kwargs)


def test_every_firm_gets_its_profile_its_workspace_and_a_working_key(world: World) -> None:
    ws = world.ok("coord", "POST", "/workspaces", {
        "name": "Werkplaats Amsterdam", "municipalities": ["GM0363"],
        "periods": [{"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"}]}, status=201)
    resp = post(world, [firm(1), firm(2, municipality="GM0402", language="en", max_concurrent_teams=2)])
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    out = resp.get_json()
    assert out["count"] == 2 and [f["row"] for f in out["firms"]] == [0, 1]
    first, second = out["firms"]
    assert (first["workspace_id"], second["workspace_id"]) == (ws["id"], None)  # Hilversum: no workspace covers it
    profile = world.ok(None, "GET", "/firm", headers={"Authorization": f"Bearer {second['api_key']}"})
    assert {k: profile[k] for k in ("kvk_number", "municipality", "language", "max_concurrent_teams")} == {
        "kvk_number": "30000002", "municipality": "GM0402", "language": "en", "max_concurrent_teams": 2}
    # the firm can submit at once: its profile is there
    made = world.call(None, "POST", "/assignments", {
        "workspace_id": ws["id"], "title": "Webwinkel", "period": "2027-S1", "accepted_levels": ["HBO"]},
        headers={"Authorization": f"Bearer {first['api_key']}"})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert world.outbox_types().count("apikey.issued") >= 2
    assert len(world.audit("organisation.created")) >= 2 and world.audit("organisation.bulk_created")


BAD = [
    ("no name", firm(1, name=None), "name"),
    ("a blank name", firm(1, name="   "), "name"),
    ("a KvK number of 7 digits", firm(1, kvk_number="1234567"), "kvk_number"),
    ("a KvK number of zeros", firm(1, kvk_number="00000000"), "kvk_number"),
    ("an unknown municipality", firm(1, municipality="GM9999"), "municipality"),
    ("an unknown size class", firm(1, size_class="huge"), "size_class"),
    ("an unknown field", firm(1, colour="blue"), "colour"),
    ("not an object", "Bedrijf", "_schema"),
    ("the name of an earlier item", firm(1, name="bedrijf  0"), "name"),
    ("the KvK number of an earlier item", firm(1, kvk_number="30000000"), "kvk_number"),
    ("the name of an active firm", firm(1, name="Organisatie firm"), "name"),
]


@pytest.mark.parametrize(("what", "item", "field"), BAD, ids=[b[0] for b in BAD])
def test_one_bad_firm_stores_nothing_and_is_named(world: World, what: str, item: Any, field: str) -> None:
    before = world.stored()
    resp = post(world, [firm(0), item, firm(2)], headers={"Accept-Language": "en"})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    errors = resp.get_json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(1, f"firms.1.{field}")], errors
    assert world.stored() == before


def test_a_kvk_number_another_firm_has_is_refused_in_dutch(world: World) -> None:
    assert post(world, [firm(5)]).status_code == 201
    before = world.stored()
    resp = post(world, [firm(6), firm(7, kvk_number="30000005")])
    assert resp.status_code == 422
    out = resp.get_json()
    assert [(e["row"], e["field"], e["reason"]) for e in out["errors"]] == [
        (1, "firms.1.kvk_number", "Er is al een ander bedrijf met dit KvK-nummer.")]
    assert out["message"] == "1 problemen in 1 bedrijven; er is niets opgeslagen."
    assert world.stored() == before


@pytest.mark.parametrize(("body", "field"), [([], "firms"), ("all", "firms"), ([firm(0)] * 2001, "firms")],
                         ids=["empty", "not a list", "too many"])
def test_a_bad_request_as_a_whole_stores_nothing(world: World, body: Any, field: str) -> None:
    before = world.stored()
    resp = post(world, body)
    assert resp.status_code == 422
    assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert world.stored() == before


@pytest.mark.parametrize("who", ["coord", "inst", "firm", None])
def test_only_the_operator_onboards_firms(world: World, who: str | None) -> None:
    before = world.stored()
    resp = post(world, [firm(0)], who=who)
    assert resp.status_code == (401 if who is None else 403)
    with world.infra.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orm.Organisation.__table__).where(
            orm.Organisation.name == "Bedrijf 0")).scalar_one() == 0
    assert world.stored()["organisations"] == before["organisations"]
