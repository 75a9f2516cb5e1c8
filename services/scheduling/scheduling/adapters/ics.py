"""iCalendar (.ics) invitations for kickoffs and workshop seats, in Europe/Amsterdam with the VTIMEZONE
included. A kickoff or seat keeps its UID for life; a change is sent with a higher SEQUENCE."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import icalendar

PRODID = "-//Werkplaats//Scheduling//NL"


def invitation(*, uid: str, sequence: int, starts_at: datetime, ends_at: datetime, summary: str,
                       description: str, organizer: str, attendee: str, stamp: datetime, method: str = "REQUEST",
                       location: str | None = None, status: str = "CONFIRMED") -> bytes:
    """An invitation (METHOD:REQUEST) or, for a cancelled kickoff or seat, its cancellation (METHOD:CANCEL).
    ``status``: TENTATIVE for a time only proposed (a kickoff), CONFIRMED for one that is agreed (a seat)."""
    if status not in ("TENTATIVE", "CONFIRMED"):
        raise ValueError("status must be TENTATIVE or CONFIRMED")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("invitation times must be timezone-aware")
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError("method must be REQUEST or CANCEL")
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    event = _event(uid=uid, sequence=sequence, starts_at=starts_at, ends_at=ends_at, summary=summary,
                   description=description, stamp=stamp, cancelled=method == "CANCEL", location=location,
                   status=status)
    event.add("organizer", f"mailto:{organizer}")
    event.add("attendee", f"mailto:{attendee}", parameters={"ROLE": "REQ-PARTICIPANT", "RSVP": "TRUE"})
    cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


kickoff_invitation = invitation


def _event(*, uid: str, sequence: int, starts_at: datetime, ends_at: datetime, summary: str, description: str,
           stamp: datetime, cancelled: bool, location: str | None, status: str) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", summary)
    event.add("description", description)
    if location:
        event.add("location", location)
    event.add("status", "CANCELLED" if cancelled else status)
    return event


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    description: str
    cancelled: bool
    location: str | None
    tentative: bool = False  # a time proposed, not yet agreed


def feed(name: str, events: Iterable[FeedEvent], stamp: datetime) -> bytes:
    """A subscribable calendar (no METHOD): one VEVENT per kickoff, cancelled ones marked so."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Europe/Amsterdam")
    for e in events:
        cal.add_component(_event(uid=e.uid, sequence=e.sequence, starts_at=e.starts_at, ends_at=e.ends_at,
                                 summary=e.summary, description=e.description, stamp=stamp, cancelled=e.cancelled,
                                 location=e.location, status="TENTATIVE" if e.tentative else "CONFIRMED"))
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
