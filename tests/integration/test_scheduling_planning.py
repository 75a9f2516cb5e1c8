"""Kickoff planning through the API (Flask's test client on SQLite): institutions' holiday region and
non-teaching weeks and firms' availability, validated; a coordinator plans a batch's kickoffs at once,
moves and cancels one (checked by the same rules); the per-organisation .ics feed; and the answer
deadline that turns an unanswered match into a decline."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
import pytest
import sqlalchemy as sa
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.domain.kickoffs import Rules, violations
from scheduling.service_layer import kickoffs as kickoff_services
from scheduling.service_layer import services
from werkplaats_shared.contracts import MatchRespondedV1, make_envelope

from . import test_scheduling_kickoffs as kickoff_tests
from .plan_jobs_client import plan
from .scheduling_names import announced_then, code_of, title_of
from .test_matching_scheduling_api import SECRET_KEY, Service, assert_error
from .test_scheduling_kickoffs import AMSTERDAM, PERIOD

svc = kickoff_tests.svc  # the fixture: a scheduling service on SQLite with two firms' contacts
LINKS = ResponseLinks(SECRET_KEY, "http://x")
DEFAULT_RULES = Rules()


def _publish(svc: Service, firms_and_institutions: list[tuple[str, str]], coordinator: str = "coord-1"
             ) -> tuple[str, list[dict[str, Any]]]:
    batch_id = str(uuid.uuid4())
    matches = [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                "firm_id": firm, "institution_id": inst, "score": 0.5} for firm, inst in firms_and_institutions]
    svc.handle(announced_then(services.on_matches_published), make_envelope("matches.published", 1, {
        "run_id": str(uuid.uuid4()), "batch_id": batch_id, "workspace_id": str(uuid.uuid4()),
        "coordinator_id": coordinator, "period": PERIOD, "unmatched_assignment_ids": [], "matches": matches}))
    return batch_id, matches


def _token(svc: Service, match: dict[str, Any]) -> str:
    with svc.infra.session_factory() as session:
        notice_id = session.execute(sa.select(orm.Notice.id).where(
            orm.Notice.kind == "match_notice", orm.Notice.firm_id == match["firm_id"],
            orm.Notice.batch_id.in_(sa.select(orm.Notice.batch_id)))).scalars().all()
        for nid in notice_id:
            notice = session.get(orm.Notice, nid)
            if notice and any(m["match_id"] == match["match_id"] for m in notice.matches):
                return LINKS.issue(nid, match["match_id"])
    raise AssertionError("no notice for the match")


def _answer(svc: Service, match: dict[str, Any], decision: str = "accepted") -> int:
    return svc.client.post(f"/responses/{_token(svc, match)}", json={"decision": decision}).status_code


def _kickoffs(svc: Service) -> dict[str, orm.Kickoff]:
    with svc.infra.session_factory() as session:
        rows = session.execute(sa.select(orm.Kickoff)).scalars().all()
        session.expunge_all()
    return {k.match_id: k for k in rows}


def _local(moment: datetime | None) -> datetime:
    assert moment is not None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(AMSTERDAM)


def _assert_valid(svc: Service, weeks: int = 2, rules: Rules = DEFAULT_RULES) -> None:
    """The validator (the optimiser's own rows) finds nothing wrong with the stored kickoffs."""
    with svc.infra.session_factory() as session:
        rows = session.execute(sa.select(orm.Kickoff).where(orm.Kickoff.status == "proposed")).scalars().all()
        requests = [kickoff_services.as_request(r, weeks) for r in rows]
        cal = kickoff_services.load_calendars(session, requests)
        plan = {r.match_id: _local(r.starts_at) for r in rows}
    assert violations(requests, plan, [], cal, rules) == []


# ---- calendars ------------------------------------------------------------------------------


def test_an_institution_sets_its_region_and_non_teaching_weeks(svc: Service) -> None:
    svc.add_key("inst", "inst-1", "institution")
    resp = svc.put("inst", "/institution-calendar", {"region": "zuid", "non_teaching": [
        {"iso_week": "2031-W02"}, {"start": "2031-01-20", "end": "2031-01-21"}]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["non_teaching"] == [{"start": "2031-01-06", "end": "2031-01-12"},
                                               {"start": "2031-01-20", "end": "2031-01-21"}]
    got = svc.get("inst", "/institution-calendar").get_json()
    assert got["region"] == "zuid" and got["institution_id"] == "inst-1" and len(got["non_teaching"]) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"region": "oost"}, "region"),
    ({"non_teaching": [{"iso_week": "2031-W54"}]}, "non_teaching.0.iso_week"),
    ({"non_teaching": [{"start": "2031-02-02", "end": "2031-02-01"}]}, "non_teaching.0.end"),
    ({"non_teaching": [{"iso_week": "2031-W02", "start": "2031-01-01", "end": "2031-01-02"}]},
     "non_teaching.0.iso_week"),
    ({"non_teaching": [{"start": "2031-02-02"}]}, "non_teaching.0.end"),
    ({"non_teaching": [{"iso_week": "2031-W02"}] * 61}, "non_teaching"),
    ({"region": "noord", "owner": "someone-else"}, "owner"),
])
def test_a_bad_institution_calendar_is_refused_and_changes_nothing(svc: Service, body: dict[str, Any],
                                                                    field: str) -> None:
    svc.add_key("inst", "inst-1", "institution")
    assert svc.put("inst", "/institution-calendar", {"region": "noord"}).status_code == 200
    before = svc.get("inst", "/institution-calendar").get_json()
    resp = svc.put("inst", "/institution-calendar", body)
    assert_error(resp, 422)
    assert field in [e["field"] for e in resp.get_json()["errors"]], resp.get_json()
    assert svc.get("inst", "/institution-calendar").get_json() == before


