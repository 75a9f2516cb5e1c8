"""Workshops through scheduling's HTTP API (Flask's test client, real SQLite, migrations applied): a
coordinator's programme is planned by the optimiser (the stored plan re-checked by the validator),
entrepreneurs are seated or waitlisted in registration order, a cancelled seat goes to the next in line
with a notice that arrives by e-mail (aiosmtpd on loopback) in the firm's language; bad input and other
organisations' objects change nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters import workshop_orm as w
from scheduling.adapters.mailer import SmtpMailer
from scheduling.domain import workshops as ws
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import workshops
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings

from ..conftest import free_port
from .plan_jobs_client import plan
from .test_matching_scheduling_api import SECRET_KEY, Service, assert_error
from .test_scheduling_responses import _Collector

MON, TUE = "2031-03-03", "2031-03-04"
SLOTS = [{"date": MON, "day_part": "morning"}, {"date": MON, "day_part": "afternoon"},
         {"date": TUE, "day_part": "morning"}]
PROGRAMME = {"title": "Voorjaar 2031", "slots": SLOTS, "sessions_wanted": {"ai": 2},
             "max_sessions_per_location_day": 2, "min_participants": 1}
ROOM = {"municipality_code": "GM0344", "name": "Stadhuis Utrecht, zaal 2", "capacity": 2, "availability": SLOTS}
FIRMS = [f"firm_{n}" for n in range(1, 7)]
CONTACTS = {"firm_1": {"email": "planning@bakkerij-jansen.nl", "language": "nl"},
            "firm_5": {"email": "office@kapsalon-bloem.nl", "language": "en"}}


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    yield from _service(f"sqlite:///{tmp_path}/scheduling.sqlite3", tmp_path)


def _service(url: str, tmp_path: Path) -> Iterator[Service]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": url, "WERKPLAATS_DATA_DIR": str(tmp_path), "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    tables: list[Any] = [t for t in orm.metadata.sorted_tables if t.name.startswith("workshop_")]
    tables.append(orm.Notice.__table__)
    service = Service(infra, app, app.test_client(), tables)
    for who, role in [("coord_1", "coordinator"), ("coord_2", "coordinator"), ("inst_1", "institution"),
                      *((firm, "entrepreneur") for firm in FIRMS)]:
        service.add_key(who, who, role)
    for firm, contact in CONTACTS.items():
        assert service.put(firm, "/contact", contact).status_code == 200
    yield service
    infra.engine.dispose()


def post(svc: Service, who: str, path: str, body: Any = None) -> Any:
    """A plan request gives its plan job's result, once a worker did it (see plan_jobs_client)."""
    if path.endswith("/plan"):
        return plan(svc, who, path, body)
    resp = svc.call(who, "POST", path, body)
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    return resp.get_json()


def programme(svc: Service, **changes: Any) -> str:
    """coord_1's programme: one room for two, two facilitators of AI (Monday morning, Monday afternoon)."""
    pid = str(post(svc, "coord_1", "/workshop-programmes", {**PROGRAMME, **changes})["id"])
    post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms", ROOM)
    post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
         {"label": "F-01", "themes": ["ai", "webshop"], "availability": SLOTS[:1]})
    post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
         {"label": "F-02", "themes": ["ai"], "availability": SLOTS[1:2]})
    return pid


def interest(svc: Service, firm: str, pid: str, **changes: Any) -> dict[str, Any]:
    body = {"theme": "ai", "locations": ["GM0344"], "available_days": [MON], **changes}
    return dict(post(svc, firm, f"/workshop-programmes/{pid}/interests", body))


def planned(svc: Service) -> tuple[str, dict[str, Any]]:
    """Six firms want AI on Monday in Utrecht: two sessions of two, two firms wait."""
    pid = programme(svc)
    for firm in FIRMS:
        interest(svc, firm, pid)
    return pid, post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")


def registrations(svc: Service, who: str) -> list[dict[str, Any]]:
    resp = svc.get(who, "/workshop-registrations?page_size=100")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return list(resp.get_json())


def stored_plan(svc: Service, pid: str) -> tuple[ws.Problem, ws.Plan]:
    with svc.infra.session_factory() as session:
        prog = session.get(w.WorkshopProgramme, pid)
        assert prog is not None
        problem = workshops.problem_of(session, prog)
        sessions = {s.id: s for s in session.execute(sa.select(w.WorkshopSession).where(
            w.WorkshopSession.programme_id == pid, w.WorkshopSession.status == "running")).scalars()}
        key = {sid: ws.Session(s.theme, s.room_id or ws.ONLINE, ws.Slot(s.slot_date, s.day_part))
               for sid, s in sessions.items()}
        seats = session.execute(sa.select(w.WorkshopRegistration).where(
            w.WorkshopRegistration.programme_id == pid, w.WorkshopRegistration.status == "seated")).scalars()
        return problem, ws.Plan(frozenset(ws.Staffing(key[sid], s.facilitator_id) for sid, s in sessions.items()),
                                frozenset(ws.Seat(r.interest_id, key[r.session_id]) for r in seats))


def notices(svc: Service) -> list[orm.Notice]:
    with svc.infra.session_factory() as session:
        return list(session.execute(sa.select(orm.Notice).where(orm.Notice.kind == workshops.NOTICE_KIND)
                                    .order_by(orm.Notice.created_at)).scalars())


# ---- planning, seats and the waitlist -------------------------------------------------------


