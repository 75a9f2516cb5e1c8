"""The coordinator's console in a real browser against the real services (separate processes, embedded broker,
SQLite, SMTP sink), in Dutch and in English, axe-core's WCAG 2.1 A/AA rules on every page visited: the workspace
overview (its municipalities, open assignments and teams per period and level, equal to the counts the test makes
from the data it loaded); a published round's kickoffs planned, seen in their week, one moved (a Saturday refused
first, in words), one cancelled with a reason; a workshop programme made with a room and a facilitator,
entrepreneurs' interest, planned, its session with seats and a waiting list.

Set WERKPLAATS_SCREENSHOTS=<folder> to keep a screenshot of each page (docs/screenshots holds them)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from werkplaats_shared.devstack.demo import PERIOD, Api, ApiError, setup_demo_data, wait_for
from werkplaats_shared.devstack.stack import PORTAL, SERVICES, LocalStack, StackConfig

from ..conftest import free_port
from .conftest import FAST
from .test_portal_browser import UUID, Visitor, World, _accepted_invitation, browser, chromium  # noqa: F401

pytestmark = pytest.mark.e2e
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TEXTS = {
    "nl": {"workspace": "Overzicht werkplaats", "kickoffs": "Kennismakingen",
           "plan_link": "Kennismakingen van een ronde plannen",
           "plan": "Kennismakingen plannen", "planned": "kennismakingen gepland", "move": "Verplaatsen",
           "move_button": "Kennismaking verplaatsen", "not_weekday": "het is geen werkdag",
           "moved": "verplaatst", "cancel": "Annuleren", "cancel_button": "Kennismaking annuleren",
           "required": "Dit veld is verplicht", "cancelled": "geannuleerd", "workshops": "Workshops",
           "new_programme": "Nieuw programma maken", "make": "Programma maken", "morning": "ochtend",
           "add_room": "Zaal toevoegen", "add_room_button": "Zaal toevoegen",
           "add_facilitator": "Begeleider toevoegen", "add_facilitator_button": "Begeleider toevoegen",
           "plan_programme": "Programma plannen", "seated": "1 sessie, 2 ondernemers geplaatst, 1 wachtend",
           "days": "9-3-2027, 16-3-2027", "reason": "De ondernemer verhuist die week"},
    "en": {"workspace": "Workspace overview", "kickoffs": "Kickoffs", "plan_link": "Plan a round's kickoffs",
           "plan": "Plan the kickoffs", "planned": "kickoffs planned", "move": "Move",
           "move_button": "Move the kickoff", "not_weekday": "it is not a weekday", "moved": "moved",
           "cancel": "Cancel", "cancel_button": "Cancel the kickoff", "required": "This field is required",
           "cancelled": "cancelled", "workshops": "Workshops", "new_programme": "Make a new programme",
           "make": "Make the programme", "morning": "morning", "add_room": "Add a room",
           "add_room_button": "Add the room", "add_facilitator": "Add a facilitator",
           "add_facilitator_button": "Add the facilitator", "plan_programme": "Plan the programme",
           "seated": "1 session, 2 entrepreneurs seated, 1 waiting", "days": "2027-03-09, 2027-03-16",
           "reason": "The firm moves premises that week"},
}
SESSION_TEXTS = {
    "nl": {"move": "Verplaatsen", "moved": "De ondernemer is verplaatst", "full": "de sessie is vol",
           "move_session": "Sessie verplaatsen", "taken": "er loopt dan en daar al een sessie van dit thema",
           "session_moved": "De sessie is verplaatst", "next": "Volgende pagina", "page": "pagina {page} van {pages}",
           "find": "Zoeken", "forbid": "Gevonden paar uitsluiten", "forbidden": "uitgesloten",
           "reason": "Dit team werkte vorig jaar al bij deze ondernemer"},
    "en": {"move": "Move", "moved": "The entrepreneur is moved", "full": "the session is full",
           "move_session": "Move the session", "taken": "a session of this theme already runs then and there",
           "session_moved": "The session is moved", "next": "Next page", "page": "page {page} of {pages}",
           "find": "Find", "forbid": "Forbid the pair found", "forbidden": "forbidden",
           "reason": "This team worked for this firm last year"},
}


def _after_plan(me: Visitor) -> None:
    """A plan is a job in scheduling's worker: one that takes longer than the portal waits shows the job's page
    (checked too), which loads the outcome, with the same flash, once the worker is done."""
    if "/plans/" in me.page.url:
        me.check()
        me.page.wait_for_url(lambda url: "/plans/" not in url, timeout=120_000)
        me.check()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The demo data, its round published and every match accepted by its firm (so each has a kickoff)."""
    ports = {s: free_port() for s in SERVICES}
    ports[PORTAL] = free_port()
    stack = LocalStack(StackConfig(data_dir=str(tmp_path_factory.mktemp("console")), ports=ports,
                                   smtp_port=free_port(), portal=True,
                                   # plans to 0.01%: the long plan below holds the planner for seconds
                                   extra_env={**FAST, "WERKPLAATS_WORKSHOP_PLAN_GAP": "0.0001"}))
    stack.start(timeout=180)  # six services' migrations on a shared, busy machine can take more than a minute
    try:
        data = setup_demo_data(stack, say=lambda _line: None)
        intake = Api(stack.url("intake"), data.coordinator_key)
        batch = intake.post("/batches", {"workspace_id": data.workspace_id, "period": PERIOD,
                                         "assignment_ids": data.assignment_ids[:8], "auto_publish": True})
        matched = wait_for("the round published", lambda: (b := intake.get(f"/batches/{batch['id']}"))["status"]
                           == "matched" and b, timeout=120)
        assert len(matched["matches"]) >= 4, matched
        for key in data.firm_keys:
            firm = Api(stack.url("scheduling"), key)
            for answer in firm.get("/match-answers"):
                firm.post(f"/match-answers/{answer['match_id']}", {"decision": "accepted"})
        coordinator = Api(stack.url("scheduling"), data.coordinator_key)
        wait_for("every accepted match has its kickoff",
                 lambda: len(coordinator.get("/kickoffs?page_size=100")) == len(matched["matches"]), timeout=60)
        yield World(stack, data)
    finally:
        stack.stop()


