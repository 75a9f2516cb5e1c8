"""A rejected workshop plan's broken rules, as the coordinator reads them (scheduling gives each as a rule code with
its facts): in the page's language, rooms, facilitators, themes and firms by their names, never an id; what is no
longer known described in words; every rule the validator knows has a sentence."""

from __future__ import annotations

import inspect
import re

import pytest
from flask import Flask, g
from portal.entrypoints.plan_violations import RULES, violation_sentences
from scheduling.domain import plan_checks

ROOM, FACILITATOR, FIRM = "2b1f0c1e-room", "7d2e-facilitator", "9a8b-firm"
NAMES = {"rooms": {ROOM: "Zaal De Linde"}, "facilitators": {FACILITATOR: "Anna de Vries"},
         "themes": {"ai": "AI in uw bedrijf", "webshop": "Webwinkel"}, "firms": {FIRM: "Bakkerij De Zon"}}
SESSION = {"theme": "ai", "venue": ROOM, "day": "2031-03-03", "day_part": "morning"}
DETAILS = [
    {"rule": "seat_interest_unknown", "facts": {**SESSION, "firm_id": FIRM}},
    {"rule": "room_twice", "facts": {"venue": ROOM, "day": "2031-03-03", "day_part": "morning", "count": 2}},
    {"rule": "facilitator_unavailable", "facts": {**SESSION, "facilitator_id": FACILITATOR}},
    {"rule": "seat_other_theme", "facts": {**SESSION, "venue": "online", "firm_id": "gone-firm",
                                           "interest_theme": "webshop"}},
    {"rule": "session_over_capacity", "facts": {**SESSION, "venue": "gone-room", "count": 31, "limit": 30}},
]


@pytest.mark.parametrize(("language", "expected"), [
    ("nl", ["Bakkerij De Zon heeft een plaats in AI in uw bedrijf in Zaal De Linde op 3 maart 2031, ochtend, maar "
            "de aanmelding bestaat niet meer.",
            "In Zaal De Linde zijn 2 sessies op 3 maart 2031, ochtend.",
            "De sessie AI in uw bedrijf in Zaal De Linde op 3 maart 2031, ochtend: Anna de Vries is dan niet "
            "beschikbaar.",
            "Een bedrijf dat niet meer bekend is heeft een plaats in AI in uw bedrijf online op 3 maart 2031, "
            "ochtend, maar meldde zich aan voor Webwinkel.",
            "De sessie AI in uw bedrijf in een zaal die niet meer in het programma staat op 3 maart 2031, ochtend "
            "heeft 31 deelnemers, meer dan de 30 plaatsen."]),
    ("en", ["Bakkerij De Zon has a seat in AI in uw bedrijf in Zaal De Linde on 3 March 2031, morning, but its "
            "interest is no longer registered.",
            "Zaal De Linde holds 2 sessions on 3 March 2031, morning.",
            "The session AI in uw bedrijf in Zaal De Linde on 3 March 2031, morning: Anna de Vries is not available "
            "then.",
            "A firm that is no longer known has a seat in AI in uw bedrijf online on 3 March 2031, morning, but "
            "registered for Webwinkel.",
            "The session AI in uw bedrijf in a room no longer in the programme on 3 March 2031, morning seats 31, "
            "more than its 30 places."]),
])
def test_broken_rules_read_in_the_pages_language_with_names(language: str, expected: list[str]) -> None:
    with Flask(__name__).test_request_context():
        g.language = language
        found = violation_sentences(DETAILS, **NAMES)
    assert found == expected
    for text in found:
        assert not any(i in text for i in (ROOM, FACILITATOR, FIRM, "gone-room", "gone-firm")), text


def test_every_rule_the_validator_gives_has_a_sentence() -> None:
    given = set(re.findall(r'add\("([a-z_]+)"', inspect.getsource(plan_checks.workshop_plan_violations)))
    assert given and given == set(RULES)