def test_a_programme_is_planned_and_entrepreneurs_seated_in_registration_order(svc: Service) -> None:
    pid, report = planned(svc)
    assert report["status"] == "optimal" and report["unscheduled"] == []
    assert report["figures"] | {"solve_seconds": 0} == {
        "interests": 6, "sessions": 2, "seated": 4, "waitlisted": 2, "travel": 0.0, "solve_seconds": 0,
        "variables": report["figures"]["variables"], "constraints": report["figures"]["constraints"],
        "solver": "HiGHS"}
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == []
    sessions = svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()
    assert [(s["day_part"], s["facilitator_id"] is not None, s["seated"], s["waitlisted"]) for s in sessions] == [
        ("afternoon", True, 2, 2), ("morning", True, 2, 2)]
    assert {s["location_name"] for s in sessions} == {ROOM["name"]}
    # the four earliest are seated; the last two wait for both sessions, firm_5 first
    for firm in FIRMS[:4]:
        assert [r["status"] for r in registrations(svc, firm)] == ["seated"]
    for firm, position in (("firm_5", 1), ("firm_6", 2)):
        places = registrations(svc, firm)
        assert [(r["status"], r["waitlist_position"]) for r in places] == [("waitlisted", position)] * 2
    assert sorted(n.firm_id for n in notices(svc)) == FIRMS[:4]  # a seat notice for each seated firm
    stored = svc.get("coord_1", f"/workshop-programmes/{pid}").get_json()
    assert stored["status"] == "planned"
    assert stored["plan_report"]["figures"]["waitlisted"] == 2  # what was stored is what was answered
    waiting = svc.get("coord_1", f"/workshop-registrations?status=waitlisted&programme_id={pid}").get_json()
    assert sorted((r["interest_id"], r["waitlist_position"]) for r in waiting) == sorted(
        (r["interest_id"], r["waitlist_position"]) for firm in ("firm_5", "firm_6") for r in registrations(svc, firm))
    assert svc.get("coord_1", "/workshop-registrations?programme_id=other").get_json() == []
    assert_error(svc.get("coord_1", "/workshop-registrations?status=maybe"), 422, "query.status")


def test_a_cancelled_seat_goes_to_the_next_in_line_with_a_notice_by_email(svc: Service) -> None:
    pid, _ = planned(svc)
    [seat] = registrations(svc, "firm_1")
    before = {n.id for n in notices(svc)}
    done = post(svc, "firm_1", f"/workshop-registrations/{seat['id']}/cancel")
    assert done["registration"]["status"] == "cancelled"
    places = {r["id"]: r for r in registrations(svc, "firm_5")}
    promoted = places[done["promoted_registration_id"]]
    assert promoted["status"] == "seated" and promoted["session"]["id"] == seat["session"]["id"]
    assert [r["status"] for r in places.values() if r["id"] != promoted["id"]] == ["released"]
    assert [(r["status"], r["waitlist_position"]) for r in registrations(svc, "firm_6")] == [("waitlisted", 1)] * 2
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == []
    [notice] = [n for n in notices(svc) if n.id not in before]
    assert (notice.firm_id, notice.status, notice.subject_id) == ("firm_5", "pending", promoted["id"])
    assert notice.details is not None and notice.details["promoted"] is True
    # a second cancel of the same seat changes nothing
    snapshot = svc.snapshot()
    assert_error(svc.call("firm_1", "POST", f"/workshop-registrations/{seat['id']}/cancel"), 409, "registration_id")
    assert svc.snapshot() == snapshot

    collector = _Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = SmtpMailer("127.0.0.1", port, "werkplaats@werkplaats.test")
        first_seat = next(n for n in notices(svc) if n.firm_id == "firm_1")
        for n, firm in ((notice, "firm_5"), (first_seat, "firm_1")):
            language = CONTACTS[firm]["language"]
            subject, body = workshops.render_notice(n, language)
            mailer.send(to=CONTACTS[firm]["email"], subject=subject, body=body, message_id=n.id, language=language)
    finally:
        controller.stop()
    en, nl = collector.messages
    assert en["To"] == CONTACTS["firm_5"]["email"] and en["Content-Language"] == "en"
    assert en["Subject"] == "A seat has become free: workshop Artificial intelligence (AI)"
    en_text = en.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    when = "Monday 3 March 2031, morning" if seat["session"]["day_part"] == "morning" else \
        "Monday 3 March 2031, afternoon"
    assert when in en_text and f"Where: {ROOM['name']}\n" in en_text.replace("\r\n", "\n") and "GM0344" not in en_text
    assert "first on the waiting list" in en_text
    assert nl["Subject"] == "Uw plaats in de workshop Kunstmatige intelligentie (AI)"
    nl_text = nl.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "maandag 3 maart 2031" in nl_text and "wachtlijst" in nl_text and "first" not in nl_text


def test_cancelling_a_waitlist_place_promotes_nobody(svc: Service) -> None:
    planned(svc)
    place = registrations(svc, "firm_5")[0]
    before = len(notices(svc))
    done = post(svc, "firm_5", f"/workshop-registrations/{place['id']}/cancel")
    assert done["promoted_registration_id"] is None and done["registration"]["status"] == "cancelled"
    # firm_6 moves up where firm_5 left, and stays second where firm_5 still waits
    positions = {r["session"]["id"]: r["waitlist_position"] for r in registrations(svc, "firm_6")}
    left = place["session"]["id"]
    assert positions[left] == 1 and [p for s, p in positions.items() if s != left] == [2]
    assert len(notices(svc)) == before


def test_a_seat_freed_with_nobody_waiting_stays_free(svc: Service) -> None:
    pid = programme(svc)
    interest(svc, "firm_1", pid)
    assert post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")["figures"]["waitlisted"] == 0
    [seat] = registrations(svc, "firm_1")
    assert post(svc, "coord_1", f"/workshop-registrations/{seat['id']}/cancel")["promoted_registration_id"] is None


