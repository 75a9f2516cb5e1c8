"""How scheduling's texts name things: one date format per language, periods as people say them, and the
names of assignments, teams and coordinators (from what intake announced), never an id."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from babel.dates import format_date

LANGUAGES = ("nl", "en")
DATE_PATTERN = "EEEE d MMMM y"  # nl: maandag 14 december 2026; en: Monday 14 December 2026
_SEMESTER = re.compile(r"^(\d{4})-S([1-4])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")

# what a text says when intake never announced the name (a batch announced before batch.announced v2)
UNKNOWN = {
    "nl": {"title": "uw opdracht", "firm_name": "uw bedrijf", "team": "een studententeam",
           "coordinator": "de coördinator van de werkplaats"},
    "en": {"title": "your assignment", "firm_name": "your firm", "team": "a student team",
           "coordinator": "the workspace's coordinator"},
}
LEVELS = {"nl": {"MBO": "mbo", "HBO": "hbo", "WO": "wo"}, "en": {"MBO": "MBO", "HBO": "HBO", "WO": "WO"}}


def lang_of(language: str | None) -> str:
    return language if language in LANGUAGES else "nl"


def long_date(value: date | datetime, language: str) -> str:
    """The one way a date is written: "maandag 14 december 2026" / "Monday 14 December 2026"."""
    day = value.date() if isinstance(value, datetime) else value
    return str(format_date(day, DATE_PATTERN, locale=lang_of(language)))


def clock(value: datetime) -> str:
    return value.strftime("%H:%M")


def period_label(period: str | dict[str, Any] | None, language: str) -> str:
    """A period as people say it: "semester 1 2027" (nl) / "semester 1, 2027" (en); another code with its
    dates when known."""
    lang = lang_of(language)
    facts = period if isinstance(period, dict) else {"code": period or ""}
    code = str(facts.get("code") or "")
    for pattern, word in ((_SEMESTER, {"nl": "semester", "en": "semester"}),
                          (_QUARTER, {"nl": "kwartaal", "en": "quarter"})):
        found = pattern.match(code)
        if found:
            year, number = found.groups()
            return f"{word[lang]} {number} {year}" if lang == "nl" else f"{word[lang]} {number}, {year}"
    starts, ends = facts.get("starts_on"), facts.get("ends_on")
    if starts and ends:
        span = (f"{long_date(date.fromisoformat(starts), lang)} tot en met {long_date(date.fromisoformat(ends), lang)}"
                if lang == "nl" else
                f"{long_date(date.fromisoformat(starts), lang)} to {long_date(date.fromisoformat(ends), lang)}")
        return f"{code} ({span})" if code else span
    return code


def skills_label(skills: list[str], language: str) -> str:
    if not skills:
        return ""
    if len(skills) == 1:
        return skills[0]
    joiner = " en " if lang_of(language) == "nl" else " and "
    return ", ".join(skills[:-1]) + joiner + skills[-1]


def describe_match(facts: dict[str, Any] | None, assignment_id: str, team_id: str, language: str) -> dict[str, Any]:
    """The names of one match's assignment and team (fallback words when intake never announced them)."""
    lang = lang_of(language)
    unknown = UNKNOWN[lang]
    assignment = ((facts or {}).get("assignments") or {}).get(assignment_id) or {}
    team = ((facts or {}).get("teams") or {}).get(team_id)
    described: dict[str, Any] = {
        "title": assignment.get("title") or unknown["title"],
        "firm_name": assignment.get("firm_name") or unknown["firm_name"],
        "known_team": team is not None,
    }
    if team is not None:
        level = LEVELS[lang].get(team["level"], team["level"])
        described.update(team_code=team["code"], institution_name=team["institution_name"], level=level,
                         skills=skills_label(list(team.get("skills", [])), lang))
        described["team"] = (f"team {team['code']} ({level}, {team['institution_name']})")
    else:
        described.update(team_code="", institution_name="", level="", skills="", team=unknown["team"])
    return described


def coordinator(facts: dict[str, Any] | None, email: str | None, language: str) -> dict[str, Any]:
    """Who answers questions: the coordinating organisation (and workspace) and its contact address, if any."""
    lang = lang_of(language)
    name = (facts or {}).get("coordinator_name")
    workspace = (facts or {}).get("workspace_name")
    if name and workspace and name != workspace:
        label = f"{name} ({workspace})"
    else:
        label = name or workspace or UNKNOWN[lang]["coordinator"]
    return {"name": label, "workspace": workspace or "", "email": email or ""}
