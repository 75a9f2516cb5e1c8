"""iCalendar (.ics) invitations for kickoffs, in Europe/Amsterdam with the VTIMEZONE included.
A kickoff keeps its UID for life; a change is sent with a higher SEQUENCE."""

from __future__ import annotations

from datetime import datetime

import icalendar

PRODID = "-//Werkplaats//Scheduling//NL"


def kickoff_invitation(*, uid: str, sequence: int, starts_at: datetime, ends_at: datetime, summary: str,
                       description: str, organizer: str, attendee: str, stamp: datetime) -> bytes:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("kickoff times must be timezone-aware")
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", summary)
    event.add("description", description)
    event.add("organizer", f"mailto:{organizer}")
    event.add("attendee", f"mailto:{attendee}", parameters={"ROLE": "REQ-PARTICIPANT", "RSVP": "TRUE"})
    event.add("status", "CONFIRMED")
    cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