def test_nothing_to_plan_is_reported_and_the_programme_stays_open(svc: Service) -> None:
    pid = programme(svc)
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert (report["status"], report["reason"]) == ("empty", "no interest registered")
    # interest on a day nobody can make: reported with the reason, no session stored
    interest(svc, "firm_1", pid, available_days=[TUE])
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert report["status"] == "empty" and "no session is possible" in report["reason"]
    assert report["unscheduled"] == [{"theme": "ai", "sessions": 2, "reason": (
        "no room or online session in a slot that a facilitator of this theme and enough interested "
        "entrepreneurs can make")}]
    assert svc.snapshot()["workshop_sessions"] == []
    assert svc.get("coord_1", f"/workshop-programmes/{pid}").get_json()["status"] == "open"


def test_a_planned_programme_takes_no_more_interest_and_planning_again_changes_nothing(svc: Service) -> None:
    pid, _ = planned(svc)
    before = svc.snapshot()
    assert_error(svc.call("firm_1", "POST", f"/workshop-programmes/{pid}/interests",
                          {"theme": "webshop", "locations": ["GM0344"], "available_days": [MON]}), 409, "programme_id")
    assert svc.snapshot() == before
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert report["figures"]["changes"] == {"kept": 4, "moved": 0, "new": 0, "dropped": 0}
    after = svc.snapshot()
    assert after["notices"] == before["notices"] and after["workshop_registrations"] == before["workshop_registrations"]


def all_notices(svc: Service) -> list[orm.Notice]:
    with svc.infra.session_factory() as session:
        return list(session.execute(sa.select(orm.Notice).order_by(orm.Notice.created_at)).scalars())


def test_a_replan_keeps_seated_firms_and_updates_the_invitations_of_those_it_moves(svc: Service) -> None:
    pid, _ = planned(svc)
    [gone] = registrations(svc, "firm_1")
    promoted_id = post(svc, "firm_1", f"/workshop-registrations/{gone['id']}/cancel")["promoted_registration_id"]
    # a hall for six is added for Monday morning: re-planning can seat firm_6 too, by moving the morning session
    hall = post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms",
                {**ROOM, "name": "Stadhuis Utrecht, grote zaal", "capacity": 6, "availability": SLOTS[:1]})
    seats_before = {firm: [r for r in registrations(svc, firm) if r["status"] == "seated"] for firm in FIRMS}
    before = {n.id for n in all_notices(svc)}
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert report["figures"]["changes"] == {"kept": 2, "moved": 2, "new": 1, "dropped": 0}
    assert report["figures"]["seated"] == 5 and report["figures"]["waitlisted"] == 0
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == [] and len(plan.seats) == 5
    assert {i.firm_id for i in problem.interests} == set(FIRMS[1:])  # firm_1 gave its place up
    seats_after = {firm: [r for r in registrations(svc, firm) if r["status"] == "seated"] for firm in FIRMS}
    assert seats_after["firm_1"] == [] and len(seats_after["firm_6"]) == 1
    moved = [firm for firm in FIRMS[1:5] if seats_after[firm][0]["session"]["room_id"] == hall["id"]]
    assert len(moved) == 2
    for firm in FIRMS[1:5]:  # every seat is the same registration (one UID per seat), moved or not
        assert [r["id"] for r in seats_after[firm]] == [r["id"] for r in seats_before[firm]]
        assert seats_after[firm][0]["session"]["day_part"] == seats_before[firm][0]["session"]["day_part"]
    new = [n for n in all_notices(svc) if n.id not in before]
    assert sorted((n.firm_id, n.kind, n.sequence) for n in new) == sorted(
        [(firm, workshops.UPDATE_KIND, 1) for firm in moved] + [("firm_6", workshops.NOTICE_KIND, 0)])
    for n in new:
        invitation = (n.details or {})["invitation"]
        assert invitation["uid"] == f"workshop-seat-{n.subject_id}@werkplaats"
        assert invitation["starts_at"] == "2031-03-03T09:30:00+01:00" and invitation["method"] == "REQUEST"
    assert promoted_id in {r["id"] for firm in FIRMS for r in seats_after[firm]}
    sessions = svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()
    assert sorted((s["day_part"], s["location_name"], s["seated"]) for s in sessions) == [
        ("afternoon", ROOM["name"], 2), ("morning", "Stadhuis Utrecht, grote zaal", 3)]


def test_a_replan_that_drops_a_session_cancels_its_seats_with_a_notice(svc: Service) -> None:
    pid = programme(svc, sessions_wanted={"ai": 1})
    for firm in FIRMS[:2]:
        interest(svc, firm, pid)
    for firm in FIRMS[2:5]:
        interest(svc, firm, pid, available_days=[TUE])
    assert post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")["figures"]["seated"] == 2  # Monday only
    [seat] = registrations(svc, "firm_1")
    # a facilitator and a hall for Tuesday morning: one session for three beats keeping the two on Monday
    post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
         {"label": "F-03", "themes": ["ai"], "availability": SLOTS[2:]})
    post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms",
         {**ROOM, "name": "Stadhuis Utrecht, grote zaal", "capacity": 5, "availability": SLOTS[2:]})
    before = {n.id for n in all_notices(svc)}
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert report["figures"]["changes"] == {"kept": 0, "moved": 0, "new": 3, "dropped": 2}
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == [] and {s.session.slot.day.isoformat() for s in plan.seats} == {TUE}
    assert [(r["id"], r["status"]) for r in registrations(svc, "firm_1")] == [(seat["id"], "dropped")]
    new = [n for n in all_notices(svc) if n.id not in before]
    assert sorted((n.firm_id, n.kind, n.sequence) for n in new) == [
        ("firm_1", workshops.CANCEL_KIND, 1), ("firm_2", workshops.CANCEL_KIND, 1),
        *((firm, workshops.NOTICE_KIND, 0) for firm in FIRMS[2:5])]
    cancel = next(n for n in new if n.firm_id == "firm_1")
    assert (cancel.details or {})["invitation"]["method"] == "CANCEL" and (cancel.details or {})["by_plan"] is True
    assert (cancel.details or {})["invitation"]["uid"] == f"workshop-seat-{seat['id']}@werkplaats"
    subject, body = workshops.render_notice(cancel, "en")
    assert subject == "Cancelled: your seat in the workshop Artificial intelligence (AI)"
    assert "dropped when the programme was planned again" in body
    sessions = svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()
    assert [(s["date"], s["seated"], s["status"]) for s in sessions] == [(TUE, 3, "running")]


