"""The rules a rejected workshop plan breaks, as a coordinator reads them: in the page's language, each room,
facilitator, theme and firm by its name, a day and part of the day as dates are written elsewhere. Scheduling's
validator gives each broken rule as a code with its facts (ids, counts; the plan job's ``verdict.details``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .forms import _l
from .i18n import gettext as _
from .i18n import nice_date
from .labels import day_part_label, municipality_label

ONLINE = "online"

RULES = {
    "session_facilitators": _l("The session %(session)s has %(count)s facilitators; one leads a session."),
    "facilitator_unknown": _l("The session %(session)s: %(facilitator)s is not one of the programme's "
                              "facilitators."),
    "facilitator_theme": _l("The session %(session)s: %(facilitator)s does not give this theme."),
    "facilitator_unavailable": _l("The session %(session)s: %(facilitator)s is not available then."),
    "slot_not_candidate": _l("The session %(session)s is not in one of the programme's time slots."),
    "theme_not_wanted": _l("The session %(session)s: no session of this theme is wanted."),
    "no_online": _l("The session %(session)s is online, but the programme has no online sessions."),
    "room_unknown": _l("The session %(session)s is not in a room of the programme."),
    "room_unavailable": _l("The session %(session)s: the room is not available then."),
    "room_twice": _l("%(room)s holds %(count)s sessions on %(when)s."),
    "facilitator_twice": _l("%(facilitator)s leads %(count)s sessions on %(when)s."),
    "location_cap": _l("%(place)s has %(count)s sessions on %(day)s, more than the %(limit)s allowed a day."),
    "theme_over": _l("%(theme)s has %(count)s sessions, more than the %(limit)s wanted."),
    "seat_session_not_running": _l("%(firm)s has a seat in %(session)s, a session that does not run."),
    "seat_interest_unknown": _l("%(firm)s has a seat in %(session)s, but its interest is no longer registered."),
    "seat_other_theme": _l("%(firm)s has a seat in %(session)s, but registered for %(other_theme)s."),
    "seat_firm_day": _l("%(firm)s has a seat in %(session)s, on a day it cannot come."),
    "seat_firm_online": _l("%(firm)s has a seat in %(session)s, online, which it does not take."),
    "seat_firm_location": _l("%(firm)s has a seat in %(session)s, not at one of its locations."),
    "session_over_capacity": _l("The session %(session)s seats %(count)s, more than its %(limit)s places."),
    "session_under_minimum": _l("The session %(session)s runs with %(count)s participants, fewer than the "
                                "minimum of %(limit)s."),
    "interest_seats": _l("%(firm)s has %(count)s seats for one interest in %(theme)s."),
    "firm_theme_seats": _l("%(firm)s has %(count)s seats in %(theme)s."),
    "firm_slot_seats": _l("%(firm)s is seated in %(count)s sessions on %(when)s."),
}


def violation_sentences(details: list[dict[str, Any]], *, rooms: Mapping[str, str], facilitators: Mapping[str, str],
                        themes: Mapping[str, str], firms: Mapping[str, str]) -> list[str]:
    """Each broken rule in a sentence of the page's language, naming things by the names given (id to name);
    one no longer known is described, never shown by its id."""

    def room(venue: str) -> str:
        return _("online") if venue == ONLINE else rooms.get(venue) or _("a room no longer in the programme")

    def when(facts: Mapping[str, Any]) -> str:
        return _("%(day)s, %(part)s", day=nice_date(facts.get("day")), part=day_part_label(facts.get("day_part")))

    def theme(code: Any) -> str:
        return themes.get(str(code), str(code))

    out = []
    for detail in details:
        rule, facts = detail.get("rule"), detail.get("facts") or {}
        template = RULES.get(str(rule))
        if template is None:
            continue
        values = {
            "count": facts.get("count", ""), "limit": facts.get("limit", ""), "when": when(facts),
            "day": nice_date(facts.get("day")), "theme": theme(facts.get("theme", "")),
            "other_theme": theme(facts.get("interest_theme", "")), "room": room(str(facts.get("venue", ""))),
            "place": municipality_label(facts.get("municipality")),
            "facilitator": facilitators.get(str(facts.get("facilitator_id")))
            or _("a facilitator no longer in the programme"),
            "firm": firms.get(str(facts.get("firm_id"))) or _("A firm that is no longer known"),
            "session": _("%(theme)s online on %(when)s", theme=theme(facts.get("theme", "")), when=when(facts))
            if facts.get("venue") == ONLINE else
            _("%(theme)s in %(place)s on %(when)s", theme=theme(facts.get("theme", "")),
              place=room(str(facts.get("venue", ""))), when=when(facts)),
        }
        out.append(str(template) % values)
    return out
