"""A coordinator's round from start to end in a real browser (Debian's chromium, headless, via Playwright)
against the real services, in Dutch and in English, axe-core on every page: build a round, filter and page
through its result, read why an assignment went unmatched, forbid a pair, run again, compare two chosen runs,
publish; an entrepreneur accepts in the portal and the acceptance shows on the round page; the coordinator
releases the accepted pair with a reason and the round runs again.

Each language gets its own workspace (the demo's institutions and firms, fresh teams and assignments) in one
stack. The Visitor helper and the sign-in by invitation come from test_portal_browser.
Set WERKPLAATS_SCREENSHOTS=<folder> to keep a screenshot of each main page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from werkplaats_shared.devstack.demo import FIRMS, INSTITUTIONS, MUNICIPALITIES, PERIOD, PERIODS, Api, setup_demo_data
from werkplaats_shared.devstack.stack import PORTAL, SERVICES, LocalStack, StackConfig

from ..conftest import free_port
from .conftest import FAST
from .test_portal_browser import TEXTS, UUID, Visitor, World, _accepted_invitation, _wait_for_text, browser, chromium

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # a whole round, twice over, on a busy machine
__all__ = ["browser", "chromium"]  # fixtures, used by name

WORDS = {
    "nl": {"start": "Ronde starten", "fit": "Passendheid", "show": "Tonen", "next": "Volgende pagina",
           "forbid": "Paar uitsluiten", "forbidden": "uitgesloten", "again": "Opnieuw uitvoeren",
           "solved": "Klaar om te publiceren", "compare": "Deze uitvoeringen vergelijken",
           "why_forbidden": "de coördinator sloot het paar uit", "back": "Terug naar de ronde",
           "publish": "Matches publiceren", "published": "Gepubliceerd", "accepted": "1 geaccepteerd",
           "release": "Paar vrijgeven en opnieuw uitvoeren", "released": "1 geaccepteerd paar vrijgegeven",
           "no_team": "vereiste vaardigheden", "page_1": "pagina 1 van"},
    "en": {"start": "Start the round", "fit": "Fit", "show": "Show", "next": "Next page",
           "forbid": "Forbid the pair", "forbidden": "forbidden", "again": "Run again", "solved": "Solved",
           "compare": "Compare these runs", "why_forbidden": "the coordinator forbade the pair",
           "back": "Back to the round", "publish": "Publish the matches", "published": "Published",
           "accepted": "1 accepted", "release": "Release the pair and run again",
           "released": "1 accepted pair released", "no_team": "required skills", "page_1": "page 1 of"},
}
IMPOSSIBLE = "Roadmap en beveiliging in één"  # WO, needs two skills no WO team has together


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ports = {s: free_port() for s in SERVICES}
    ports[PORTAL] = free_port()
    stack = LocalStack(StackConfig(data_dir=str(tmp_path_factory.mktemp("bigrounds")), ports=ports,
                                   smtp_port=free_port(), extra_env=dict(FAST), portal=True))
    try:
        stack.start(timeout=300)  # six stacks may start at once on a shared machine
        yield World(stack, setup_demo_data(stack, say=lambda _line: None))
    finally:
        stack.stop()


def _workspace(world: World, language: str) -> str:
    """A workspace of the demo's coordinator with teams of the demo's institutions and an assignment of each
    demo firm, plus one that no team can do."""
    intake = Api(world.stack.url("intake"), world.data.coordinator_key)
    workspace = intake.post("/workspaces", {"name": f"Werkplaats {language.upper()}", "municipalities": MUNICIPALITIES,
                                            "periods": PERIODS})
    for (_name, level, team_skills), key in zip(INSTITUTIONS, world.data.institution_keys, strict=True):
        for i, skills in enumerate(team_skills, start=1):
            Api(world.stack.url("intake"), key).post("/teams", {
                "workspace_id": workspace["id"], "code": f"{language.upper()}-{level}-{i:02d}", "level": level,
                "size": 4, "skills": skills, "period": PERIOD})
    for (_firm, _lang, title, levels, required, nice), key in zip(FIRMS, world.data.firm_keys, strict=True):
        Api(world.stack.url("intake"), key).post("/assignments", {
            "workspace_id": workspace["id"], "title": title, "period": PERIOD, "accepted_levels": levels,
            "required_skills": required, "nice_to_have_skills": nice, "min_teams": 1, "max_teams": 1})
    Api(world.stack.url("intake"), world.data.firm_keys[-1]).post("/assignments", {
        "workspace_id": workspace["id"], "title": IMPOSSIBLE, "period": PERIOD, "accepted_levels": ["WO"],
        "required_skills": ["digital-roadmap", "cyber-security"], "min_teams": 1, "max_teams": 1})
    return str(workspace["id"])


def _filter(me: Visitor, words: dict[str, str], **chosen: str) -> None:
    for name, value in chosen.items():
        if name in ("q", "min_fit", "max_fit"):
            me.page.fill(f"#{name}", value)
        else:
            me.page.select_option(f"#{name}", value)
    me.page.locator("#result-filters").get_by_role("button", name=words["show"]).click()
    me.check()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_coordinator_runs_a_round_from_start_to_end_and_follows_the_firms_answers(
        world: World, browser: Any, language: str) -> None:
    words, t = WORDS[language], TEXTS[language]
    workspace_id = _workspace(world, language)
    me = _accepted_invitation(world, browser, world.data.coordinator_key, f"coordinator-{language}@ijssel.example.org",
                              language)
    firm: Visitor | None = None
    try:
        assert me.page.locator("html").get_attribute("lang") == language  # invited in that language
        me.goto(f"/coordinator/rounds/new?period={workspace_id}%7C{PERIOD}")
        assert IMPOSSIBLE in me.main_text()
        me.page.check("#policy-0")
        me.submit(words["start"])
        _wait_for_text(me, words["fit"])
        round_url = me.page.url.split("?")[0]

        # page through the matches, five at a time; then only HBO teams; then a firm's name
        _filter(me, words, size="5")
        caption = me.page.locator("#round-matches caption").inner_text()
        assert words["page_1"] in caption, caption
        first_page = me.page.locator("#round-matches tbody tr").all_inner_texts()
        assert len(first_page) == 5
        me.click(words["next"])
        second_page = me.page.locator("#round-matches tbody tr").all_inner_texts()
        assert second_page and not set(second_page) & set(first_page)
        _filter(me, words, size="50", level="HBO")
        rows = me.page.locator("#round-matches tbody tr").all_inner_texts()
        assert rows and all("(HBO)" in r for r in rows), rows
        _filter(me, words, level="", q="korenbloem")
        rows = me.page.locator("#round-matches tbody tr").all_inner_texts()
        assert len(rows) == 1 and "Bakkerij De Korenbloem" in rows[0] and "Webshop voor taarten" in rows[0]
        me.shot("coordinator-round-filtered")

        # why the impossible assignment went unmatched, in words
        _filter(me, words, q="", show="unmatched_assignments")
        unmatched = me.page.locator("#unmatched-assignments tbody").inner_text()
        assert IMPOSSIBLE in unmatched and words["no_team"] in unmatched
        me.shot("coordinator-round-unmatched")

        # forbid the best pair, run again
        me.goto(round_url.split(world.portal, 1)[1])
        pair = me.page.locator("#pair option").first.inner_text()
        me.page.fill("#reason", "Dit team werkte vorig jaar al voor dit bedrijf")
        me.submit(words["forbid"])
        assert words["forbidden"] in me.main_text()
        me.submit(words["again"])
        _wait_for_text(me, words["solved"])
        _wait_for_text(me, words["fit"])
        assert pair not in me.page.locator("#pair").inner_text()

        # compare the two runs, chosen from the list
        assert me.page.locator("#round-runs tbody tr").count() == 2
        options = me.page.locator("#a option").all()
        me.page.select_option("#a", options[0].get_attribute("value"))
        me.page.select_option("#b", options[1].get_attribute("value"))
        me.submit(words["compare"])
        team_code, assignment_title = pair.split(": ", 1)
        dropped = me.page.locator("#compare-removed").inner_text()
        assert team_code in dropped and assignment_title in dropped and words["why_forbidden"] in dropped
        assert "Dit team werkte vorig jaar al voor dit bedrijf" in dropped
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-compare-chosen")
        me.click(words["back"])
        me.submit(words["publish"])
        _wait_for_text(me, words["published"])

        # the bakery accepts its team in the portal; the round page shows the answer
        firm = _accepted_invitation(world, browser, world.data.firm_keys[0],
                                    f"eigenaar-{language}@korenbloem.example.org", language)
        firm.goto("/firm/matches")
        assert "Webshop voor taarten" in firm.main_text()
        firm.page.get_by_label(t["accept"], exact=False).last.check()
        firm.submit(t["send_answer"])
        assert t["thanks"] in firm.main_text().lower()
        me.goto(round_url.split(world.portal, 1)[1])
        _wait_for_text(me, words["accepted"])
        _filter(me, words, answer="accepted")
        rows = me.page.locator("#round-matches tbody tr").all_inner_texts()
        assert len(rows) == 1 and "Webshop voor taarten" in rows[0]
        me.shot("coordinator-round-answers")

        # release the accepted pair with a reason: the round runs again and says so
        me.page.fill("#release-reason", "Het bedrijf wil toch een ander team")
        me.submit(words["release"])
        _wait_for_text(me, words["released"])
        assert me.page.locator("#round-runs tbody tr").count() == 3
        assert not me.csp_errors, me.csp_errors
    finally:
        me.close()
        if firm is not None:
            firm.close()