def test_a_coordinator_moves_a_session_by_the_planning_rules(svc: Service) -> None:
    pid, _ = planned(svc)
    sessions = {s["day_part"]: s for s in svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()}
    morning = sessions["morning"]
    path = f"/workshop-programmes/{pid}/session-moves"
    before = svc.snapshot()
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"room_id": "nowhere"}, "room_id"),
        ({"session_id": "unknown"}, "session_id"),
        ({"day_part": "afternoon"}, "session_id"),  # the room and F-01 are busy or unavailable then
        ({"date": TUE}, "session_id"),  # nobody seated can come on Tuesday
        ({"room_id": None}, "session_id"),  # no online sessions in this programme
        ({"facilitator_id": "F-unknown"}, "facilitator_id"),
    ]
    for change, field in refusals:
        body = {"session_id": morning["id"], "date": MON, "day_part": "morning", "room_id": morning["room_id"],
                **change}
        assert_error(svc.call("coord_1", "POST", path, body), 422, field)
    assert_error(svc.call("coord_2", "POST", path, {"session_id": morning["id"], "date": MON,
                                                    "day_part": "morning", "room_id": None}), 404)
    assert svc.snapshot() == before
    # a second room on Monday morning: the session moves there and its two firms hear of it
    other = post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms",
                 {**ROOM, "name": "Bibliotheek Utrecht", "capacity": 3, "availability": SLOTS[:1]})
    notices_before = {n.id for n in all_notices(svc)}
    moved = post(svc, "coord_1", path, {"session_id": morning["id"], "date": MON, "day_part": "morning",
                                        "room_id": other["id"]})
    assert (moved["id"], moved["room_id"], moved["location_name"], moved["capacity"]) == (
        morning["id"], other["id"], "Bibliotheek Utrecht", 3)
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == []
    new = [n for n in all_notices(svc) if n.id not in notices_before]
    seated = [r for firm in FIRMS for r in registrations(svc, firm)
              if r["status"] == "seated" and r["session"]["id"] == morning["id"]]
    # the room's third seat goes to the first in line (firm_5), with a notice; the two seated hear of the move
    [promoted] = [r for r in seated if r["id"] in {x["id"] for x in registrations(svc, "firm_5")}]
    assert sorted((n.subject_id, n.kind, n.sequence) for n in new) == sorted(
        [*((r["id"], workshops.UPDATE_KIND, 1) for r in seated if r is not promoted),
         (promoted["id"], workshops.NOTICE_KIND, 0)])
    assert all((n.details or {})["location_name"] == "Bibliotheek Utrecht" for n in new) and len(new) == 3


def test_a_coordinator_moves_an_entrepreneur_to_another_session_and_the_freed_seat_goes_to_the_next_in_line(
        svc: Service) -> None:
    pid = programme(svc)
    for firm in FIRMS:  # firm_1 to firm_4 can come to Amsterdam too; firm_5 and firm_6 to Utrecht only
        interest(svc, firm, pid, locations=["GM0344", "GM0363"] if firm <= "firm_4" else ["GM0344"])
    post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    sessions = {s["day_part"]: s for s in svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()}
    morning, afternoon = sessions["morning"]["id"], sessions["afternoon"]["id"]
    # the morning session moves to a room for three in Amsterdam: its waiting firms cannot come there
    amsterdam = post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms",
                     {**ROOM, "municipality_code": "GM0363", "name": "Zaal Amstel", "capacity": 3,
                      "availability": SLOTS[:1]})
    post(svc, "coord_1", f"/workshop-programmes/{pid}/session-moves",
         {"session_id": morning, "date": MON, "day_part": "morning", "room_id": amsterdam["id"]})

    def place(firm: str) -> dict[str, Any]:
        return next(r for r in registrations(svc, firm) if r["status"] in ("seated", "waitlisted"))

    mover = next(f for f in FIRMS if place(f)["session"]["id"] == afternoon and place(f)["status"] == "seated")
    seat = place(mover)
    notices_before = {n.id for n in all_notices(svc)}
    done = post(svc, "coord_1", f"/workshop-registrations/{seat['id']}/move", {"session_id": morning})
    assert done["registration"]["id"] == seat["id"]
    assert (done["registration"]["status"], done["registration"]["session"]["id"]) == ("seated", morning)
    # the seat it left in the afternoon goes to the first in line: firm_5, whose other place is released
    promoted = next(r for r in registrations(svc, "firm_5") if r["id"] == done["promoted_registration_id"])
    assert (promoted["status"], promoted["session"]["id"]) == ("seated", afternoon)
    assert [(r["status"], r["waitlist_position"]) for r in registrations(svc, "firm_6")
            if r["status"] == "waitlisted"] == [("waitlisted", 1)]
    counts = {s["id"]: (s["seated"], s["waitlisted"])
              for s in svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()}
    assert counts == {morning: (3, 0), afternoon: (2, 1)}
    new = sorted((n.firm_id, n.kind) for n in all_notices(svc) if n.id not in notices_before)
    assert new == sorted([(mover, workshops.UPDATE_KIND), ("firm_5", workshops.NOTICE_KIND)])
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == []

    # refusals, in words, that change nothing
    before = svc.snapshot()
    other = next(f for f in FIRMS[:4] if f != mover and place(f)["session"]["id"] == afternoon)
    path = f"/workshop-registrations/{place(other)['id']}/move"
    full = assert_error(svc.call("coord_1", "POST", path, {"session_id": morning}), 409, "session_id")
    assert "3 of 3 seats taken" in full["errors"][0]["reason"]
    assert_error(svc.call("coord_1", "POST", path, {"session_id": afternoon}), 422, "session_id")
    assert_error(svc.call("coord_1", "POST", path, {"session_id": "unknown"}), 422, "session_id")
    assert_error(svc.call("coord_1", "POST", path, {}), 422, "session_id")
    assert_error(svc.call("coord_1", "POST", path, {"session_id": morning, "firm_id": "x"}), 422, "firm_id")
    far = assert_error(svc.call("coord_1", "POST", f"/workshop-registrations/{promoted['id']}/move",
                                {"session_id": morning}), 422, "session_id")
    assert "cannot make" in far["errors"][0]["reason"]  # firm_5 comes to Utrecht only
    released = next(r for r in registrations(svc, "firm_5") if r["status"] == "released")
    assert_error(svc.call("coord_1", "POST", f"/workshop-registrations/{released['id']}/move",
                          {"session_id": afternoon}), 409, "registration_id")
    assert_error(svc.call("coord_2", "POST", path, {"session_id": morning}), 404)
    assert svc.call("firm_1", "POST", path, {"session_id": morning}).status_code == 403
    assert svc.snapshot() == before


