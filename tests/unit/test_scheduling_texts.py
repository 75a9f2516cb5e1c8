"""Every text scheduling sends or shows, rendered in Dutch and English from realistic data: names, never ids;
every placeholder filled; one date format per language; both languages carry the same facts; the HTML part of a
mail says what its text part says."""

from __future__ import annotations

import re
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from scheduling.adapters import wording
from scheduling.adapters.mailer import SUBJECTS, html_body, render, render_text
from scheduling.adapters.pages import render_page
from scheduling.domain.calendar import TZ

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{%|%\}")
LINK = "https://werkplaats.example.nl/scheduling/responses/eyJuIjoiYSJ9.c2ln"
COORDINATOR = {"name": "Gemeente Amsterdam (Digitale Werkplaats MRA)", "workspace": "Digitale Werkplaats MRA",
               "email": "werkplaats@amsterdam.example.nl"}
FACTS: dict[str, Any] = {
    "workspace_name": "Digitale Werkplaats MRA", "coordinator_name": "Gemeente Amsterdam",
    "period": {"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"},
    "assignments": {"a-1": {"title": "Webshop voor de bakkerij", "firm_name": "Bakkerij Jansen"},
                    "a-2": {"title": "Cyberscan van het kantoornetwerk", "firm_name": "Bakkerij Jansen"}},
    "teams": {"t-1": {"code": "HVA-DS-03", "institution_name": "Hogeschool van Amsterdam", "level": "HBO",
                      "skills": ["webdevelopment", "ux"]},
              "t-2": {"code": "ROC-ICT-07", "institution_name": "ROC van Amsterdam", "level": "MBO",
                      "skills": ["netwerkbeheer"]}},
}
STARTS = datetime(2027, 2, 15, 14, 0, tzinfo=TZ)
ENDS = datetime(2027, 2, 15, 15, 0, tzinfo=TZ)
ANSWER_BY = datetime(2026, 12, 14, 23, 59, tzinfo=TZ)
DATES = {"nl": "maandag 15 februari 2027", "en": "Monday 15 February 2027"}
ANSWER_DATES = {"nl": "maandag 14 december 2026", "en": "Monday 14 December 2026"}


def _matches(lang: str, links: bool) -> list[dict[str, Any]]:
    plain = [{"match_id": "m-1", "assignment_id": "a-1", "team_id": "t-1"},
             {"match_id": "m-2", "assignment_id": "a-2", "team_id": "t-2"}]
    if links:
        plain = [{**m, "response_url": f"{LINK}{i}"} for i, m in enumerate(plain)]
    # the ids in these rows are what the notice stores; a text must show names only
    return [{**m, "match_id": f"0b4d6f0e-7c3a-4c55-9d0e-{i:012d}"} for i, m in enumerate(
        [{**m, **wording.describe_match(FACTS, m["assignment_id"], m["team_id"], lang)} for m in plain])]


def _kickoff(lang: str, venue: str = "on_site") -> dict[str, Any]:
    return {"match_id": "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f", "assignment_id": "a-1", "team_id": "t-1",
            "uid": "kickoff-6f1c2d3e@werkplaats", "sequence": 0, "method": "REQUEST", "starts_at": STARTS,
            "ends_at": ENDS, "venue": venue, "address": "Damrak 1, Amsterdam",
            "location": "Damrak 1, Amsterdam" if venue == "on_site" else "Online",
            **wording.describe_match(FACTS, "a-1", "t-1", lang), "coordinator": COORDINATOR}


def _workshop(lang: str, **extra: Any) -> dict[str, Any]:
    return {"theme_label": {"nl": "Cyberweerbaarheid", "en": "Cyber resilience"}[lang], "date": date(2027, 3, 2),
            "day_part_label": {"nl": "ochtend", "en": "morning"}[lang], "venue": "room",
            "location_name": "Zaal 3, Amsterdam Science Park", "starts_at": datetime(2027, 3, 2, 9, 30, tzinfo=TZ),
            "ends_at": datetime(2027, 3, 2, 12, 0, tzinfo=TZ), "promoted": False, "by_plan": False, **extra}