def test_only_institutions_set_calendars_and_only_firms_their_availability(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    assert_error(svc.put("firm_nl", "/institution-calendar", {"region": "noord"}), 403)
    assert_error(svc.put("coord", "/availability", {"windows": [{"weekday": 0, "start": "09:00", "end": "12:00"}],
                                                    "venue": "online"}), 403)
    assert_error(svc.get("firm_nl", "/availability"), 404)


@pytest.mark.parametrize(("body", "field"), [
    ({"windows": [{"weekday": 5, "start": "09:00", "end": "12:00"}], "venue": "online"}, "windows.0.weekday"),
    ({"windows": [{"weekday": 1, "start": "09:00", "end": "09:45"}], "venue": "online"}, "windows.0.end"),
    ({"windows": [{"weekday": 1, "start": "9 uur", "end": "12:00"}], "venue": "online"}, "windows.0.start"),
    ({"windows": [], "venue": "online"}, "windows"),
    ({"windows": [{"weekday": 1, "start": "09:00", "end": "12:00"}], "venue": "on_site"}, "address"),
    ({"windows": [{"weekday": 1, "start": "09:00", "end": "12:00"}], "venue": "kantoor"}, "venue"),
    ({"windows": [{"weekday": 1, "start": "09:00", "end": "12:00"}], "venue": "online",
      "blocked_dates": ["31-01-2031"]}, "blocked_dates.0"),
])
def test_a_bad_availability_is_refused(svc: Service, body: dict[str, Any], field: str) -> None:
    resp = svc.put("firm_nl", "/availability", body)
    assert_error(resp, 422)
    assert field in [e["field"] for e in resp.get_json()["errors"]], resp.get_json()
    assert_error(svc.get("firm_nl", "/availability"), 404)


# ---- planning -------------------------------------------------------------------------------


def test_a_coordinator_plans_a_batch_around_calendars_set_after_acceptance(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("inst", "inst-a", "institution")
    batch_id, matches = _publish(svc, [("firm_nl", "inst-a")] * 3 + [("firm_en", "inst-b")] * 3)
    for m in matches:
        assert _answer(svc, m) == 201
    before = _kickoffs(svc)
    assert {_local(k.starts_at).date() for k in before.values()} <= {date(2031, 1, 2), date(2031, 1, 3)}
    # afterwards: inst-a has a non-teaching week from Thursday 2 January, firm_en can only do Tuesday afternoons
    assert svc.put("inst", "/institution-calendar", {"non_teaching": [
        {"start": "2031-01-01", "end": "2031-01-08"}]}).status_code == 200
    assert svc.put("firm_en", "/availability", {
        "windows": [{"weekday": 1, "start": "13:00", "end": "17:00"}], "blocked_dates": ["2031-01-07"],
        "venue": "on_site", "address": "Dorpsstraat 1, Utrecht"}).status_code == 200
    report = plan(svc, "coord", "/kickoffs/plan", {"batch_id": batch_id})
    assert (report["placed"], report["unplaced"], report["changed"]) == (5, 1, 6)
    by_id = {k["match_id"]: k for k in report["kickoffs"]}
    for m in matches[:3]:  # inst-a: from Thursday 9 January, after its non-teaching week
        k = by_id[m["match_id"]]
        assert k["status"] == "proposed" and k["starts_at"][:10] == "2031-01-09" and k["sequence"] == 1
    # firm_en: Tuesdays 13:30 and 15:00 only, 7 January blocked: two fit on 14 January, the third nowhere
    en = [by_id[m["match_id"]] for m in matches[3:]]
    assert sorted(k["starts_at"] for k in en if k["starts_at"]) == [
        "2031-01-14T13:30:00+01:00", "2031-01-14T15:00:00+01:00"]
    assert all(k["venue"] == "on_site" for k in en if k["starts_at"])
    [lost] = [k for k in en if k["status"] == "unplaced"]
    assert lost["reason_code"] == "daily_cap" and "no free weekday slot" in lost["reason"]
    _assert_valid(svc)
    with svc.infra.session_factory() as session:
        kinds = sorted((n.kind, n.sequence) for n in session.execute(
            sa.select(orm.Notice).where(orm.Notice.kind != "match_notice")).scalars())
    # per kickoff: its first invitation; then 5 updates and 1 cancellation (the unplaced one), each seq 1
    assert kinds == [("kickoff_cancellation", 1)] + [("kickoff_notice", 0)] * 6 + [("kickoff_update", 1)] * 5
    # planning again changes nothing (the current slots are kept)
    again = plan(svc, "coord", "/kickoffs/plan", {"batch_id": batch_id})
    assert again["changed"] == 0 and again["placed"] == 5


def test_a_plan_in_a_school_year_without_holiday_data_says_so(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("inst", "inst-a", "institution")
    assert svc.put("inst", "/institution-calendar", {"region": "noord"}).status_code == 200
    batch_id, matches = _publish(svc, [("firm_nl", "inst-a"), ("firm_en", "inst-b")])
    for m in matches:
        assert _answer(svc, m) == 201
    report = plan(svc, "coord", "/kickoffs/plan", {"batch_id": batch_id})
    assert report["placed"] == 2
    # inst-a's region has no school-holiday data for 2030-2031; inst-b chose no region, so none was checked
    warning, unchosen = report["warnings"]
    assert (warning["code"], warning["school_year"], warning["region"], warning["match_ids"]) == (
        "school_holidays_unknown", "2030-2031", "noord", [matches[0]["match_id"]])
    assert "schoolvakanties" in warning["message_nl"] and "school holidays" in warning["message_en"]
    assert (unchosen["code"], unchosen["school_year"], unchosen["region"], unchosen["match_ids"]) == (
        "school_region_not_chosen", "2030-2031", None, [matches[1]["match_id"]])
    assert "regio te kiezen" in unchosen["message_nl"] and "choose its region" in unchosen["message_en"]


def test_the_coordinators_daily_cap_is_kept_for_acceptances_and_moves(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("coord2", "coord-2", "coordinator")
    batch_id, [first] = _publish(svc, [("firm_nl", "inst")])
    assert _answer(svc, first) == 201
    report = plan(svc, "coord", "/kickoffs/plan", {"batch_id": batch_id, "daily_cap": 1})
    assert report["daily_cap"] == 1 and report["placed"] == 1
    # later acceptances of coord-1 (another batch) keep to one a day; coord-2 still has the default of four
    _, more = _publish(svc, [("firm_nl", "inst"), ("firm_en", "inst")])
    _, others = _publish(svc, [("firm_nl", "inst2"), ("firm_en", "inst2")], coordinator="coord-2")
    for m in [*more, *others]:
        assert _answer(svc, m) == 201
    kickoffs = _kickoffs(svc)
    days = [_local(kickoffs[m["match_id"]].starts_at).date() for m in [first, *more]]
    assert len(set(days)) == 3, days
    assert len({_local(kickoffs[m["match_id"]].starts_at).date() for m in others}) == 1
    # a move onto a day that already has coord-1's kickoff breaks the cap of one
    resp = svc.call("coord", "PATCH", f"/kickoffs/{more[0]['match_id']}",
                    {"starts_at": _local(kickoffs[first["match_id"]].starts_at).replace(hour=15, minute=0).isoformat()})
    assert "daily cap" in assert_error(resp, 422, "starts_at")["errors"][0]["reason"]
    # planning without a cap keeps the one chosen
    again = plan(svc, "coord", "/kickoffs/plan", {"batch_id": batch_id})
    assert again["daily_cap"] == 1
    assert svc.call("coord2", "POST", "/kickoffs/plan", {"batch_id": batch_id}).status_code == 404


def test_plan_refusals(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("coord2", "coord-2", "coordinator")
    batch_id, [m] = _publish(svc, [("firm_nl", "inst")])
    assert _answer(svc, m) == 201
    assert_error(svc.call("coord2", "POST", "/kickoffs/plan", {"batch_id": batch_id}), 404)
    assert_error(svc.call("coord", "POST", "/kickoffs/plan", {"batch_id": str(uuid.uuid4())}), 404)
    assert_error(svc.call("coord", "POST", "/kickoffs/plan", {"batch_id": batch_id, "daily_cap": 0}), 422)
    assert_error(svc.call("coord", "POST", "/kickoffs/plan", {"batch_id": batch_id, "weeks": 9}), 422)
    assert_error(svc.call("firm_nl", "POST", "/kickoffs/plan", {"batch_id": batch_id}), 403)


def test_planning_a_batch_nobody_accepted_yet_says_what_is_missing(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("coord2", "coord-2", "coordinator")
    batch_id, matches = _publish(svc, [("firm_nl", "inst"), ("firm_en", "inst"), ("firm_nl", "inst2")])
    assert _answer(svc, matches[1], "declined") == 201
    body = assert_error(svc.call("coord", "POST", "/kickoffs/plan", {"batch_id": batch_id}), 422, "batch_id")
    reason = body["errors"][0]["reason"]
    assert "no match of this batch has been accepted yet" in reason and "3 published, 1 declined" in reason
    # another coordinator still learns nothing about the batch
    assert_error(svc.call("coord2", "POST", "/kickoffs/plan", {"batch_id": batch_id}), 404)
    # once a firm accepts (with the verb its own page might send), the batch can be planned
    assert svc.client.post(f"/responses/{_token(svc, matches[0])}", json={"decision": "accept"}).status_code == 201
    assert _kickoffs(svc)[matches[0]["match_id"]].status == "proposed"
    assert plan(svc, "coord", "/kickoffs/plan", {"batch_id": batch_id})["placed"] == 1


def test_a_coordinator_moves_a_kickoff_within_the_rules(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("coord2", "coord-2", "coordinator")
    _, [a, b] = _publish(svc, [("firm_nl", "inst"), ("firm_nl", "inst")])
    assert _answer(svc, a) == 201 and _answer(svc, b) == 201
    path = f"/kickoffs/{a['match_id']}"
    assert svc.get("coord", path).get_json()["starts_at"] == "2031-01-02T10:00:00+01:00"
    before = svc.snapshot()
    refusals = [
        ("2031-01-01T14:00:00+01:00", "public holiday"),  # New Year's Day
        ("2031-01-02T11:30:00+01:00", "the firm has another kickoff at that time"),  # b is there
        ("2031-01-02T11:00:00+01:00", "the firm has another kickoff at that time"),  # overlaps b
        ("2031-01-04T10:00:00+01:00", "not a weekday"),
        ("2031-02-03T10:00:00+01:00", "outside the kickoff window"),
        ("2031-01-06T10:10:00+01:00", "a kickoff starts on a quarter of an hour"),
        ("2031-01-06T16:30:00+01:00", "the firm is not available"),  # would end after 17:00
    ]
    for starts_at, reason in refusals:
        resp = svc.call("coord", "PATCH", path, {"starts_at": starts_at})
        assert_error(resp, 422)
        assert resp.get_json()["errors"] == [{"field": "starts_at", "reason": reason}], starts_at
    assert_error(svc.call("coord", "PATCH", path, {"starts_at": "2031-01-06T10:00:00"}), 422)  # no offset
    assert_error(svc.call("coord2", "PATCH", path, {"starts_at": "2031-01-06T10:00:00+01:00"}), 404)
    assert_error(svc.call("firm_nl", "PATCH", path, {"starts_at": "2031-01-06T10:00:00+01:00"}), 403)
    assert svc.snapshot() == before
    resp = svc.call("coord", "PATCH", path, {"starts_at": "2031-01-06T09:15:00Z"})  # 10:15 in Amsterdam
    assert resp.status_code == 200, resp.get_json()
    moved = resp.get_json()
    assert moved["starts_at"] == "2031-01-06T10:15:00+01:00" and moved["sequence"] == 1
    assert svc.get("firm_nl", path).get_json()["starts_at"] == "2031-01-06T10:15:00+01:00"
    _assert_valid(svc)
    # a moved kickoff can be cancelled with the coordinator's reason: cancelled, sequence 2, a cancellation
    # queued; cancelled stays put. A reason too long is refused and changes nothing.
    assert_error(svc.call("coord", "POST", f"{path}/cancellation", {"reason": "x" * 201}), 422)
    assert svc.get("coord", path).get_json()["status"] == "proposed"
    resp = svc.call("coord", "POST", f"{path}/cancellation", {"reason": "the firm moves premises that week"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled" and resp.get_json()["sequence"] == 2
    assert resp.get_json()["reason"] == "the firm moves premises that week" and resp.get_json()["reason_code"] is None
    assert svc.get("firm_nl", path).get_json()["reason"] == "the firm moves premises that week"
    assert_error(svc.call("coord", "PATCH", path, {"starts_at": "2031-01-07T10:00:00+01:00"}), 422)
    with svc.infra.session_factory() as session:
        notices = session.execute(sa.select(orm.Notice).where(orm.Notice.subject_id == a["match_id"])
                                  .order_by(orm.Notice.sequence)).scalars().all()
        assert [(n.kind, n.sequence, (n.details or {})["kickoff"]["method"]) for n in notices] == [
            ("kickoff_notice", 0, "REQUEST"), ("kickoff_update", 1, "REQUEST"), ("kickoff_cancellation", 2, "CANCEL")]
        assert notices[2].details["kickoff"]["starts_at"] == "2031-01-06T10:15:00+01:00"  # type: ignore[index]


def test_a_webhook_hears_of_a_move_with_the_new_time_and_sequence(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    _, [m] = _publish(svc, [("firm_nl", "inst")])
    assert _answer(svc, m) == 201
    path = f"/kickoffs/{m['match_id']}"
    assert svc.call("coord", "PATCH", path, {"starts_at": "2031-01-08T13:30:00+01:00"}).status_code == 200
    assert svc.call("coord", "POST", f"{path}/cancellation").status_code == 200
    with svc.infra.session_factory() as session:
        notices = session.execute(sa.select(orm.Notice).where(orm.Notice.subject_id == m["match_id"])
                                  .order_by(orm.Notice.sequence)).scalars().all()
        bodies = [json.loads(services.webhook_body(session, n, LINKS)) for n in notices]
    seen = [(b["kind"], b["kickoff"]["sequence"], b["kickoff"]["method"], b["kickoff"]["starts_at"]) for b in bodies]
    assert seen == [
        ("kickoff_notice", 0, "REQUEST", "2031-01-02T10:00:00+01:00"),
        ("kickoff_update", 1, "REQUEST", "2031-01-08T13:30:00+01:00"),
        ("kickoff_cancellation", 2, "CANCEL", "2031-01-08T13:30:00+01:00")]
    assert {b["kickoff"]["uid"] for b in bodies} == {f"kickoff-{m['match_id']}@werkplaats"}


# ---- the .ics feed --------------------------------------------------------------------------


def test_the_feed_holds_only_the_callers_organisations_kickoffs(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("inst", "inst-a", "institution")
    _, matches = _publish(svc, [("firm_nl", "inst-a"), ("firm_en", "inst-b"), ("firm_nl", "inst-b")])
    for m in matches:
        assert _answer(svc, m) == 201
    assert svc.call("coord", "POST", f"/kickoffs/{matches[2]['match_id']}/cancellation").status_code == 200

    def feed(who: str, query: str = "") -> icalendar.Calendar:
        resp = svc.get(who, f"/calendar.ics{query}")
        assert resp.status_code == 200 and resp.mimetype == "text/calendar"
        return icalendar.Calendar.from_ical(resp.get_data())

    def uids(cal: icalendar.Calendar) -> set[str]:
        return {str(e["uid"]) for e in cal.walk("VEVENT")}

    def uid(m: dict[str, Any]) -> str:
        return f"kickoff-{m['match_id']}@werkplaats"

    nl = feed("firm_nl")
    assert uids(nl) == {uid(matches[0]), uid(matches[2])}
    events = {str(e["uid"]): e for e in nl.walk("VEVENT")}
    first = events[uid(matches[0])]
    assert first.decoded("dtstart") == datetime(2031, 1, 2, 10, 0, tzinfo=AMSTERDAM)
    assert first["dtstart"].params["TZID"] == "Europe/Amsterdam" and str(first["status"]) == "TENTATIVE"
    assert str(first["summary"]) == (f"Kennismaking: {title_of(matches[0]['assignment_id'])} met team "
                                     f"{code_of(matches[0]['team_id'])}")
    assert "Gemeente Testdorp" in str(first["description"]) and matches[0]["match_id"] not in str(first["description"])
    cancelled = events[uid(matches[2])]
    assert str(cancelled["status"]) == "CANCELLED" and cancelled.decoded("sequence") == 1
    assert uids(feed("firm_en")) == {uid(matches[1])}
    assert "kickoff" in str(feed("firm_en").walk("VEVENT")[0]["summary"]).lower()  # the firm chose English
    assert uids(feed("inst")) == {uid(matches[0])}
    assert uids(feed("coord")) == {uid(m) for m in matches}
    assert "@" not in feed("firm_nl").to_ical().decode().replace("@werkplaats", "")  # no addresses
    assert_error(svc.get(None, "/calendar.ics"), 401)
    assert_error(svc.get("firm_nl", "/calendar.ics?language=de"), 422)


# ---- answer deadlines -----------------------------------------------------------------------


class _Mailer:
    sender = "werkplaats@werkplaats.test"

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, **kwargs: Any) -> None:
        self.bodies.append(kwargs["body"])


def test_an_unanswered_match_is_declined_at_its_deadline(svc: Service) -> None:
    _, [answered, silent] = _publish(svc, [("firm_nl", "inst"), ("firm_nl", "inst")])
    sent_at = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
    mailer = _Mailer()
    assert services.send_pending(svc.infra.session_factory, mailer, LINKS, answer_days=3, now=lambda: sent_at) == 1
    with svc.infra.session_factory() as session:
        [notice] = session.execute(sa.select(orm.Notice)).scalars().all()
        assert _local(notice.answer_deadline) == _local(sent_at + timedelta(days=3))
    assert "Laat het ons uiterlijk zaterdag 4 januari 2031 weten" in mailer.bodies[0]
    assert _answer(svc, answered) == 201
    sf = svc.infra.session_factory
    assert services.expire_unanswered(sf, now=lambda: sent_at + timedelta(days=3, seconds=-1)) == 0
    assert services.expire_unanswered(sf, now=lambda: sent_at + timedelta(days=3)) == 1
    assert services.expire_unanswered(sf, now=lambda: sent_at + timedelta(days=4)) == 0  # once only
    with svc.infra.engine.connect() as conn:
        bodies = [json.loads(r.body) for r in conn.execute(sa.select(orm.outbox).order_by(orm.outbox.c.created_at))]
    responded = [b["payload"] for b in bodies if b["type"] == "match.responded"]
    assert [(p["match_id"], p["response"]) for p in responded] == [
        (answered["match_id"], "accepted"), (silent["match_id"], "declined")]
    assert MatchRespondedV1().validate(responded[1]) == {}  # the very event a decline through the link sends
    assert responded[1]["responded_at"] == (sent_at + timedelta(days=3)).isoformat()
    with svc.infra.session_factory() as session:
        vias = {r.match_id: r.via for r in session.execute(sa.select(orm.MatchResponse)).scalars()}
    assert vias == {answered["match_id"]: "link", silent["match_id"]: "deadline"}
    # the link afterwards finds the match answered; no second event; no kickoff for the declined one
    assert _answer(svc, silent, "accepted") == 409
    assert silent["match_id"] not in _kickoffs(svc) and answered["match_id"] in _kickoffs(svc)


def test_a_notice_without_a_contact_also_gets_a_deadline(svc: Service) -> None:
    _, [m] = _publish(svc, [("firm_without_contact", "inst")])
    now = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
    services.send_pending(svc.infra.session_factory, _Mailer(), LINKS, answer_days=2, now=lambda: now)
    assert services.expire_unanswered(svc.infra.session_factory, now=lambda: now + timedelta(days=2)) == 1
    with svc.infra.session_factory() as session:
        assert session.get(orm.MatchResponse, m["match_id"]).decision == "declined"  # type: ignore[union-attr]