def two_themes_one_slot(svc: Service) -> str:
    """Monday morning only, three rooms for three: AI (two sessions) for firm_1, firm_2, firm_3 and firm_4,
    webshop for firm_3 alone. firm_3 can sit in one session of the slot (firm_once): it gets the webshop
    seat, so every session runs, and waits for both AI sessions, which seat the other three."""
    pid = str(post(svc, "coord_1", "/workshop-programmes", {
        **PROGRAMME, "slots": SLOTS[:1], "sessions_wanted": {"ai": 2, "webshop": 1},
        "max_sessions_per_location_day": 3})["id"])
    for n in (2, 3, 4):
        post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms",
             {**ROOM, "name": f"Stadhuis Utrecht, zaal {n}", "capacity": 3, "availability": SLOTS[:1]})
    for label, theme in (("F-01", "ai"), ("F-02", "webshop"), ("F-03", "ai")):
        post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
             {"label": label, "themes": [theme], "availability": SLOTS[:1]})
    for firm in FIRMS[:4]:
        interest(svc, firm, pid)
    interest(svc, "firm_3", pid, theme="webshop")
    post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    return pid


def places(svc: Service, firm: str) -> list[dict[str, Any]]:
    return [r for r in registrations(svc, firm) if r["status"] in ("seated", "waitlisted")]


def test_a_freed_seat_skips_a_firm_seated_in_another_session_of_the_slot(svc: Service) -> None:
    pid = two_themes_one_slot(svc)
    assert sorted((r["session"]["theme"], r["status"]) for r in places(svc, "firm_3")) == [
        ("ai", "waitlisted"), ("ai", "waitlisted"), ("webshop", "seated")]
    # a firm in the fuller AI session gives its seat up: firm_3 is first in line but sits in the webshop
    # session then
    seated = svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()
    fuller = next(s["id"] for s in seated if s["theme"] == "ai" and s["seated"] == 2)
    firm, seat = next((f, r) for f in ("firm_1", "firm_2", "firm_4") for r in places(svc, f)
                      if r["session"]["id"] == fuller)
    done = post(svc, firm, f"/workshop-registrations/{seat['id']}/cancel")
    assert done["promoted_registration_id"] is None
    assert sorted((r["session"]["theme"], r["status"]) for r in places(svc, "firm_3")) == [
        ("ai", "waitlisted"), ("ai", "waitlisted"), ("webshop", "seated")]
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == []
    # nor can a coordinator move it into an AI session with a free seat
    waiting = next(r for r in places(svc, "firm_3") if r["session"]["theme"] == "ai")
    other = next(r["session"]["id"] for r in places(svc, "firm_3")
                 if r["session"]["theme"] == "ai" and r["id"] != waiting["id"])
    before = svc.snapshot()
    refused = assert_error(svc.call("coord_1", "POST", f"/workshop-registrations/{waiting['id']}/move",
                                    {"session_id": other}), 409, "session_id")
    assert "another workshop at this session's time" in refused["errors"][0]["reason"]
    assert svc.snapshot() == before
    # once it gives the webshop seat up, an AI seat can be its own
    webshop = next(r for r in places(svc, "firm_3") if r["session"]["theme"] == "webshop")
    post(svc, "firm_3", f"/workshop-registrations/{webshop['id']}/cancel")
    moved = post(svc, "coord_1", f"/workshop-registrations/{waiting['id']}/move", {"session_id": other})
    assert (moved["registration"]["status"], moved["registration"]["session"]["id"]) == ("seated", other)