def _texts(lang: str) -> dict[str, tuple[str, str]]:
    """(subject, body) of every mail kind, and the calendar texts, in one language."""
    period = wording.period_label(FACTS["period"]["code"], lang)
    texts = {
        "match_notice": render("match_notice", lang, {"count": 2, "period": period, "matches": _matches(lang, True),
                                                      "answer_by": ANSWER_BY, "coordinator": COORDINATOR}),
        "match_notice_one": render("match_notice", lang, {
            "count": 1, "period": period, "matches": _matches(lang, True)[:1], "answer_by": ANSWER_BY,
            "coordinator": COORDINATOR}),
        "match_cancelled": render("match_cancelled", lang, {"count": 1, "period": period,
                                                            "matches": _matches(lang, False)[:1],
                                                            "coordinator": COORDINATOR}),
        "referral_notice": render("referral_notice", lang, {"schemes": [
            {"code": "cyber", "label_nl": "Subsidie cyberweerbaarheid", "label_en": "Cyber-resilience subsidy",
             "url": "https://www.digitaltrustcenter.nl/"}]}),
    }
    for kind in ("kickoff_notice", "kickoff_update", "kickoff_confirmation", "kickoff_cancellation"):
        texts[kind] = render(kind, lang, _kickoff(lang))
    texts["kickoff_online"] = render("kickoff_notice", lang, _kickoff(lang, "online"))
    texts["kickoff_summary"] = ("", render_text("kickoff_invitation", lang, _kickoff(lang)))
    texts["kickoff_description"] = ("", render_text("kickoff_description", lang, _kickoff(lang)))
    for kind, context in (("workshop_seat", _workshop(lang)),
                          ("workshop_seat_promoted", _workshop(lang, promoted=True)),
                          ("workshop_seat_update", _workshop(lang)),
                          ("workshop_seat_cancellation", _workshop(lang, by_plan=True)),
                          ("workshop_waitlisted", _workshop(lang, sessions=[
                              {"date": date(2027, 3, 2), "day_part_label": {"nl": "ochtend", "en": "morning"}[lang],
                               "venue": "room", "location_name": "Zaal 3, Amsterdam Science Park", "position": 2}]))):
        template = kind.replace("_promoted", "")
        texts[kind] = (render_text(f"{template}_subject", lang, context).strip(), render_text(template, lang, context))
    return texts


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_text_names_things_and_fills_every_placeholder(lang: str) -> None:
    for kind, (subject, body) in _texts(lang).items():
        for text in (subject, body):
            assert not UUID.search(text), (kind, text)
            assert not PLACEHOLDER.search(text), (kind, text)
            assert "2027-S1" not in text and "None" not in text, (kind, text)


def test_match_notice_names_assignment_team_period_and_says_the_deadline_once() -> None:
    for lang in ("nl", "en"):
        body = _texts(lang)["match_notice"][1]
        for name in ("Webshop voor de bakkerij", "Cyberscan van het kantoornetwerk", "HVA-DS-03",
                     "Hogeschool van Amsterdam", "ROC-ICT-07", "ROC van Amsterdam", COORDINATOR["email"],
                     f"{LINK}0", f"{LINK}1"):
            assert name in body, (lang, name)
        assert body.count(ANSWER_DATES[lang]) == 1
        assert len(re.findall(r"\b20\d\d\b", body)) == 2  # the period's year and the deadline's, nothing more
    nl_body, en_body = _texts("nl")["match_notice"][1], _texts("en")["match_notice"][1]
    assert "semester 1 2027" in nl_body and "semester 1, 2027" in en_body
    assert "Laat het ons uiterlijk maandag 14 december 2026 weten" in nl_body
    assert "by Monday 14 December 2026 at the latest" in en_body
    assert " match" not in nl_body.lower() and "koppeling" not in en_body
    one_nl, one_en = _texts("nl")["match_notice_one"][0], _texts("en")["match_notice_one"][0]
    assert "Webshop voor de bakkerij" in one_nl and "Webshop voor de bakkerij" in one_en


def test_both_languages_carry_the_same_dates_names_and_links() -> None:
    nl, en = _texts("nl"), _texts("en")
    assert nl.keys() == en.keys()
    facts = re.compile(r"https?://\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b\d{1,2}:\d{2}\b|[A-Z]{2,}-[A-Z]{2,}-\d+")
    for kind in nl:
        assert sorted(facts.findall(nl[kind][1])) == sorted(facts.findall(en[kind][1])), kind
        dates_nl = [d for d in (DATES["nl"], ANSWER_DATES["nl"], "dinsdag 2 maart 2027") if d in nl[kind][1]]
        dates_en = [d for d in (DATES["en"], ANSWER_DATES["en"], "Tuesday 2 March 2027") if d in en[kind][1]]
        assert len(dates_nl) == len(dates_en), kind
    for kind in ("kickoff_notice", "kickoff_update", "kickoff_confirmation", "kickoff_cancellation"):
        assert DATES["nl"] in nl[kind][1] and DATES["en"] in en[kind][1], kind
        assert "Webshop voor de bakkerij" in nl[kind][0] and "Webshop voor de bakkerij" in en[kind][0], kind


