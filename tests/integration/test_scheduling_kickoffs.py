"""An accepted match gets a kickoff proposal and an e-mail with an .ics invitation, sent through a real
SMTP server (aiosmtpd on loopback); icalendar reads the invitation back at the right Amsterdam time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.domain.calendar import SLOTS
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope

from ..conftest import free_port
from .scheduling_names import announced_then, code_of, title_of
from .test_matching_scheduling_api import SECRET_KEY, Service, assert_error
from .test_scheduling_responses import _Collector

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# 1 January 2031 is a Wednesday and a public holiday: the first kickoff slot is Thursday 2 January
PERIOD = "2031-Q1"
CONTACTS = {"firm_nl": {"email": "planning@bakkerij-jansen.nl", "language": "nl"},
            "firm_en": {"email": "office@kapsalon-bloem.nl", "language": "en"}}


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Collector]]:
    collector = _Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, collector
    finally:
        controller.stop()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    tables: list[Any] = [orm.Kickoff.__table__, orm.Notice.__table__, orm.outbox]
    service = Service(infra, app, app.test_client(), tables)
    for who in CONTACTS:
        service.add_key(who, who, "entrepreneur")
        assert service.put(who, "/contact", CONTACTS[who]).status_code == 200
    yield service
    infra.engine.dispose()


def _publish(svc: Service, firms: list[str], period: str = PERIOD) -> tuple[str, list[dict[str, Any]]]:
    matches = [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                "firm_id": firm, "institution_id": "inst", "score": 0.5} for firm in firms]
    svc.handle(announced_then(services.on_matches_published), make_envelope("matches.published", 1, {
        "run_id": str(uuid.uuid4()), "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "coordinator_id": "coord-1", "period": period, "unmatched_assignment_ids": [], "matches": matches}))
    return period, matches


def _answer(svc: Service, match: dict[str, Any], decision: str) -> None:
    with svc.infra.session_factory() as session:
        notice_id = session.execute(sa.select(orm.Notice.id).where(
            orm.Notice.kind == "match_notice", orm.Notice.firm_id == match["firm_id"])).scalars().first()
    token = ResponseLinks(SECRET_KEY, "http://x").issue(str(notice_id), match["match_id"])
    resp = svc.client.post(f"/responses/{token}", data={"decision": decision})
    assert resp.status_code == 200, resp.get_data(as_text=True)


def _mailer(port: int) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", port, "werkplaats@werkplaats.test")


def _invitation(message: Any) -> icalendar.Calendar:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "kickoff.ics" and part.get_param("method") == "REQUEST"
    return icalendar.Calendar.from_ical(part.get_payload(decode=True))


def test_an_accepted_match_gets_an_ics_invitation_at_the_right_amsterdam_time(
        svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    _, [nl_match, en_match] = _publish(svc, ["firm_nl", "firm_en"])
    assert services.send_pending(svc.infra.session_factory, _mailer(port), ResponseLinks(SECRET_KEY, "http://x")) == 2
    inbox.messages.clear()
    _answer(svc, en_match, "accepted")
    _answer(svc, nl_match, "accepted")
    assert services.send_pending(svc.infra.session_factory, _mailer(port), ResponseLinks(SECRET_KEY, "http://x")) == 2
    by_to = {m["To"]: m for m in inbox.messages}
    en, nl = by_to[CONTACTS["firm_en"]["email"]], by_to[CONTACTS["firm_nl"]["email"]]
    en_title, nl_title = title_of(en_match["assignment_id"]), title_of(nl_match["assignment_id"])
    assert en["Subject"] == f'Invitation: kickoff meeting for "{en_title}"' and en["Content-Language"] == "en"
    assert nl["Subject"] == f'Uitnodiging: kennismaking voor "{nl_title}"' and nl["Content-Language"] == "nl"
    en_text = en.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    nl_text = nl.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # New Year's Day 2031 is skipped; the coordinator's first two slots on Thursday 2 January are used in turn
    assert "When: Thursday 2 January 2031, 10:00 to 11:00 (Amsterdam time)" in en_text
    assert f"Wanneer: donderdag 2 januari 2031, van {SLOTS[1].strftime('%H:%M')} tot 12:30 uur" in nl_text
    assert code_of(en_match["team_id"]) in en_text and en_match["team_id"] not in en_text
    for message, match, local in ((en, en_match, datetime(2031, 1, 2, 10, 0)),
                                  (nl, nl_match, datetime(2031, 1, 2, 11, 30))):
        cal = _invitation(message)
        assert str(cal["method"]) == "REQUEST"
        [event] = cal.walk("VEVENT")
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        assert start == local.replace(tzinfo=AMSTERDAM) and (end - start).total_seconds() == 3600
        assert isinstance(start.tzinfo, ZoneInfo) and start.tzinfo.key == "Europe/Amsterdam"
        assert event["dtstart"].params["TZID"] == "Europe/Amsterdam"
        assert start.utcoffset().total_seconds() == 3600  # CET in January
        assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Amsterdam"]
        assert str(event["uid"]) == f"kickoff-{match['match_id']}@werkplaats" and event.decoded("sequence") == 0
        assert str(event["attendee"]) == f"mailto:{message['To']}"
        assert str(event["organizer"]) == "mailto:werkplaats@werkplaats.test"
        summary = str(event["summary"])
        assert title_of(match["assignment_id"]) in summary and code_of(match["team_id"]) in summary
        assert match["assignment_id"] not in summary and match["match_id"] not in str(event["description"])
        assert str(event["status"]) == "TENTATIVE"  # a proposed time, not yet agreed
    # the kickoff notices are visible to the firm like any notice, the kickoff itself in Amsterdam time
    kinds = sorted(n["kind"] for n in svc.get("firm_en", "/notices").get_json())
    assert kinds == ["kickoff_notice", "match_notice"]
    [own] = svc.get("firm_en", "/kickoffs").get_json()
    with svc.infra.session_factory() as session:
        batch_id = session.execute(sa.select(orm.Notice.batch_id).where(
            orm.Notice.kind == "match_notice", orm.Notice.firm_id == "firm_en")).scalar_one()
    assert own == {
        "match_id": en_match["match_id"], "assignment_id": en_match["assignment_id"],
        "team_id": en_match["team_id"], "status": "proposed", "reason": None, "timezone": "Europe/Amsterdam",
        "starts_at": "2031-01-02T10:00:00+01:00", "ends_at": "2031-01-02T11:00:00+01:00",
        # added with the kickoff planner: the batch, the invitation's sequence, the venue, a reason code
        "batch_id": batch_id, "sequence": 0, "venue": None, "reason_code": None,
        # added with agreements: a proposed time is confirmed once the firm and the institution agreed
        "firm_agreed": False, "institution_agreed": False, "confirmed": False}
    assert [k["match_id"] for k in svc.get("firm_nl", "/kickoffs").get_json()] == [nl_match["match_id"]]


def test_a_decline_gets_no_kickoff_and_a_full_day_moves_to_the_next_weekday(svc: Service) -> None:
    _, matches = _publish(svc, ["firm_nl"] * (len(SLOTS) + 1) + ["firm_en"])
    _answer(svc, matches[-1], "declined")
    for match in matches[:-1]:
        _answer(svc, match, "accepted")
    with svc.infra.session_factory() as session:
        kickoffs = {k.match_id: k for k in session.execute(sa.select(orm.Kickoff)).scalars()}
        invitations = session.execute(sa.select(orm.Notice).where(orm.Notice.kind == "kickoff_notice")).scalars()
        assert sorted(n.subject_id for n in invitations) == sorted(kickoffs)
    assert matches[-1]["match_id"] not in kickoffs
    starts = sorted(k.starts_at.replace(tzinfo=ZoneInfo("UTC")).astimezone(AMSTERDAM)  # type: ignore[union-attr]
                    for k in kickoffs.values())
    assert [s.date().isoformat() for s in starts] == ["2031-01-02"] * len(SLOTS) + ["2031-01-03"]
    assert len(set(starts)) == len(starts)  # the coordinator is never double-booked


def test_a_match_without_a_free_slot_is_reported_unplaced_with_the_reason(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("inst", "inst", "institution")
    # the two weeks from Wednesday 1 January 2031 hold nine weekdays that are not a holiday
    _, matches = _publish(svc, ["firm_nl"] * (len(SLOTS) * 9 + 1))
    for match in matches:
        _answer(svc, match, "accepted")
    kickoffs = svc.get("coord", "/kickoffs?page_size=100").get_json()
    assert len(kickoffs) == len(matches)
    unplaced = [k for k in kickoffs if k["status"] == "unplaced"]
    assert [k["match_id"] for k in unplaced] == [matches[-1]["match_id"]]
    assert unplaced[0]["starts_at"] is None and "no free weekday slot" in unplaced[0]["reason"]
    days = {k["starts_at"][:10] for k in kickoffs if k["starts_at"]}
    assert len(days) == 9 and min(days) == "2031-01-02" and max(days) == "2031-01-14"
    with svc.infra.session_factory() as session:  # no invitation for the unplaced one
        subjects = set(session.execute(sa.select(orm.Notice.subject_id)
                                       .where(orm.Notice.kind == "kickoff_notice")).scalars())
    assert matches[-1]["match_id"] not in subjects and len(subjects) == len(matches) - 1
    # an institution sees its own teams' kickoffs (issue 5), another institution none
    svc.add_key("other_inst", "other-inst", "institution")
    assert len(svc.get("inst", "/kickoffs?page_size=100").get_json()) == len(matches)
    assert svc.get("other_inst", "/kickoffs").get_json() == []


def test_a_week_calendar_asks_for_its_days_a_page_at_a_time_and_bad_ranges_are_refused(svc: Service) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    # three weekdays' worth: Thursday 2 and Friday 3 January, then Monday 6 January 2031
    _, matches = _publish(svc, ["firm_nl"] * (len(SLOTS) * 3))
    for match in matches:
        _answer(svc, match, "accepted")
    every = svc.get("coord", "/kickoffs?page_size=100").get_json()
    friday = sorted((k for k in every if k["starts_at"] and k["starts_at"][:10] == "2031-01-03"),
                    key=lambda k: k["starts_at"])
    assert len(friday) == len(SLOTS)
    resp = svc.get("coord", "/kickoffs?from=2031-01-03&until=2031-01-03&page_size=2")
    assert resp.status_code == 200
    pages = json.loads(resp.headers["X-Pagination"])
    assert pages["total"] == len(SLOTS) and pages["total_pages"] == -(-len(SLOTS) // 2)
    shown = [k for page in range(1, pages["total_pages"] + 1) for k in svc.get(
        "coord", f"/kickoffs?from=2031-01-03&until=2031-01-03&page_size=2&page={page}").get_json()]
    assert shown == friday  # the day's kickoffs, in order of their time, each once
    week = svc.get("coord", "/kickoffs?from=2030-12-30&until=2031-01-05&status=proposed&page_size=100").get_json()
    assert {k["starts_at"][:10] for k in week} == {"2031-01-02", "2031-01-03"}
    assert svc.get("coord", "/kickoffs?from=2031-01-07&status=proposed").get_json() == []
    assert svc.get("coord", "/kickoffs?status=cancelled").get_json() == []
    assert svc.get("coord", "/kickoffs/weeks").get_json() == [
        {"week": "2031-W01", "monday": "2030-12-30", "kickoffs": len(SLOTS) * 2},
        {"week": "2031-W02", "monday": "2031-01-06", "kickoffs": len(SLOTS)}]
    for query, field in [("from=2031-01-06&until=2031-01-05", "query.until"), ("from=maandag", "query.from"),
                         ("until=2031-02-30", "query.until"), ("status=planned", "query.status"),
                         ("from=2031-01-01&until=2032-01-02", "query.until")]:
        resp = svc.get("coord", f"/kickoffs?{query}")
        assert resp.status_code == 422, query
        assert_error(resp, 422, field)
