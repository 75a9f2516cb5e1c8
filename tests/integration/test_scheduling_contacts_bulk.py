"""``PUT /contacts``: the operator sets many firms' contacts at once (onboarding in bulk), all or none, every
bad item named by its position, field and reason; the access is in scheduling's access log."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.privacy_orm import access_log
from scheduling.entrypoints.api import MAX_CONTACTS, create_scheduling_app
from werkplaats_shared.config import Settings

from .test_matching_scheduling_api import Service

SECRET_KEY = "test-only-secret-key-for-signed-links-0123456789abcdef"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[tuple[Service, dict[str, str]]]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    service = Service(infra, app, app.test_client(), [])
    org = {who: str(uuid.uuid4()) for who in ("operator", "coord", "inst", "firm_1", "firm_2", "firm_3")}
    for who, role in (("operator", "operator"), ("coord", "coordinator"), ("inst", "institution"),
                      ("firm_1", "entrepreneur"), ("firm_2", "entrepreneur"), ("firm_3", "entrepreneur")):
        service.add_key(who, org[who], role)
    assert service.put("firm_3", "/contact", {"email": "oud@bedrijf3.example.org", "language": "nl"}).status_code == 200
    try:
        yield service, org
    finally:
        infra.engine.dispose()


def contacts(s: Service) -> dict[str, tuple[str, str]]:
    with s.infra.engine.connect() as conn:
        return {r.organisation_id: (r.email, r.language) for r in conn.execute(sa.select(orm.Contact.__table__))}


def test_the_operator_sets_and_replaces_contacts_that_the_firms_then_read(svc: tuple[Service, dict[str, str]]) -> None:
    s, org = svc
    resp = s.put("operator", "/contacts", {"contacts": [
        {"organisation_id": org["firm_1"], "email": "info@bedrijf1.example.org"},
        {"organisation_id": org["firm_3"], "email": "nieuw@bedrijf3.example.org", "language": "en"},
        {"organisation_id": org["coord"], "email": "werkplaats@gemeente.example.org"}]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"count": 3}
    assert s.get("firm_1", "/contact").get_json()["email"] == "info@bedrijf1.example.org"
    assert s.get("firm_3", "/contact").get_json() == {
        "organisation_id": org["firm_3"], "email": "nieuw@bedrijf3.example.org", "language": "en"}
    assert contacts(s)[org["coord"]] == ("werkplaats@gemeente.example.org", "nl")
    with s.infra.engine.connect() as conn:
        logged = conn.execute(sa.select(access_log).where(access_log.c.route == "/contacts")).all()
    assert [(r.action, r.subject_type, r.actor_organisation_id) for r in logged] == [
        ("write", "contact", org["operator"])]


@pytest.mark.parametrize(("item", "field"), [
    ({"email": "x@example.org"}, "organisation_id"),
    ({"organisation_id": "ORG", "email": "geen-adres"}, "email"),
    ({"organisation_id": "ORG", "email": "x@example.org", "language": "de"}, "language"),
    ({"organisation_id": "INST", "email": "x@example.org"}, "organisation_id"),  # not a firm or coordinator
    ({"organisation_id": str(uuid.uuid4()), "email": "x@example.org"}, "organisation_id"),  # unknown
    ({"organisation_id": "FIRST", "email": "y@example.org"}, "organisation_id"),  # named twice
    ("x@example.org", "_schema"),
], ids=["no organisation", "a bad address", "a language we do not write", "an institution", "unknown",
        "twice", "not an object"])
def test_one_bad_item_stores_nothing_and_is_named(svc: tuple[Service, dict[str, str]], item: Any,
                                                   field: str) -> None:
    s, org = svc
    if isinstance(item, dict):
        names = {"ORG": org["firm_2"], "INST": org["inst"], "FIRST": org["firm_1"]}
        item = {k: names.get(v, v) for k, v in item.items()}
    before = contacts(s)
    resp = s.put("operator", "/contacts", {"contacts": [
        {"organisation_id": org["firm_1"], "email": "info@bedrijf1.example.org"}, item,
        {"organisation_id": org["firm_3"], "email": "nieuw@bedrijf3.example.org"}]})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    errors = resp.get_json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(1, f"contacts.1.{field}")], errors
    assert contacts(s) == before


@pytest.mark.parametrize("body", [{"contacts": []}, {"contacts": "x"}, {},
                                  {"contacts": [{"organisation_id": "x", "email": "a@b.nl"}] * (MAX_CONTACTS + 1)}],
                         ids=["empty", "not a list", "missing", "too many"])
def test_a_bad_request_as_a_whole_stores_nothing(svc: tuple[Service, dict[str, str]], body: Any) -> None:
    s, _ = svc
    before = contacts(s)
    resp = s.put("operator", "/contacts", body)
    assert resp.status_code == 422
    assert "contacts" in [e["field"] for e in resp.get_json()["errors"]]
    assert contacts(s) == before


@pytest.mark.parametrize("who", ["coord", "inst", "firm_1", None])
def test_only_the_operator_sets_others_contacts(svc: tuple[Service, dict[str, str]], who: str | None) -> None:
    s, org = svc
    before = contacts(s)
    resp = s.put(who, "/contacts", {"contacts": [{"organisation_id": org["firm_2"], "email": "x@example.org"}]})
    assert resp.status_code == (401 if who is None else 403)
    assert contacts(s) == before
