"""Workshop notices go out through scheduling's one notice sender, in the firm's language, to a real SMTP
server (aiosmtpd on loopback): a seat comes with an .ics invitation (one UID per seat) that icalendar reads
back at the session's time in Europe/Amsterdam; a cancelled seat with METHOD:CANCEL and a higher SEQUENCE;
a firm on the waitlist is told where it stands, and a promotion brings its own invitation."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.domain.workshops import DAY_PART_HOURS, THEMES
from scheduling.service_layer import services
from scheduling.service_layer import workshops as workshop_services

from tests.conftest import free_port
from tests.integration.test_matching_scheduling_api import SECRET_KEY, Service
from tests.integration.test_scheduling_responses import _Collector
from tests.integration.test_scheduling_workshops import (  # noqa: F401
    CONTACTS,
    ROOM,
    planned,
    post,
    registrations,
    svc,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Collector]]:
    collector, port = _Collector(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, collector
    finally:
        controller.stop()


def send(service: Service, port: int) -> int:
    return services.send_pending(service.infra.session_factory, SmtpMailer("127.0.0.1", port, "w@w.test"),
                                 ResponseLinks(SECRET_KEY, "http://x"))


def calendars(message: EmailMessage) -> list[icalendar.Calendar]:
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert all(p.get_filename() == "workshop.ics" for p in parts)
    return [icalendar.Calendar.from_ical(bytes(p.get_payload(decode=True))) for p in parts]


def event_of(message: EmailMessage, method: str) -> Any:
    [cal] = calendars(message)
    assert str(cal["method"]) == method
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Amsterdam"]
    [event] = cal.walk("VEVENT")
    return event


def expected_start(registration: dict[str, Any]) -> datetime:
    s = registration["session"]
    start, _ = DAY_PART_HOURS[s["day_part"]]
    return datetime.fromisoformat(f"{s['date']}T{start.isoformat()}").replace(tzinfo=AMSTERDAM)


def test_seats_cancellations_waitlist_and_promotions_reach_the_firm_with_invitations(
        svc: Service, smtp: tuple[int, _Collector]) -> None:  # noqa: F811
    port, inbox = smtp
    planned(svc)
    [seat] = registrations(svc, "firm_1")
    # firm_1 (Dutch) has its seat, firm_5 (English) waits first in line for both sessions
    assert send(svc, port) == 2  # the other firms have no contact
    by_to = {m["To"]: m for m in inbox.messages}
    nl, en = by_to[CONTACTS["firm_1"]["email"]], by_to[CONTACTS["firm_5"]["email"]]
    assert nl["Subject"] == "Uw plaats in de workshop Kunstmatige intelligentie (AI)" and nl["Content-Language"] == "nl"
    event = event_of(nl, "REQUEST")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert start == expected_start(seat) and isinstance(start.tzinfo, ZoneInfo)
    assert start.tzinfo.key == "Europe/Amsterdam" and event["dtstart"].params["TZID"] == "Europe/Amsterdam"
    assert start.utcoffset().total_seconds() == 3600 and (end - start).total_seconds() == 2.5 * 3600  # CET, 2.5 h
    assert str(event["uid"]) == f"workshop-seat-{seat['id']}@werkplaats" and event.decoded("sequence") == 0
    assert str(event["attendee"]) == f"mailto:{CONTACTS['firm_1']['email']}"
    assert str(event["location"]) == ROOM["name"] and "Kunstmatige intelligentie" in str(
        event["summary"])
    assert en["Subject"] == "Waiting list: workshop Artificial intelligence (AI)" and calendars(en) == []
    en_text = en.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert en_text.count("number 1 on the waiting list") == 2 and "Monday 3 March 2031" in en_text

    inbox.messages.clear()
    done = post(svc, "firm_1", f"/workshop-registrations/{seat['id']}/cancel")
    assert send(svc, port) == 2
    by_to = {m["To"]: m for m in inbox.messages}
    cancelled = event_of(by_to[CONTACTS["firm_1"]["email"]], "CANCEL")
    assert by_to[CONTACTS["firm_1"]["email"]]["Subject"] == (
        "Geannuleerd: uw plaats in de workshop Kunstmatige intelligentie (AI)")
    assert str(cancelled["uid"]) == str(event["uid"]) and cancelled.decoded("sequence") == 1
    assert str(cancelled["status"]) == "CANCELLED" and cancelled.decoded("dtstart") == start
    promotion = by_to[CONTACTS["firm_5"]["email"]]
    assert promotion["Subject"] == "A seat has become free: workshop Artificial intelligence (AI)"
    got = event_of(promotion, "REQUEST")
    [promoted] = [r for r in registrations(svc, "firm_5") if r["id"] == done["promoted_registration_id"]]
    assert str(got["uid"]) == f"workshop-seat-{promoted['id']}@werkplaats" and got.decoded("sequence") == 0
    assert got.decoded("dtstart") == expected_start(promoted) == start  # the freed seat's session
    assert {n["status"] for n in svc.get("firm_2", "/notices").get_json()} == {"no_contact"}


def test_a_workshop_webhook_body_names_the_theme_in_the_firms_language(svc: Service) -> None:  # noqa: F811
    planned(svc)
    with svc.infra.session_factory() as session:
        notices = session.execute(sa.select(orm.Notice).where(
            orm.Notice.kind.in_(workshop_services.NOTICE_KINDS))).scalars().all()
        bodies = [json.loads(services.webhook_body(session, n, ResponseLinks(SECRET_KEY, "http://x")))
                  for n in notices]
    assert {b["language"] for b in bodies} == {"nl", "en"}  # firm_1 reads Dutch, firm_5 English
    for body in bodies:
        assert body["version"] == 2
        assert body["workshop"]["theme_label"] == THEMES[body["workshop"]["theme"]][body["language"]]