def test_a_replan_keeps_no_firm_in_two_sessions_of_one_slot(svc: Service) -> None:
    """A plan stored with firm_3 in both sessions of Monday morning (as a waitlist promotion that broke the
    rule left it) is mended by planning again: the current plan is kept only where it keeps the rules."""
    pid = two_themes_one_slot(svc)
    with svc.infra.session_factory.begin() as session:
        waiting = next(r for r in places(svc, "firm_3") if r["session"]["theme"] == "ai")
        seat = session.get(w.WorkshopRegistration, waiting["id"])
        assert seat is not None
        seat.status = "seated"
    problem, plan = stored_plan(svc, pid)
    assert [v.split(":")[0] for v in ws.violations(problem, plan)] == ["firm_once"]
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert report["figures"]["seated"] == 4
    problem, plan = stored_plan(svc, pid)
    assert ws.violations(problem, plan) == []
    assert [r["session"]["theme"] for r in places(svc, "firm_3") if r["status"] == "seated"] == ["webshop"]


def test_a_session_is_not_moved_into_a_slot_where_one_of_its_firms_sits_elsewhere(svc: Service) -> None:
    """firm_3 sits in the webshop session on Monday morning and in AI on Monday afternoon; AI cannot move to
    Monday morning (the second room is free then)."""
    pid = str(post(svc, "coord_1", "/workshop-programmes", {
        **PROGRAMME, "slots": SLOTS[:2], "sessions_wanted": {"ai": 1, "webshop": 1}})["id"])
    rooms = [post(svc, "coord_1", f"/workshop-programmes/{pid}/rooms",
                  {**ROOM, "name": name, "capacity": 3, "availability": SLOTS[:2]})
             for name in ("Stadhuis Utrecht, zaal 2", "Stadhuis Utrecht, zaal 3")]
    post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
         {"label": "F-01", "themes": ["ai"], "availability": SLOTS[:2]})
    post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
         {"label": "F-02", "themes": ["webshop"], "availability": SLOTS[:1]})
    for firm in FIRMS[:3]:
        interest(svc, firm, pid)
    interest(svc, "firm_3", pid, theme="webshop")
    post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    sessions = {s["theme"]: s for s in svc.get("coord_1", f"/workshop-programmes/{pid}/sessions").get_json()}
    assert (sessions["ai"]["day_part"], sessions["ai"]["seated"]) == ("afternoon", 3)
    free_room = next(r["id"] for r in rooms if r["id"] != sessions["webshop"]["room_id"])
    before = svc.snapshot()
    refused = assert_error(svc.call("coord_1", "POST", f"/workshop-programmes/{pid}/session-moves", {
        "session_id": sessions["ai"]["id"], "date": MON, "day_part": "morning", "room_id": free_room}),
        422, "session_id")
    assert "firm_once" in refused["errors"][0]["reason"]
    assert svc.snapshot() == before


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({**PROGRAMME, "title": ""}, "title"),
    ({**PROGRAMME, "slots": []}, "slots"),
    ({**PROGRAMME, "slots": [{"date": "2031-02-30", "day_part": "morning"}]}, "slots.0.date"),
    ({**PROGRAMME, "slots": [{"date": MON, "day_part": "night"}]}, "slots.0.day_part"),
    ({**PROGRAMME, "slots": [SLOTS[0], SLOTS[0]]}, "slots.1"),
    ({**PROGRAMME, "sessions_wanted": {"knitting": 1}}, "sessions_wanted.knitting.key"),
    ({**PROGRAMME, "sessions_wanted": {"ai": -1}}, "sessions_wanted.ai.value"),
    ({**PROGRAMME, "online_capacity": 501}, "online_capacity"),
    ({**PROGRAMME, "min_participants": 0}, "min_participants"),
    ({**PROGRAMME, "coordinator_id": "someone-else"}, "coordinator_id"),
])
def test_an_invalid_programme_is_refused_with_its_field(svc: Service, body: dict[str, Any], field: str) -> None:
    before = svc.snapshot()
    assert_error(svc.call("coord_1", "POST", "/workshop-programmes", body), 422, field)
    assert svc.snapshot() == before


@pytest.mark.parametrize(("path", "body", "field"), [
    ("rooms", {**ROOM, "municipality_code": "Utrecht"}, "municipality_code"),
    ("rooms", {**ROOM, "capacity": 0}, "capacity"),
    ("rooms", {**ROOM, "availability": [{"date": "2031-03-05", "day_part": "morning"}]}, "availability.0"),
    ("rooms", {**ROOM, "availability": [SLOTS[1], SLOTS[1]]}, "availability.1"),
    ("facilitators", {"label": "jan@example.nl", "themes": ["ai"], "availability": SLOTS}, "label"),
    ("facilitators", {"label": "F-03", "themes": [], "availability": SLOTS}, "themes"),
    ("facilitators", {"label": "F-03", "themes": ["cooking"], "availability": SLOTS}, "themes.0"),
    ("facilitators", {"label": "F-03", "themes": ["ai"], "availability": [SLOTS[0], {"date": TUE,
                                                                                      "day_part": "evening"}]},
     "availability.1"),
])
def test_invalid_rooms_and_facilitators_are_refused(svc: Service, path: str, body: dict[str, Any],
                                                   field: str) -> None:
    pid = programme(svc)
    before = svc.snapshot()
    assert_error(svc.call("coord_1", "POST", f"/workshop-programmes/{pid}/{path}", body), 422, field)
    assert svc.snapshot() == before


@pytest.mark.parametrize(("changes", "field"), [
    ({"theme": "knitting"}, "theme"),
    ({"locations": [], "online_ok": False}, "locations"),
    ({"locations": ["GM0344", "GM0344"]}, "locations.1"),
    ({"locations": ["0344"]}, "locations.0"),
    ({"available_days": []}, "available_days"),
    ({"available_days": ["maandag"]}, "available_days.0"),
    ({"online_ok": "perhaps"}, "online_ok"),
    ({"firm_id": "firm_2"}, "firm_id"),
])
def test_invalid_interest_is_refused(svc: Service, changes: dict[str, Any], field: str) -> None:
    pid = programme(svc)
    before = svc.snapshot()
    body = {"theme": "ai", "locations": ["GM0344"], "available_days": [MON], **changes}
    assert_error(svc.call("firm_1", "POST", f"/workshop-programmes/{pid}/interests", body), 422, field)
    assert svc.snapshot() == before


