"""The portal's languages: every text of the code and templates has its Dutch translation in the one Dutch
catalogue (and the catalogue holds nothing stale), placeholders survive translation, periods and dates read in
the reader's conventions."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask import Flask, g
from portal.domain.periods import period_label
from portal.entrypoints import i18n, labels

PORTAL = Path(__file__).resolve().parents[2] / "services" / "portal"
METHODS = [("portal/**.py", "python"), ("portal/templates/**.html", "jinja2")]
OPTIONS = {"portal/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _texts_in_the_code() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PORTAL), METHODS, keywords={"_": None, "_l": None, "gettext": None, "ngettext": (1, 2)},
            options_map=OPTIONS):
        found.add(message[0] if isinstance(message, tuple) else message)
    for table in (labels.STATUSES, labels.THEMES, labels.KINDS, labels.MODES, labels.SIZES, labels.VENUES,
                  labels.REGIONS, labels.DECISIONS, labels.DAY_PARTS, labels.STAGES):
        found.update(table.values())
    found.update(labels.WEEKDAYS)
    return found


def _catalogue() -> dict[str, object]:
    with (PORTAL / "portal" / "translations" / "nl.po").open("rb") as fh:
        parsed = read_po(fh)
    return {str(m.id[0] if isinstance(m.id, tuple | list) else m.id): m.string for m in parsed if m.id}


def test_every_text_of_the_portal_has_its_dutch_translation_and_nothing_is_stale() -> None:
    code, dutch = _texts_in_the_code(), _catalogue()
    assert len(code) > 200
    missing = sorted(t for t in code if not dutch.get(t))
    assert not missing, f"texts without a Dutch translation in nl.po: {missing}"
    stale = sorted(set(dutch) - code)
    assert not stale, f"nl.po holds texts the portal no longer uses: {stale}"


def test_placeholders_are_kept_in_every_translation() -> None:
    for english, dutch in _catalogue().items():
        forms = dutch if isinstance(dutch, tuple | list) else [dutch]
        for form in forms:
            assert set(re.findall(r"%\((\w+)\)", str(form))) == set(re.findall(r"%\((\w+)\)", english)), english


@pytest.mark.parametrize(("code", "language", "expected"), [
    ("2027-S1", "nl", "semester 1, 2027"), ("2027-S2", "en", "semester 2, 2027"),
    ("2028-Q3", "nl", "kwartaal 3, 2028"), ("2028-Q3", "en", "quarter 3, 2028"),
    ("2027-B4", "nl", "blok 4, 2027"), ("2027-P10", "en", "period 10, 2027"),
    ("P1", "nl", "P1"), ("voorjaar 2027", "en", "voorjaar 2027"), ("", "nl", ""),
])
def test_a_period_reads_as_words_and_an_unknown_code_as_it_is(code: str, language: str, expected: str) -> None:
    assert period_label(code, language) == expected


def test_dates_times_and_numbers_follow_the_readers_language() -> None:
    app = Flask(__name__)
    with app.test_request_context():
        g.language = "nl"
        assert i18n.nice_date(date(2026, 12, 18)) == "18 december 2026"
        assert i18n.nice_datetime(datetime(2027, 2, 3, 9, 30, tzinfo=UTC)) == "woensdag 3 februari 2027, 10:30"
        assert i18n.nice_number(12500) == "12.500"
        assert i18n.gettext("Sign in") == "Inloggen"
        assert i18n.ngettext("%(num)d team", "%(num)d teams", 3) == "3 teams"
        g.language = "en"
        assert i18n.nice_date("2026-12-18") == "18 December 2026"
        assert i18n.nice_number(12500) == "12,500"
        assert i18n.gettext("Sign in") == "Sign in"
        assert i18n.ngettext("%(num)d team", "%(num)d teams", 1) == "1 team"