def _coordinator(world: World, browser: Any, language: str, journey: str) -> Visitor:  # noqa: F811
    """A new colleague of the demo coordinator, invited in this language, signed in."""
    me = _accepted_invitation(world, browser, world.data.coordinator_key,
                              f"{journey}-{language}@ijssel.example.org", language)
    me.check()
    assert me.page.locator("html").get_attribute("lang") == language  # invited in this language
    return me


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_workspace_overview_shows_the_working_area_and_the_counts_per_period_and_level(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    intake = Api(world.stack.url("intake"), world.data.coordinator_key)
    teams = Counter(t["level"] for t in intake.get("/teams?page_size=100"))
    open_levels = Counter(level for a in intake.get("/assignments?page_size=100")
                          if a["status"] in ("submitted", "in_batch", "unmatched") for level in a["accepted_levels"])
    me = _coordinator(world, browser, language, "overview")
    try:
        me.click(TEXTS[language]["workspace"])
        text = me.main_text()
        assert "Werkplaats Regio IJssel" in text and "Zwolle" in text and "Overijssel" in text
        assert me.page.locator("#area-map circle").count() == 6
        assert me.page.locator("#area-map text", has_text="Zwolle").count() == 1

        def row(table: str) -> dict[str, str]:
            cells = me.page.locator(f"#{table} tbody tr").first.locator("th, td").all_inner_texts()
            return dict(zip(["period", "MBO", "HBO", "WO", "total"], cells, strict=True))

        team_row = row("workspace-teams")
        assert team_row["period"] == "semester 1, 2027"
        assert {lv: int(team_row[lv]) for lv in ("MBO", "HBO", "WO")} == {lv: teams[lv] for lv in ("MBO", "HBO", "WO")}
        assignment_row = row("workspace-assignments")
        assert {lv: int(assignment_row[lv]) for lv in ("MBO", "HBO", "WO")} == {
            lv: open_levels[lv] for lv in ("MBO", "HBO", "WO")}
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-workspace")
    finally:
        me.close()


def _free_time(kickoffs: list[dict[str, Any]], k: dict[str, Any]) -> datetime:
    """A time on the kickoff's own day that none of the coordinator's other kickoffs that day overlaps."""
    start = datetime.fromisoformat(k["starts_at"]).astimezone(AMSTERDAM)
    others = [datetime.fromisoformat(o["starts_at"]).astimezone(AMSTERDAM) for o in kickoffs
              if o["match_id"] != k["match_id"] and o["status"] == "proposed" and o["starts_at"]]
    for hour, minute in ((16, 0), (12, 30), (9, 0), (14, 30)):
        moment = start.replace(hour=hour, minute=minute)
        if moment != start and all(abs(moment - o) >= timedelta(hours=1) for o in others):
            return moment
    raise AssertionError("no free time on the kickoff's day")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_coordinator_plans_a_rounds_kickoffs_sees_them_in_the_week_moves_one_and_cancels_one(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    words = TEXTS[language]
    scheduling = Api(world.stack.url("scheduling"), world.data.coordinator_key)
    titles = {p["match_id"]: p["assignment_title"]
              for p in Api(world.stack.url("intake"), world.data.coordinator_key).get("/placements?page_size=100")}
    me = _coordinator(world, browser, language, "kickoffs")
    try:
        me.click(words["kickoffs"])
        me.click(words["plan_link"])
        me.shot("coordinator-plan-kickoffs")
        me.submit(words["plan"])
        _after_plan(me)
        assert words["planned"] in me.main_text()
        kickoffs = [k for k in scheduling.get("/kickoffs?page_size=100") if k["status"] == "proposed"]
        assert kickoffs
        week = me.page.locator("#kickoff-week").inner_text()
        first = min(kickoffs, key=lambda k: k["starts_at"])
        assert titles[first["match_id"]] in week  # the assignment, named, in its week
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-kickoffs")

        # move one: first to a Saturday (refused, in words), then to a free time on its own day
        shown = [k for k in kickoffs if titles[k["match_id"]] in week]
        moving = shown[0] if language == "nl" else shown[-1]
        title = titles[moving["match_id"]]
        me.click(f"{words['move']} {title}")
        start = datetime.fromisoformat(moving["starts_at"]).astimezone(AMSTERDAM)
        saturday = start + timedelta(days=5 - start.weekday())
        me.page.fill("#day", saturday.date().isoformat())
        me.submit(words["move_button"])
        assert words["not_weekday"] in me.main_text()
        assert scheduling.get(f"/kickoffs/{moving['match_id']}")["starts_at"] == moving["starts_at"]
        me.shot("coordinator-move-kickoff")
        target = _free_time(kickoffs, moving)
        me.page.fill("#day", target.date().isoformat())
        me.page.fill("#starts_at", target.strftime("%H:%M"))
        me.submit(words["move_button"])
        assert words["moved"] in me.main_text()
        moved = scheduling.get(f"/kickoffs/{moving['match_id']}")
        assert datetime.fromisoformat(moved["starts_at"]) == target
        slot = me.page.locator("#kickoff-week tbody tr", has_text=target.strftime("%H:%M"))
        assert title in slot.inner_text()

        # cancel another: the confirm page needs a reason
        cancelling = next(k for k in shown if k["match_id"] != moving["match_id"]
                          and scheduling.get(f"/kickoffs/{k['match_id']}")["status"] == "proposed")
        other = titles[cancelling["match_id"]]
        me.click(f"{words['cancel']} {other}")
        assert other in me.main_text()
        me.submit(words["cancel_button"])
        assert words["required"] in me.main_text()
        assert scheduling.get(f"/kickoffs/{cancelling['match_id']}")["status"] == "proposed"
        me.page.fill("#reason", words["reason"])
        me.shot("coordinator-cancel-kickoff")
        me.submit(words["cancel_button"])
        assert words["cancelled"] in me.main_text()
        after = scheduling.get(f"/kickoffs/{cancelling['match_id']}")
        assert after["status"] == "cancelled" and after["reason"] == words["reason"]
        assert words["reason"] in me.page.locator("#kickoffs-cancelled").inner_text()
        assert other not in me.page.locator("#kickoff-week").inner_text()
    finally:
        me.close()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_coordinator_makes_a_workshop_programme_plans_it_and_reads_seats_and_waiting_list(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    words = TEXTS[language]
    title = f"Digitaal ondernemen ({language})"
    me = _coordinator(world, browser, language, "workshops")
    try:
        me.click(words["workshops"])
        me.click(words["new_programme"])
        me.page.fill("#title", title)
        me.page.fill("#days", words["days"])
        me.page.get_by_label(words["morning"], exact=True).check()
        me.page.fill("#min_participants", "1")
        me.shot("coordinator-new-programme")
        me.submit(words["make"])
        assert title in me.page.locator("h1").inner_text()
        programme_url = me.page.url
        programme_id = programme_url.rstrip("/").rsplit("/", 1)[1]

        me.click(words["add_room"])
        me.page.fill("#name", "Zaal De Fabriek")
        me.page.select_option("#municipality", "GM0193")
        me.page.fill("#capacity", "2")
        me.submit(words["add_room_button"])
        assert "Zaal De Fabriek" in me.page.locator("#programme-rooms").inner_text()

        me.click(words["add_facilitator"])
        me.page.fill("#label", "Jan de Vries <jan@example.org>")
        me.page.check("#themes-0")  # the first theme of the catalogue: cyber resilience
        me.submit(words["add_facilitator_button"])
        assert me.page.locator("#error-summary").count() == 1  # a name or address is refused: a code only
        me.page.fill("#label", "F-01")
        me.submit(words["add_facilitator_button"])
        assert "F-01" in me.page.locator("#programme-facilitators").inner_text()

        for key in world.data.firm_keys[:3]:  # three entrepreneurs want the theme; the room seats two
            Api(world.stack.url("scheduling"), key).post(f"/workshop-programmes/{programme_id}/interests", {
                "theme": "cyber_resilience", "available_days": ["2027-03-09", "2027-03-16"],
                "locations": ["GM0193"]})
        me.goto(programme_url.split(world.portal, 1)[1])
        themes = me.page.locator("#programme-themes tbody tr").first.inner_text()
        assert "3" in themes
        me.submit(words["plan_programme"])
        _after_plan(me)
        assert words["seated"] in me.main_text()
        sessions = me.page.locator("#programme-sessions tbody tr")
        assert sessions.count() == 1
        cells = sessions.first.locator("td").all_inner_texts()
        assert "Zaal De Fabriek" in cells[2] and cells[3] == "F-01" and cells[4:] == ["2", "2", "1"]
        assert me.page.locator("#programme-seated").inner_text() == "2"
        assert me.page.locator("#programme-waiting").inner_text() == "1"
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-programme")
    finally:
        me.close()


PLAN_TEXTS = {
    "nl": {"workshops": "Workshops", "plans": "Uw planningen", "programme": "Workshopprogramma", "done": "Klaar",
           "outcome": "Er kon niets worden gepland"},
    "en": {"workshops": "Workshops", "plans": "Your plans", "programme": "Workshop programme", "done": "Done",
           "outcome": "Nothing could be planned"},
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_coordinator_finds_its_plans_newest_first_and_follows_one_to_its_outcome(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    """The plans page lists the coordinator's plan jobs by what they plan (the programme's title), newest
    first, with their status; a plan that ended leads to its outcome on the programme."""
    words = PLAN_TEXTS[language]
    coordinator = Api(world.stack.url("scheduling"), world.data.coordinator_key)
    title = f"Planningen bekijken ({language})"
    made = coordinator.post("/workshop-programmes", {"title": title, "slots": [
        {"date": "2031-03-03", "day_part": "morning"}]})
    job = coordinator.post(f"/workshop-programmes/{made['id']}/plan", {})  # no rooms or interest: nothing to plan
    wait_for("the plan job ended", lambda: coordinator.get(f"/plan-jobs/{job['id']}")["status"] == "done")
    me = _coordinator(world, browser, language, "plans")
    try:
        me.click(words["workshops"])
        me.click(words["plans"])
        first = me.page.locator("#plan-jobs tbody tr").first.locator("td").all_inner_texts()
        assert first[0] == f"{words['programme']}: {title}" and first[2] == words["done"], first
        assert first[1] and first[3]  # asked for and ended, as a day and time
        assert not UUID.search(me.main_text())
        me.shot("coordinator-plan-jobs")
        me.click(f"{words['programme']}: {title}")
        assert f"/coordinator/workshops/{made['id']}" in me.page.url
        assert words["outcome"] in me.main_text()
    finally:
        me.close()


REJECTED_TEXTS = {
    "nl": {"status": "Afgewezen: het breekt een regel, er is niets veranderd", "programme": "Workshopprogramma",
           "heading": "Het plan is niet doorgevoerd", "rules": "De controle vond 2 gebroken regels",
           "room": "De sessie {theme} in Zaal De Linde op 3 maart 2031, ochtend: de zaal is dan niet beschikbaar.",
           "seat": "{firm} heeft een plaats in {theme} in Zaal De Linde op 3 maart 2031, ochtend, een sessie die "
                   "niet doorgaat."},
    "en": {"status": "Rejected: it breaks a rule, nothing changed", "programme": "Workshop programme",
           "heading": "The plan was not applied", "rules": "The check found 2 broken rules",
           "room": "The session {theme} in Zaal De Linde on 3 March 2031, morning: the room is not available then.",
           "seat": "{firm} has a seat in {theme} in Zaal De Linde on 3 March 2031, morning, a session that does "
                   "not run."},
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_rejected_plan_shows_on_the_plans_page_with_the_rules_it_breaks(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    """A plan the validator rejected (the programme changed while the planner worked; the integration tests
    reach it so, on SQLite and PostgreSQL) is listed as rejected, and its page says nothing was changed and
    lists the rules it breaks, instead of sending the coordinator to an outcome that was not applied. The job
    is stored as the worker leaves a rejected one, in scheduling's database."""
    import os
    import uuid

    import sqlalchemy as sa
    from scheduling.adapters import orm
    from scheduling.adapters import workshop_orm as w
    from werkplaats_shared.db import utcnow

    words = REJECTED_TEXTS[language]
    coordinator = Api(world.stack.url("scheduling"), world.data.coordinator_key)
    title = f"Afgewezen plan ({language})"
    made = coordinator.post("/workshop-programmes", {"title": title, "slots": [
        {"date": "2031-03-03", "day_part": "morning"}, {"date": "2031-03-03", "day_part": "afternoon"}]})
    room = coordinator.post(f"/workshop-programmes/{made['id']}/rooms", {
        "name": "Zaal De Linde", "municipality_code": "GM0193", "capacity": 10,
        "availability": [{"date": "2031-03-03", "day_part": "afternoon"}]})  # not in the morning
    firm_id, firm_name = next(iter(_firm_names(world).items()))
    theme = {t["code"]: t[f"label_{language}"] for t in coordinator.get("/workshop-themes")}["ai"]
    violations = [f"session ai at {room['id']} on 2031-03-03 morning: the room is not available then",
                  f"seat of interest i-1 in ai at {room['id']} on 2031-03-03 morning: the session does not run"]
    session = {"theme": "ai", "venue": room["id"], "day": "2031-03-03", "day_part": "morning"}
    details = [{"rule": "room_unavailable", "facts": session},
               {"rule": "seat_session_not_running", "facts": {**session, "firm_id": firm_id}}]
    engine = sa.create_engine(f"sqlite:///{os.path.join(world.stack.data_dir, 'scheduling.sqlite3')}")
    try:
        with engine.begin() as conn:
            coordinator_id = conn.execute(sa.select(w.WorkshopProgramme.coordinator_id).where(
                w.WorkshopProgramme.id == made["id"])).scalar_one()
            conn.execute(sa.insert(orm.PlanJob).values(
                id=str(uuid.uuid4()), kind="workshops", coordinator_id=coordinator_id, subject_id=made["id"],
                params={}, status="rejected", stage="done", time_limit=20.0, attempts=1, created_at=utcnow(),
                started_at=utcnow(), finished_at=utcnow(), result=None,
                progress={"elapsed_seconds": 3.2, "best_value": 1500.0, "gap": 0.004, "target_gap": 0.01},
                verdict={"valid": False, "violations": violations, "details": details},
                error="the plan breaks 2 rule(s) of the programme as it is now; nothing was changed, plan again"))
    finally:
        engine.dispose()
    me = _coordinator(world, browser, language, "rejected")
    try:
        me.goto("/coordinator/plans")
        first = me.page.locator("#plan-jobs tbody tr").first.locator("td").all_inner_texts()
        assert first[0] == f"{words['programme']}: {title}" and first[2] == words["status"], first
        me.click(f"{words['programme']}: {title}")
        assert "/coordinator/plans/" in me.page.url  # the job's own page, not the programme's outcome
        me.check()
        text = me.main_text()
        assert words["status"] in text and words["heading"] in text and words["rules"] in text, text
        # in the page's language, the room and the firm by their names, no id
        assert me.page.locator("#plan-job-violations li").all_inner_texts() == [
            words["room"].format(theme=theme), words["seat"].format(theme=theme, firm=firm_name)]
        assert room["id"] not in text and firm_id not in text
        me.shot("coordinator-plan-job-rejected")
    finally:
        me.close()


def _firm_names(world: World) -> dict[str, str]:
    """The demo firms' names by organisation id, as each firm's own profile gives them."""
    names = {}
    for key in world.data.firm_keys:
        firm = Api(world.stack.url("intake"), key).get("/firm")
        names[firm["id"]] = firm["name"]
    return names


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_coordinator_moves_an_entrepreneur_to_another_session_and_a_session_to_another_room(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    words = SESSION_TEXTS[language]
    scheduling = Api(world.stack.url("scheduling"), world.data.coordinator_key)
    slots = [{"date": "2027-04-06", "day_part": "afternoon"}, {"date": "2027-04-13", "day_part": "afternoon"}]
    # more programmes than a page holds (made before this one): the list is paged by scheduling, newest first
    made = len(scheduling.get("/workshop-programmes?page_size=100"))
    for n in range(max(0, 25 - made)):
        scheduling.post("/workshop-programmes", {"title": f"Programma {n + 1}", "slots": slots})
    programme = scheduling.post("/workshop-programmes", {
        "title": f"Cyberweerbaar ondernemen ({language})", "slots": slots, "min_participants": 1,
        "sessions_wanted": {"cyber_resilience": 2}})
    base = f"/workshop-programmes/{programme['id']}"
    rooms = {r["id"]: r for r in (
        scheduling.post(f"{base}/rooms", {"name": name, "municipality_code": "GM0193", "capacity": 2,
                                          "availability": slots}) for name in ("Zaal Noord", "Zaal Zuid"))}
    scheduling.post(f"{base}/facilitators", {"label": "F-02", "themes": ["cyber_resilience"],
                                             "availability": slots})
    for key in world.data.firm_keys[:3]:  # three firms for two sessions: one has a free seat
        Api(world.stack.url("scheduling"), key).post(f"{base}/interests", {
            "theme": "cyber_resilience", "available_days": [s["date"] for s in slots], "locations": ["GM0193"]})
    job = scheduling.post(f"{base}/plan", None)  # a plan job: the worker plans it
    wait_for("the programme planned", lambda: scheduling.get(f"/plan-jobs/{job['id']}")["status"] == "done",
             timeout=120)
    sessions = scheduling.get(f"{base}/sessions?page_size=100")
    assert len(sessions) == 2 and sorted(s["seated"] for s in sessions) == [1, 2], sessions
    full = next(s for s in sessions if s["seated"] == 2)
    free = next(s for s in sessions if s["seated"] == 1)
    names = _firm_names(world)

    def seated_in(session_id: str) -> list[str]:
        return sorted(names[r["firm_id"]] for r in scheduling.get(
            f"/workshop-registrations?session_id={session_id}&status=seated&page_size=100"))

    before = seated_in(full["id"])
    total = len(scheduling.get("/workshop-programmes?page_size=100"))
    pages = -(-total // 25)
    me = _coordinator(world, browser, language, "sessions")
    try:
        me.click(TEXTS[language]["workshops"])
        assert me.page.locator("#programme-pages").inner_text().count(words["page"].format(page=1, pages=pages)) == 1
        assert programme["title"] in me.page.locator("#programmes").inner_text()  # the newest first
        me.click(words["next"])
        assert words["page"].format(page=2, pages=pages) in me.page.locator("#programme-pages").inner_text()
        assert programme["title"] not in me.page.locator("#programmes").inner_text()

        me.goto(f"/coordinator/workshops/{programme['id']}")
        me.goto(f"/coordinator/workshops/{programme['id']}/sessions/{full['id']}")
        seated = me.page.locator("#session-seated").inner_text()
        assert all(name in seated for name in before)
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-workshop-session")

        # the first firm moves to the session with a free seat; the second cannot follow: it is full now
        mover, stayer = before
        me.submit(f"{words['move']} {mover}")
        assert words["moved"] in me.main_text()
        assert seated_in(full["id"]) == [stayer] and mover in seated_in(free["id"])
        assert mover not in me.page.locator("#session-seated").inner_text()
        me.submit(f"{words['move']} {stayer}")
        assert words["full"] in me.main_text()
        assert seated_in(full["id"]) == [stayer]

        # the session itself: not to the other session's time and room, but to the other room at its own time
        me.page.select_option("#slot", f"{free['date']}|{free['day_part']}")
        me.page.select_option("#room", free["room_id"])
        me.submit(words["move_session"])
        assert words["taken"] in me.main_text()
        unmoved = next(s for s in scheduling.get(f"{base}/sessions?page_size=100") if s["id"] == full["id"])
        assert (unmoved["date"], unmoved["room_id"]) == (full["date"], full["room_id"])
        other_room = next(r for r in rooms.values() if r["id"] != full["room_id"])
        me.page.select_option("#slot", f"{full['date']}|{full['day_part']}")
        me.page.select_option("#room", other_room["id"])
        me.submit(words["move_session"])
        assert words["session_moved"] in me.main_text()
        assert other_room["name"] in me.page.locator("#session-where").inner_text()
        moved = next(s for s in scheduling.get(f"{base}/sessions?page_size=100") if s["id"] == full["id"])
        assert (moved["room_id"], moved["date"]) == (other_room["id"], full["date"])
    finally:
        me.close()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_coordinator_finds_any_assignment_and_team_of_the_round_by_text_and_forbids_the_pair(
        world: World, browser: Any, language: str) -> None:  # noqa: F811
    words = SESSION_TEXTS[language]
    intake = Api(world.stack.url("intake"), world.data.coordinator_key)
    [batch] = [b for b in intake.get("/batches?page_size=100") if b["status"] == "matched"]
    assignment = sorted(intake.get(f"/assignments?batch_id={batch['id']}&page_size=100"),
                        key=lambda a: a["title"])[0 if language == "nl" else -1]
    teams = sorted(intake.get(f"/teams?workspace_id={batch['workspace_id']}&period={batch['period']}"
                              "&page_size=100"), key=lambda t: t["code"])
    team = teams[0 if language == "nl" else -1]
    me = _coordinator(world, browser, language, "find")
    try:
        me.goto(f"/coordinator/rounds/{batch['id']}")
        me.page.fill("#find_assignment", assignment["title"][2:12])
        me.page.fill("#find_team", team["code"])
        me.submit(words["find"])
        assert me.page.locator("#found-assignment option").count() >= 1
        me.page.select_option("#found-assignment", assignment["id"])
        me.page.select_option("#found-team", team["id"])
        me.page.fill("#found-reason", words["reason"])
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-round-find-pair")
        me.submit(words["forbid"])
        assert words["forbidden"] in me.main_text()
        forbids = Api(world.stack.url("matching"), world.data.coordinator_key).get(
            f"/batches/{batch['id']}/forbids")
        assert {(f["team_id"], f["assignment_id"], f["reason"]) for f in forbids} >= {
            (team["id"], assignment["id"], words["reason"])}
    finally:
        me.close()


def test_a_long_plan_shows_its_progress_can_be_stopped_and_ends_on_the_programme(
        world: World, browser: Any) -> None:  # noqa: F811
    """A regional programme of a thousand interests (stored straight into scheduling's database: the API
    takes one request per interest) is not planned within the moment the portal waits: the plan job's page
    shows its status and stage and refreshes itself; stopping it changes nothing; planned again, the page
    loads the outcome on the programme once the worker is done.

    The planner does one job at a time. So that the stop lands on a job that has not ended (a thousand
    interests can be planned in seconds), a larger programme's plan (five thousand interests, several seconds
    of work) holds the planner while the coordinator asks for hers and stops it: hers waits in the queue."""
    import os

    import sqlalchemy as sa
    from scheduling.adapters import workshop_orm as w
    from sqlalchemy.orm import sessionmaker

    from ..integration.workshop_programmes import store_programme

    engine = sa.create_engine(f"sqlite:///{os.path.join(world.stack.data_dir, 'scheduling.sqlite3')}")
    coordinator = Api(world.stack.url("scheduling"), world.data.coordinator_key)
    made = coordinator.post("/workshop-programmes", {"title": "Bepaalt de coördinator", "slots": [
        {"date": "2031-03-03", "day_part": "morning"}]})
    try:
        with engine.connect() as conn:
            coordinator_id = conn.execute(sa.select(w.WorkshopProgramme.coordinator_id).where(
                w.WorkshopProgramme.id == made["id"])).scalar_one()
        programme_id = store_programme(sessionmaker(engine), coordinator_id, 1000)
        larger = store_programme(sessionmaker(engine), coordinator_id, 5_000, rooms=20, facilitators=30, seed=5)
    finally:
        engine.dispose()
    me = _coordinator(world, browser, "nl", "long-plan")
    try:
        me.goto(f"/coordinator/workshops/{programme_id}")
        holding = coordinator.post(f"/workshop-programmes/{larger}/plan", {"time_limit": 120})["id"]
        wait_for("the larger plan to hold the planner",
                 lambda: coordinator.get(f"/plan-jobs/{holding}")["status"] == "running", timeout=60)
        me.submit("Programma plannen")
        assert "/plans/" in me.page.url
        text = me.main_text()
        assert "Het programma wordt gepland" in text and "deze pagina ververst zichzelf" in text
        assert "Wacht op een verwerker" in text, text
        assert me.page.locator("#live-region").get_attribute("data-live") == "true"
        assert not UUID.search(me.page.locator("main").inner_text())
        me.shot("coordinator-plan-job")
        me.submit("Plannen stoppen")
        assert "De planning is gestopt; er is niets veranderd." in me.main_text()
        assert f"/coordinator/workshops/{programme_id}" in me.page.url
        assert "Nog niet gepland." in me.main_text()
        with contextlib.suppress(ApiError):  # 409 if the larger plan ended meanwhile: the planner is free either way
            coordinator.post(f"/plan-jobs/{holding}/cancel", {})
        me.submit("Programma plannen")
        me.page.wait_for_url(lambda url: "/plans/" not in url, timeout=180_000)
        me.check()
        text = me.main_text()
        assert "Gepland" in text or "Er is geen plan gevonden" in text, text
        assert f"/coordinator/workshops/{programme_id}" in me.page.url
    finally:
        me.close()