def test_interest_is_once_per_theme_and_online_alone_is_enough(svc: Service) -> None:
    pid = programme(svc)
    interest(svc, "firm_1", pid)
    before = svc.snapshot()
    assert_error(svc.call("firm_1", "POST", f"/workshop-programmes/{pid}/interests",
                          {"theme": "ai", "online_ok": True, "available_days": [TUE]}), 409, "theme")
    assert svc.snapshot() == before
    online = interest(svc, "firm_1", pid, theme="webshop", locations=[], online_ok=True)
    assert online["locations"] == [] and online["online_ok"] is True and online["firm_id"] == "firm_1"


# ---- organisations and roles ----------------------------------------------------------------


def test_other_organisations_get_404_and_the_wrong_role_403(svc: Service) -> None:
    pid, _ = planned(svc)
    before = svc.snapshot()
    for method, path, body in [("GET", f"/workshop-programmes/{pid}", None),
                               ("GET", f"/workshop-programmes/{pid}/rooms", None),
                               ("GET", f"/workshop-programmes/{pid}/sessions", None),
                               ("GET", f"/workshop-programmes/{pid}/interests", None),
                               ("POST", f"/workshop-programmes/{pid}/facilitators",
                                {"label": "F-09", "themes": ["ai"], "availability": SLOTS}),
                               ("POST", f"/workshop-programmes/{pid}/plan", None)]:
        assert_error(svc.call("coord_2", method, path, body), 404)
    seat = registrations(svc, "firm_1")[0]
    assert_error(svc.call("firm_2", "POST", f"/workshop-registrations/{seat['id']}/cancel"), 404)
    assert_error(svc.call("coord_2", "POST", f"/workshop-registrations/{seat['id']}/cancel"), 404)
    assert svc.get("coord_2", "/workshop-registrations").get_json() == []
    assert svc.get("coord_2", "/workshop-programmes").get_json() == []
    # entrepreneurs see their own interest only, and no rooms or sessions; institutions nothing at all
    mine = svc.get("firm_2", f"/workshop-programmes/{pid}/interests").get_json()
    assert [i["firm_id"] for i in mine] == ["firm_2"]
    assert len(svc.get("coord_1", f"/workshop-programmes/{pid}/interests").get_json()) == len(FIRMS)
    assert_error(svc.get("firm_2", f"/workshop-programmes/{pid}/rooms"), 403)
    assert_error(svc.call("firm_2", "POST", f"/workshop-programmes/{pid}/plan"), 403)
    assert_error(svc.call("coord_1", "POST", f"/workshop-programmes/{pid}/interests",
                          {"theme": "ai", "locations": ["GM0344"], "available_days": [MON]}), 403)
    assert_error(svc.get("inst_1", "/workshop-programmes"), 403)
    assert_error(svc.get("inst_1", "/workshop-registrations"), 403)
    assert svc.snapshot() == before


def test_entrepreneurs_see_open_programmes_and_the_ones_they_joined(svc: Service) -> None:
    joined, _ = planned(svc)
    open_one = programme(svc, title="Najaar 2031")
    listed = {p["id"]: p for p in svc.get("firm_1", "/workshop-programmes").get_json()}
    assert set(listed) == {joined, open_one}
    assert listed[open_one]["locations"] == [{"municipality_code": "GM0344", "name": ROOM["name"]}]
    assert [p["id"] for p in svc.get("firm_2", "/workshop-programmes").get_json()] == [joined, open_one]
    # a planned programme is no longer offered to those who did not register for it
    svc.add_key("firm_new", "firm_new", "entrepreneur")
    assert [p["id"] for p in svc.get("firm_new", "/workshop-programmes").get_json()] == [open_one]
    assert_error(svc.get("firm_new", f"/workshop-programmes/{joined}"), 404)


