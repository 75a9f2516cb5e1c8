"""A kickoff is confirmed once both the firm and the team's institution agreed to its proposed time: the firm
then receives the invitation again through a real SMTP server (aiosmtpd on loopback), read back with
icalendar: the same UID, a higher SEQUENCE and STATUS:CONFIRMED. A move makes it tentative again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from scheduling.adapters import orm
from scheduling.service_layer import services

from . import test_scheduling_kickoffs as kickoff_tests
from .scheduling_names import code_of, title_of
from .test_matching_scheduling_api import Service, assert_error
from .test_scheduling_kickoffs import CONTACTS, _mailer
from .test_scheduling_planning import LINKS, _answer, _publish
from .test_scheduling_responses import _Collector

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
svc, smtp = kickoff_tests.svc, kickoff_tests.smtp  # the fixtures


def _event(message: Any) -> tuple[str, icalendar.cal.Component]:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
    [event] = cal.walk("VEVENT")
    return str(cal["method"]), event


def _agree(svc: Service, who: str, match_id: str, body: Any) -> Any:
    return svc.call(who, "POST", f"/kickoffs/{match_id}/agreement", body)


def test_both_sides_agreeing_confirms_the_kickoff_and_a_move_makes_it_tentative_again(
        svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("inst", "inst", "institution")
    _, [m] = _publish(svc, [("firm_nl", "inst")])
    sf = svc.infra.session_factory
    assert services.send_pending(sf, _mailer(port), LINKS) == 1  # the match notice
    assert _answer(svc, m) == 201
    assert services.send_pending(sf, _mailer(port), LINKS) == 1  # the proposed time
    method, first = _event(inbox.messages[-1])
    assert method == "REQUEST" and str(first["status"]) == "TENTATIVE" and first.decoded("sequence") == 0
    uid = str(first["uid"])
    path = f"/kickoffs/{m['match_id']}"
    seen = svc.get("firm_nl", path).get_json()
    assert (seen["sequence"], seen["firm_agreed"], seen["institution_agreed"], seen["confirmed"]) == (
        0, False, False, False)

    # the firm agrees: one side is not enough
    agreed = _agree(svc, "firm_nl", m["match_id"], {"sequence": 0})
    assert agreed.status_code == 200, agreed.get_json()
    assert (agreed.get_json()["firm_agreed"], agreed.get_json()["confirmed"]) == (True, False)
    assert services.send_pending(sf, _mailer(port), LINKS) == 0
    # the institution agrees too: confirmed, and the firm gets the invitation again
    agreed = _agree(svc, "inst", m["match_id"], {"sequence": 0})
    assert agreed.status_code == 200, agreed.get_json()
    body = agreed.get_json()
    assert (body["firm_agreed"], body["institution_agreed"], body["confirmed"], body["sequence"]) == (
        True, True, True, 1)
    inbox.messages.clear()
    assert services.send_pending(sf, _mailer(port), LINKS) == 1
    [confirmed] = inbox.messages
    assert confirmed["To"] == CONTACTS["firm_nl"]["email"]
    assert confirmed["Subject"] == f'Bevestigd: kennismaking voor "{title_of(m["assignment_id"])}"'
    text = confirmed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "De afspraak staat vast" in text and code_of(m["team_id"]) in text
    assert "Wanneer: donderdag 2 januari 2031, van 10:00 tot 11:00 uur" in text
    method, event = _event(confirmed)
    assert method == "REQUEST" and str(event["uid"]) == uid and event.decoded("sequence") == 1
    assert str(event["status"]) == "CONFIRMED"
    assert event.decoded("dtstart") == datetime(2031, 1, 2, 10, 0, tzinfo=AMSTERDAM)
    feed = icalendar.Calendar.from_ical(svc.get("inst", "/calendar.ics").get_data())
    assert [str(e["status"]) for e in feed.walk("VEVENT")] == ["CONFIRMED"]
    with sf() as session:  # a webhook hears it too
        notice = session.execute(sa.select(orm.Notice).where(orm.Notice.kind == "kickoff_confirmation")).scalar_one()
        hook = json.loads(services.webhook_body(session, notice, LINKS))
    assert (hook["kickoff"]["status"], hook["kickoff"]["sequence"], hook["kickoff"]["uid"]) == ("CONFIRMED", 1, uid)
    assert hook["matches"][0]["title"] == title_of(m["assignment_id"])

    # agreeing again changes nothing and sends nothing
    again = _agree(svc, "firm_nl", m["match_id"], {"sequence": 0})
    assert again.status_code == 200 and again.get_json()["sequence"] == 1
    assert services.send_pending(sf, _mailer(port), LINKS) == 0

    # the coordinator moves it: tentative again, and an agreement to the old time is refused
    moved = svc.call("coord", "PATCH", path, {"starts_at": "2031-01-06T14:00:00+01:00"})
    assert moved.status_code == 200, moved.get_json()
    assert (moved.get_json()["confirmed"], moved.get_json()["firm_agreed"], moved.get_json()["sequence"]) == (
        False, False, 2)
    inbox.messages.clear()
    assert services.send_pending(sf, _mailer(port), LINKS) == 1
    _, event = _event(inbox.messages[0])
    assert str(event["uid"]) == uid and event.decoded("sequence") == 2 and str(event["status"]) == "TENTATIVE"
    stale = assert_error(_agree(svc, "inst", m["match_id"], {"sequence": 1}), 409, "sequence")
    assert "sequence is now 2" in stale["errors"][0]["reason"]
    feed = icalendar.Calendar.from_ical(svc.get("inst", "/calendar.ics").get_data())
    assert [str(e["status"]) for e in feed.walk("VEVENT")] == ["TENTATIVE"]


def test_agreement_errors_name_the_status_field_and_reason(svc: Service, smtp: tuple[int, _Collector]) -> None:
    svc.add_key("coord", "coord-1", "coordinator")
    svc.add_key("inst", "inst", "institution")
    svc.add_key("other-inst", "other-inst", "institution")
    _, [m] = _publish(svc, [("firm_nl", "inst")])
    assert _answer(svc, m) == 201
    match_id = m["match_id"]
    assert_error(_agree(svc, "firm_nl", match_id, {}), 422, "sequence")
    assert_error(_agree(svc, "firm_nl", match_id, {"sequence": -1}), 422, "sequence")
    assert_error(_agree(svc, "firm_nl", match_id, {"sequence": 0, "when": "now"}), 422, "when")
    assert_error(_agree(svc, "firm_en", match_id, {"sequence": 0}), 404)  # another firm's kickoff
    assert_error(_agree(svc, "other-inst", match_id, {"sequence": 0}), 404)  # another institution's team
    assert_error(_agree(svc, "coord", match_id, {"sequence": 0}), 403)  # the coordinator proposes, not agrees
    assert svc.call("coord", "POST", f"/kickoffs/{match_id}/cancellation").status_code == 200
    refused = assert_error(_agree(svc, "firm_nl", match_id, {"sequence": 1}), 422, "match_id")
    assert "cancelled kickoff" in refused["message"]
