"""A moved or cancelled kickoff reaches the firm as an updated invitation through a real SMTP server
(aiosmtpd on loopback): icalendar reads back the same UID with a higher SEQUENCE, the new time in
Europe/Amsterdam, and METHOD:CANCEL for a cancellation. Notices go through the notice outbox: an SMTP
failure sends nothing and the next round sends each once."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from scheduling.adapters import orm
from scheduling.adapters.mailer import SmtpMailer
from scheduling.service_layer import services

from ..conftest import free_port
from . import test_scheduling_kickoffs as kickoff_tests
from .scheduling_names import code_of, title_of
from .test_matching_scheduling_api import Service
from .test_scheduling_kickoffs import CONTACTS, _mailer
from .test_scheduling_planning import LINKS, _answer, _publish
from .test_scheduling_responses import _Collector

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
svc, smtp = kickoff_tests.svc, kickoff_tests.smtp  # the fixtures


def _ics(message: Any) -> tuple[str, icalendar.Calendar]:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return str(part.get_param("method")), icalendar.Calendar.from_ical(part.get_payload(decode=True))


def test_a_move_and_a_cancellation_send_updated_invitations(svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    svc.add_key("coord", "coord-1", "coordinator")
    assert svc.put("firm_en", "/availability", {
        "windows": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)],
        "venue": "on_site", "address": "Dorpsstraat 1, Utrecht"}).status_code == 200
    _, [nl, en] = _publish(svc, [("firm_nl", "inst"), ("firm_en", "inst")])
    sf = svc.infra.session_factory
    assert services.send_pending(sf, _mailer(port), LINKS) == 2  # the match notices
    assert _answer(svc, nl) == 201 and _answer(svc, en) == 201
    assert services.send_pending(sf, _mailer(port), LINKS) == 2  # the first invitations
    # the Dutch firm's kickoff moves from Thursday 2 January 10:00 to Monday 6 January 14:00
    resp = svc.call("coord", "PATCH", f"/kickoffs/{nl['match_id']}", {"starts_at": "2031-01-06T14:00:00+01:00"})
    assert resp.status_code == 200, resp.get_json()
    assert svc.call("coord", "POST", f"/kickoffs/{en['match_id']}/cancellation").status_code == 200
    inbox.messages.clear()
    assert services.send_pending(sf, _mailer(port), LINKS) == 2
    assert services.send_pending(sf, _mailer(port), LINKS) == 0
    by_to = {m["To"]: m for m in inbox.messages}
    moved, cancelled = by_to[CONTACTS["firm_nl"]["email"]], by_to[CONTACTS["firm_en"]["email"]]

    assert moved["Subject"] == f'Verplaatst: kennismaking voor "{title_of(nl["assignment_id"])}"'
    text = moved.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Wanneer: maandag 6 januari 2031, van 14:00 tot 15:00 uur" in text and code_of(nl["team_id"]) in text
    method, cal = _ics(moved)
    assert method == "REQUEST" and str(cal["method"]) == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert str(event["uid"]) == f"kickoff-{nl['match_id']}@werkplaats" and event.decoded("sequence") == 1
    start = event.decoded("dtstart")
    assert start == datetime(2031, 1, 6, 14, 0, tzinfo=AMSTERDAM)
    assert event["dtstart"].params["TZID"] == "Europe/Amsterdam"
    assert isinstance(start.tzinfo, ZoneInfo) and start.tzinfo.key == "Europe/Amsterdam"
    assert (event.decoded("dtend") - start).total_seconds() == 3600
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Amsterdam"]

    assert cancelled["Subject"] == f'Cancelled: kickoff meeting for "{title_of(en["assignment_id"])}"'
    method, cal = _ics(cancelled)
    assert method == "CANCEL" and str(cal["method"]) == "CANCEL"
    [event] = cal.walk("VEVENT")
    assert str(event["uid"]) == f"kickoff-{en['match_id']}@werkplaats" and event.decoded("sequence") == 1
    assert str(event["status"]) == "CANCELLED"
    # the cancelled time: the coordinator's second slot on 2 January (the Dutch firm had the first)
    assert event.decoded("dtstart") == datetime(2031, 1, 2, 11, 30, tzinfo=AMSTERDAM)
    assert str(event["location"]) == "Dorpsstraat 1, Utrecht"


def test_a_failed_hand_off_sends_nothing_and_the_retry_sends_each_update_once(
        svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    svc.add_key("coord", "coord-1", "coordinator")
    _, [m] = _publish(svc, [("firm_nl", "inst")])
    sf = svc.infra.session_factory
    assert _answer(svc, m) == 201
    for starts_at in ("2031-01-06T10:00:00+01:00", "2031-01-07T10:00:00+01:00"):  # two moves before sending
        assert svc.call("coord", "PATCH", f"/kickoffs/{m['match_id']}", {"starts_at": starts_at}).status_code == 200
    down = SmtpMailer("127.0.0.1", free_port(), "werkplaats@werkplaats.test", timeout=2)
    assert services.send_pending(sf, down, LINKS) == 0 and inbox.messages == []
    with sf() as session:
        notices = session.execute(sa.select(orm.Notice).where(orm.Notice.kind != "match_notice")).scalars().all()
        assert {(n.status, n.attempts) for n in notices} == {("pending", 1)} and len(notices) == 3
        session.execute(sa.update(orm.Notice).values(next_attempt_at=None))
        session.commit()
    assert services.send_pending(sf, _mailer(port), LINKS) == 4  # the match notice and three invitations
    assert services.send_pending(sf, _mailer(port), LINKS) == 0
    invitations = [_ics(msg)[1].walk("VEVENT")[0] for msg in inbox.messages if list(msg.iter_attachments())]
    assert sorted((e.decoded("sequence"), e.decoded("dtstart").day) for e in invitations) == [(0, 2), (1, 6), (2, 7)]
    assert len({msg["Message-ID"] for msg in inbox.messages}) == len(inbox.messages) == 4