def test_a_programme_retried_with_its_idempotency_key_is_created_once(svc: Service) -> None:
    headers = {"Idempotency-Key": "programme-1"}
    first = svc.call("coord_1", "POST", "/workshop-programmes", PROGRAMME, headers=headers)
    again = svc.call("coord_1", "POST", "/workshop-programmes", PROGRAMME, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.get_data(as_text=True)
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    listed = svc.get("coord_1", "/workshop-programmes?page_size=100").get_json()
    assert [p["id"] for p in listed] == [first.get_json()["id"]]
    changed = svc.call("coord_1", "POST", "/workshop-programmes", {**PROGRAMME, "title": "Anders"}, headers=headers)
    assert_error(changed, 422, "headers.Idempotency-Key")
    # another organisation's key space is its own
    theirs = svc.call("coord_2", "POST", "/workshop-programmes", PROGRAMME, headers=headers)
    assert theirs.status_code == 201 and theirs.get_json()["id"] != first.get_json()["id"]


def test_the_theme_catalogue_is_in_dutch_and_english(svc: Service) -> None:
    themes = {t["code"]: t for t in svc.get("firm_1", "/workshop-themes").get_json()}
    assert set(themes) == {"cyber_resilience", "online_marketing", "ai", "webshop", "data_automation",
                           "digital_roadmap"}
    assert themes["cyber_resilience"] == {"code": "cyber_resilience", "label_nl": "Cyberweerbaarheid",
                                          "label_en": "Cyber resilience"}


def test_registered_days_are_stored_as_dates(svc: Service) -> None:
    pid = programme(svc)
    got = interest(svc, "firm_1", pid, available_days=[TUE, MON])
    assert got["available_days"] == [MON, TUE] and date.fromisoformat(got["available_days"][0]).weekday() == 0


@pytest.fixture
def pg(make_postgres_db: Any, tmp_path: Path) -> Iterator[Service]:
    yield from _service(make_postgres_db("workshops"), tmp_path)


@pytest.mark.postgres
def test_simultaneous_cancellations_never_seat_one_firm_twice_in_a_theme(pg: Service) -> None:
    """firm_5 is first in line for both sessions; a seat in each is cancelled at the same moment: one goes
    to firm_5, the other to firm_6, whichever cancellation commits first."""
    pid, _ = planned(pg)
    seats = [registrations(pg, firm)[0] for firm in ("firm_1", "firm_2", "firm_3", "firm_4")]
    one_per_session = list({s["session"]["id"]: s for s in seats}.values())
    assert len(one_per_session) == 2
    start = threading.Barrier(2)
    promoted: list[str | None] = []
    holder = Principal(organisation_id="coord_1", role="coordinator", key_id="k")

    def cancel(seat: dict[str, Any]) -> None:
        start.wait()
        with pg.infra.session_factory.begin() as session:
            promoted.append(workshops.cancel_registration(session, holder, seat["id"]).promoted_id)

    threads = [threading.Thread(target=cancel, args=(seat,)) for seat in one_per_session]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(promoted) == 2 and None not in promoted
    seated = {firm: [r for r in registrations(pg, firm) if r["status"] == "seated"] for firm in ("firm_5", "firm_6")}
    assert [len(seated["firm_5"]), len(seated["firm_6"])] == [1, 1]
    assert {r["session"]["id"] for rs in seated.values() for r in rs} == {s["session"]["id"] for s in one_per_session}
    problem, plan = stored_plan(pg, pid)
    assert ws.violations(problem, plan) == []
    assert sorted(n.firm_id for n in notices(pg) if n.details and n.details["promoted"]) == ["firm_5", "firm_6"]


@pytest.mark.postgres
def test_simultaneous_cancellations_in_two_themes_seat_a_firm_once_in_the_slot(pg: Service) -> None:
    """firm_3 waits for AI and for the webshop session, both on Monday morning; a seat in each is cancelled
    at the same moment: firm_3 gets one of them, the other stays free."""
    pid = str(post(pg, "coord_1", "/workshop-programmes", {
        **PROGRAMME, "slots": SLOTS[:1], "sessions_wanted": {"ai": 1, "webshop": 1}})["id"])
    for n in (2, 3):
        post(pg, "coord_1", f"/workshop-programmes/{pid}/rooms",
             {**ROOM, "name": f"Stadhuis Utrecht, zaal {n}", "availability": SLOTS[:1]})
    for label, theme in (("F-01", "ai"), ("F-02", "webshop")):
        post(pg, "coord_1", f"/workshop-programmes/{pid}/facilitators",
             {"label": label, "themes": [theme], "availability": SLOTS[:1]})
    for firm, theme in (("firm_1", "ai"), ("firm_2", "ai"), ("firm_4", "webshop"), ("firm_5", "webshop"),
                        ("firm_3", "ai"), ("firm_3", "webshop")):
        interest(pg, firm, pid, theme=theme)
    post(pg, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert sorted(r["status"] for r in registrations(pg, "firm_3")) == ["waitlisted", "waitlisted"]
    seats = [registrations(pg, firm)[0] for firm in ("firm_1", "firm_4")]
    start = threading.Barrier(2)
    promoted: list[str | None] = []
    holder = Principal(organisation_id="coord_1", role="coordinator", key_id="k")

    def cancel(seat: dict[str, Any]) -> None:
        start.wait()
        with pg.infra.session_factory.begin() as session:
            promoted.append(workshops.cancel_registration(session, holder, seat["id"]).promoted_id)

    threads = [threading.Thread(target=cancel, args=(seat,)) for seat in seats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(promoted) == 2 and promoted.count(None) == 1
    [seated] = [r for r in registrations(pg, "firm_3") if r["status"] == "seated"]
    assert seated["id"] in promoted
    problem, plan = stored_plan(pg, pid)
    assert ws.violations(problem, plan) == []


def _walk(svc: Service, who: str, path: str, size: int) -> list[dict[str, Any]]:
    """Every item of a list, page after page by the position each page gives."""
    glue = "&" if "?" in path else "?"
    resp = svc.get(who, f"{path}{glue}page_size={size}")
    items = list(resp.get_json())
    while (after := json.loads(resp.headers["X-Pagination"]).get("next_after")) is not None:
        resp = svc.get(who, f"{path}{glue}page_size={size}&after={after}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        items.extend(resp.get_json())
    return items


def test_interests_and_registrations_page_in_the_database_by_position(svc: Service) -> None:
    pid, _ = planned(svc)
    seats = registrations(svc, "coord_1")
    assert {s["firm_id"] for s in seats} == set(FIRMS)
    assert _walk(svc, "coord_1", "/workshop-registrations", 4) == seats  # each once, in the same order
    assert _walk(svc, "coord_1", f"/workshop-registrations?programme_id={pid}&status=waitlisted", 1) == [
        s for s in seats if s["status"] == "waitlisted"]
    every = svc.get("coord_1", f"/workshop-programmes/{pid}/interests?page_size=100").get_json()
    assert len(every) == len(FIRMS)
    assert _walk(svc, "coord_1", f"/workshop-programmes/{pid}/interests", 4) == every
    assert [i["firm_id"] for i in _walk(svc, "firm_2", f"/workshop-programmes/{pid}/interests", 1)] == ["firm_2"]
    assert svc.get("coord_2", f"/workshop-programmes/{pid}/interests").status_code == 404