def test_calendar_summary_names_the_assignment_and_the_team_and_the_description_whom_to_ask() -> None:
    for lang in ("nl", "en"):
        texts = _texts(lang)
        summary, description = texts["kickoff_summary"][1].strip(), texts["kickoff_description"][1]
        assert "Webshop voor de bakkerij" in summary and "HVA-DS-03" in summary
        assert "Bakkerij Jansen" in description and COORDINATOR["email"] in description
        assert "Damrak 1, Amsterdam" in description


def test_one_date_format_per_language_and_periods_as_people_say_them() -> None:
    assert wording.long_date(date(2026, 12, 14), "nl") == "maandag 14 december 2026"
    assert wording.long_date(date(2026, 12, 14), "en") == "Monday 14 December 2026"
    assert wording.period_label("2027-S1", "nl") == "semester 1 2027"
    assert wording.period_label("2027-S1", "en") == "semester 1, 2027"
    assert wording.period_label({"code": "blok-3", "starts_on": "2027-02-01", "ends_on": "2027-04-16"}, "nl") == (
        "blok-3 (maandag 1 februari 2027 tot en met vrijdag 16 april 2027)")
    for lang in ("nl", "en"):
        for kind, (_, body) in _texts(lang).items():
            assert not re.search(r"\b\d{2}-\d{2}-\d{4}\b|\b\d{4}-\d{2}-\d{2}\b", body), (kind, body)


def test_a_match_intake_never_named_reads_without_ids() -> None:
    for lang in ("nl", "en"):
        named = wording.describe_match(None, "1f5dfd3f-0000-4000-8000-000000000000",
                                       "f8d2a431-0000-4000-8000-000000000000", lang)
        assert not UUID.search(str(named))
        subject, body = render("match_notice", lang, {
            "count": 1, "period": wording.period_label("2027-S1", lang), "answer_by": ANSWER_BY,
            "matches": [{**named, "response_url": LINK}], "coordinator": wording.coordinator(None, None, lang)})
        assert not UUID.search(subject + body) and not PLACEHOLDER.search(subject + body)
        summary = render_text("kickoff_invitation", lang, named).strip()
        assert summary == {"nl": "Kennismaking: uw opdracht met een studententeam",
                           "en": "Kickoff meeting: your assignment with a student team"}[lang]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_html_part_says_what_the_text_part_says_with_inline_styles_and_no_images(lang: str) -> None:
    for kind, (subject, body) in _texts(lang).items():
        if kind.startswith("kickoff_summary") or kind.startswith("kickoff_description"):
            continue
        html = html_body(body, subject, lang)
        parsed = _Text()
        parsed.feed(html)
        words = " ".join("".join(parsed.parts).split())
        assert " ".join(re.sub(r"(?m)^- ", "", body).split()) in words, kind  # "- " lines become a list
        assert f'<html lang="{lang}">' in html
        assert not [t for t, _ in parsed.tags if t in ("img", "link", "style", "script")], kind
        hrefs = [a.get("href") for t, a in parsed.tags if t == "a"]
        for url in re.findall(r"https?://\S+", body):
            assert url in hrefs, (kind, url)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_response_page_names_the_match_in_every_state(lang: str) -> None:
    named = wording.describe_match(FACTS, "a-1", "t-1", lang)
    context = {**named, "period": wording.period_label("2027-S1", lang), "answer_by": ANSWER_BY,
               "coordinator": COORDINATOR}
    pages = {
        "open": render_page("response_page", lang, {"state": "open", **context}),
        "recorded": render_page("response_page", lang, {"state": "recorded", "decision": "accepted", **context}),
        "answered": render_page("response_page", lang, {"state": "answered", "decision": "declined",
                                                        "responded_at": ANSWER_BY, **context}),
    }
    for state in ("expired", "superseded", "not_found", "invalid"):
        pages[state] = render_page("response_page", lang, {"state": state})
    for state, page in pages.items():
        assert not UUID.search(page) and not PLACEHOLDER.search(page), state
    for state in ("open", "recorded", "answered"):
        assert "Webshop voor de bakkerij" in pages[state] and "HVA-DS-03" in pages[state], state
        assert COORDINATOR["email"] in pages[state], state
    assert ANSWER_DATES[lang] in pages["open"] and ANSWER_DATES[lang] in pages["answered"]
    assert {"nl": "semester 1 2027", "en": "semester 1, 2027"}[lang] in pages["open"]


def test_every_subject_is_defined_in_both_languages() -> None:
    for kind, by_lang in SUBJECTS.items():
        assert set(by_lang) == {"nl", "en"}, kind
