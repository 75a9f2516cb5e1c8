"""The coordinator console's own logic: the working area drawn from the municipalities' centres (north up, east
right, inside the drawing), dates typed for a workshop programme, the services' reasons in the reader's words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask, g
from portal.entrypoints import coordinator_console as console
from portal.entrypoints.i18n import ngettext
from wtforms.validators import ValidationError

IJSSEL = ["GM0148", "GM0160", "GM0166", "GM0180", "GM0193", "GM1896"]  # Dalfsen ... Zwartewaterland


@pytest.fixture
def nl() -> Iterator[Any]:
    app = Flask(__name__)
    with app.test_request_context():
        g.language = "nl"
        yield g


def test_the_working_area_is_drawn_with_north_up_and_east_right_inside_the_drawing() -> None:
    points = {p.name: p for p in console.area_map([*IJSSEL, "GM9999"])}  # an unknown code is left out
    assert set(points) == {"Dalfsen", "Hardenberg", "Kampen", "Staphorst", "Zwolle", "Zwartewaterland"}
    assert points["Kampen"].x < points["Zwolle"].x < points["Hardenberg"].x  # west to east
    assert points["Staphorst"].y < points["Zwolle"].y  # Staphorst lies north of Zwolle
    for p in points.values():
        assert console.MAP_MARGIN - 1 <= p.x <= console.MAP_WIDTH - console.MAP_MARGIN + 1
        assert console.MAP_MARGIN - 1 <= p.y <= console.MAP_HEIGHT - console.MAP_MARGIN + 1
        # names on the east side are written leftwards from their dot, so they stay inside the drawing
        assert (p.anchor == "end") == (p.x > console.MAP_WIDTH / 2)
    assert min(p.y for p in points.values()) == console.MAP_MARGIN  # the drawing is as high as the area needs
    assert console.map_height(list(points.values())) <= console.MAP_HEIGHT
    assert console.area_map([]) == [] and console.area_map(["GM9999"]) == []
    single = console.area_map(["GM0193"])
    assert len(single) == 1 and single[0].x == console.MAP_WIDTH / 2


def test_programme_dates_are_read_in_dutch_or_iso_form_once_each_in_order(nl: object) -> None:
    assert console._parse_days("16-3-2027, 2027-03-09\n9/3/2027 16-03-2027") == [date(2027, 3, 9),
                                                                                 date(2027, 3, 16)]
    assert console._parse_days(" , ") == []
    with pytest.raises(ValidationError, match="31-2-2027 is geen datum"):
        console._parse_days("9-3-2027, 31-2-2027")
    with pytest.raises(ValidationError, match=r"^9 is geen datum"):  # "9 maart": the first word that is no date
        console._parse_days("9 maart")


def test_a_services_reason_reads_in_the_readers_language_and_an_unknown_one_as_written(nl: object) -> None:
    assert console.reason_words("not a weekday") == "het is geen werkdag"
    assert console.reason_words("no free weekday slot: the firm is ...", "no_common_slot").startswith(
        "het bedrijf kan op geen enkel moment")
    assert console.reason_words("something new") == "something new"
    assert console.reason_words(None) == ""
    g.language = "en"  # type: ignore[attr-defined]
    assert console.reason_words("not a weekday") == "it is not a weekday"


def test_a_refused_move_of_an_entrepreneur_or_a_session_reads_in_words(nl: object) -> None:
    assert console.reason_words("the session is full: 3 of 3 seats taken") == "de sessie is vol"
    assert console.reason_words("the entrepreneur cannot make this session's day or place") == (
        "de ondernemer kan niet op die dag of naar die plaats komen")
    assert console.reason_words("the move breaks a planning rule: facilitator F-01 is booked twice").startswith(
        "de verplaatsing breekt een planningsregel")
    g.language = "en"  # type: ignore[attr-defined]
    assert console.reason_words("the session is full: 3 of 3 seats taken") == "the session is full"


def test_a_round_that_cannot_be_planned_yet_and_a_seat_at_the_same_time_read_in_words(nl: object) -> None:
    assert console.reason_words("no match of this batch has been accepted yet (3 published, 1 declined): a kickoff "
                                "is planned once a firm accepts its match") == (
        "nog geen koppeling van deze ronde is geaccepteerd (3 gepubliceerd, 1 afgewezen): een kennismaking wordt "
        "gepland zodra een bedrijf zijn koppeling accepteert")
    assert console.reason_words("no kickoff of this batch is open to plan: all 2 are cancelled") == (
        "geen kennismaking van deze ronde staat nog open om te plannen: alle 2 zijn geannuleerd")
    assert console.reason_words("the entrepreneur has a seat in another workshop at this session's time (same day "
                                "and day part)") == "de ondernemer heeft op die tijd een plaats in een andere workshop"
    g.language = "en"  # type: ignore[attr-defined]
    assert console.reason_words("no kickoff of this batch is open to plan: all 2 are cancelled") == (
        "no kickoff of this round is open to plan: all 2 are cancelled")


def test_counts_read_in_the_singular_and_the_plural_in_both_languages(nl: object) -> None:
    assert ngettext("%(num)d session", "%(num)d sessions", 1) == "1 sessie"
    assert ngettext("%(num)d session", "%(num)d sessions", 2) == "2 sessies"
    assert ngettext("%(num)d entrepreneur seated", "%(num)d entrepreneurs seated", 1) == "1 ondernemer geplaatst"
    assert ngettext("%(num)d kickoff planned", "%(num)d kickoffs planned", 0) == "0 kennismakingen gepland"
    g.language = "en"  # type: ignore[attr-defined]
    assert ngettext("%(num)d session", "%(num)d sessions", 1) == "1 session"
