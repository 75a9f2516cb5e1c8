"""The reach dashboard in a real browser against the real services: data loaded through the APIs (firms in two
provinces and one outside every working area, teams at MBO, HBO and WO, a round matched and published, a
workshop with participants); the coordinator opens the dashboard in Dutch and in English; the headline figures
and the tables by region and by level equal counts this test computes from the data it loaded; the CSV download
equals the tables; axe-core is clean on every page (the Visitor of test_portal_browser checks each one)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from werkplaats_shared.devstack.demo import Api, DemoData, wait_for
from werkplaats_shared.devstack.stack import PORTAL, SERVICES, LocalStack, StackConfig

from ..conftest import free_port
from .conftest import FAST
from .test_portal_browser import Visitor, World, _accepted_invitation
from .test_portal_browser import browser as browser
from .test_portal_browser import chromium as chromium

pytestmark = pytest.mark.e2e

PROVINCE = {"GM0193": "Overijssel", "GM0200": "Gelderland", "GM0344": "Utrecht"}
AREA = ["GM0193", "GM0200"]  # Zwolle and Apeldoorn; Utrecht lies outside the working area
PERIOD = "2027-S1"
TEAMS = [("ROC Oost", "MBO", ["MBO-01", "MBO-02"], ["website"], 3),
         ("Hogeschool Oost", "HBO", ["HBO-01"], ["webshop"], 4), ("Universiteit Oost", "WO", ["WO-01"], ["data"], 5)]
# firm, municipality, assignment (title, accepted levels, required skill, theme) or None
FIRMS = [("Bakkerij Zwolle", "GM0193", ("Nieuwe website", ["MBO"], "website", "website")),
         ("Garage Zwolle", "GM0193", ("Webshop onderdelen", ["HBO", "WO"], "webshop", "webshop")),
         ("Drukkerij Apeldoorn", "GM0200", ("Dashboard orders", ["WO"], "data", "data_automation")),
         ("Hotel Apeldoorn", "GM0200", ("Chatbot voor gasten", ["MBO", "HBO"], "ai", "ai")),  # no team knows ai
         ("Kwekerij Utrecht", "GM0344", ("Webshop planten", ["MBO"], "webshop", "webshop"))]  # referred
WORKSHOP_FIRMS = 3  # the first three firms take a seat in the workshop
NAMES: dict[str, dict[str, Any]] = {
    "nl": {"firms_reached": "Ondernemers bereikt", "assignments_submitted": "Opdrachten ingediend",
           "assignments_served": "Opdrachten bediend", "teams_placed": "Teams geplaatst",
           "students_placed": "Studenten geplaatst", "workshops_given": "Workshops gegeven",
           "workshop_participants": "Deelnemers aan workshops", "referrals": "Doorverwijzingen",
           "region": "Regio", "level": "Niveau", "total": "Totaal", "show": "Cijfers tonen",
           "csv": "Deze cijfers downloaden (CSV)", "header": ["Cijfer", "Uitgesplitst naar", "Waarde", "Aantal"]},
    "en": {"firms_reached": "Entrepreneurs reached", "assignments_submitted": "Assignments submitted",
           "assignments_served": "Assignments served", "teams_placed": "Teams placed",
           "students_placed": "Students placed", "workshops_given": "Workshops given",
           "workshop_participants": "Workshop participants", "referrals": "Referrals",
           "region": "Region", "level": "Level", "total": "Total", "show": "Show the figures",
           "csv": "Download these figures (CSV)", "header": ["Figure", "Split by", "Value", "Count"]},
}


@dataclass
class Loaded:
    world: World
    expected: dict[str, dict[str, Counter[str]]]  # figure -> dimension ("total", "region", "level") -> counts
    batch_period: str


def _load(stack: LocalStack) -> tuple[DemoData, dict[str, dict[str, Counter[str]]]]:
    wanted: list[dict[str, Any]] = [{"name": "Werkplaats Oost", "role": "coordinator"}]
    wanted += [{"name": name, "role": "institution", "levels": [level]} for name, level, *_ in TEAMS]
    wanted += [{"name": name, "role": "entrepreneur"} for name, *_ in FIRMS]
    created = stack.admin("create-organisations", stdin=json.dumps(wanted))
    coord_key = created[0]["api_key"]
    inst_keys = [o["api_key"] for o in created[1:1 + len(TEAMS)]]
    firm_keys = [o["api_key"] for o in created[1 + len(TEAMS):]]
    wait_for("keys in matching", lambda: Api(stack.url("matching"), coord_key).get("/runs") is not None)
    for key in firm_keys:
        api = Api(stack.url("scheduling"), key)
        wait_for("keys in scheduling", lambda api=api: api.get("/notices") is not None)  # type: ignore[misc]
    intake = Api(stack.url("intake"), coord_key)
    ws = intake.post("/workspaces", {"name": "Werkplaats Oost", "municipalities": AREA, "periods": [
        {"code": PERIOD, "starts_on": "2027-02-01", "ends_on": "2027-06-30"}]})
    team_level: dict[str, str] = {}
    team_size: dict[str, int] = {}
    for (_name, level, codes, skills, size), key in zip(TEAMS, inst_keys, strict=True):
        for code in codes:
            t = Api(stack.url("intake"), key).post("/teams", {"workspace_id": ws["id"], "code": code, "level": level,
                                                            "size": size, "skills": skills, "period": PERIOD})
            team_level[t["id"]], team_size[t["id"]] = level, size
    region_of_assignment: dict[str, str] = {}
    in_area: list[str] = []
    levels_of: dict[str, list[str]] = {}
    for i, ((_name, code, (title, levels, skill, theme)), key) in enumerate(zip(FIRMS, firm_keys, strict=True), 1):
        firm = Api(stack.url("intake"), key)
        firm.post("/firm", {"kvk_number": f"6600000{i}", "sector": "mkb", "size_class": "micro",
                            "municipality": code, "language": "nl"})
        Api(stack.url("scheduling"), key).put("/contact", {"email": f"reach-{i}@example.org", "language": "nl"})
        a = firm.post("/assignments", {"workspace_id": ws["id"], "title": title, "description": title,
                                       "period": PERIOD, "accepted_levels": levels, "required_skills": [skill],
                                       "nice_to_have_skills": [], "min_teams": 1, "max_teams": 1, "theme": theme})
        region_of_assignment[a["id"]] = PROVINCE[code]
        levels_of[a["id"]] = levels
        if code in AREA:
            in_area.append(a["id"])
    batch = intake.post("/batches", {"workspace_id": ws["id"], "period": PERIOD, "assignment_ids": in_area})
    batch = wait_for("the round matched", lambda: (b := intake.get(f"/batches/{batch['id']}"))["status"]
                     == "matched" and b, timeout=120)

    scheduling = Api(stack.url("scheduling"), coord_key)
    slots = [{"date": "2027-03-09", "day_part": "morning"}]
    programme = scheduling.post("/workshop-programmes", {"title": "Voorjaar 2027", "slots": slots,
                                                         "min_participants": 1})
    base = f"/workshop-programmes/{programme['id']}"
    scheduling.post(f"{base}/rooms", {"municipality_code": "GM0193", "name": "Zaal Oost", "capacity": 10,
                                      "availability": slots})
    scheduling.post(f"{base}/facilitators", {"label": "F-01", "themes": ["ai"], "availability": slots})
    for key in firm_keys[:WORKSHOP_FIRMS]:
        Api(stack.url("scheduling"), key).post(f"{base}/interests", {
            "theme": "ai", "locations": ["GM0193"], "available_days": ["2027-03-09"]})
    job = scheduling.post(f"{base}/plan", {})  # a plan job: the scheduling worker does it
    wait_for("the workshop plan", lambda: scheduling.get(f"/plan-jobs/{job['id']}")["status"] == "done")
    seated = [r for r in scheduling.get(f"/workshop-registrations?programme_id={programme['id']}&page_size=100")
              if r["status"] == "seated"]

    # the expected figures, computed here from what was loaded
    firm_region = [PROVINCE[code] for _n, code, _a in FIRMS]
    matches = batch["matches"]
    served = {m["assignment_id"]: team_level[m["team_id"]] for m in matches}
    placed = {m["team_id"]: region_of_assignment[m["assignment_id"]] for m in matches}
    expected: dict[str, dict[str, Counter[str]]] = {
        "firms_reached": {"total": Counter(all=len(FIRMS)), "region": Counter(firm_region)},
        "assignments_submitted": {"total": Counter(all=len(FIRMS)), "region": Counter(firm_region),
                                  "level": Counter(level for levels in levels_of.values() for level in levels)},
        "assignments_served": {"total": Counter(all=len(served)),
                               "region": Counter(region_of_assignment[a] for a in served),
                               "level": Counter(served.values())},
        "teams_placed": {"total": Counter(all=len(placed)), "region": Counter(placed.values()),
                         "level": Counter(team_level[t] for t in placed)},
        "students_placed": {"total": Counter(all=sum(team_size[t] for t in placed)),
                            "level": Counter({lv: sum(team_size[t] for t in placed if team_level[t] == lv)
                                              for lv in {team_level[t] for t in placed}})},
        "workshops_given": {"total": Counter(all=len({r["session"]["id"] for r in seated}))},
        "workshop_participants": {"total": Counter(all=len({r["interest_id"] for r in seated}))},  # one each
        "referrals": {"total": Counter(all=1), "region": Counter(["Utrecht"])},
    }
    assert len(served) == 3 and expected["workshop_participants"]["total"]["all"] == WORKSHOP_FIRMS  # the setup
    data = DemoData({}, coord_key, inst_keys, firm_keys, ws["id"], list(region_of_assignment))
    return data, expected


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    ports = {s: free_port() for s in SERVICES}
    ports[PORTAL] = free_port()
    stack = LocalStack(StackConfig(data_dir=str(tmp_path_factory.mktemp("reach")), ports=ports,
                                   smtp_port=free_port(), extra_env=dict(FAST), portal=True))
    stack.start()
    try:
        data, expected = _load(stack)
        yield Loaded(World(stack, data), expected, PERIOD)
    finally:
        stack.stop()


def _tables(me: Visitor) -> dict[str, dict[str, dict[str, int]]]:
    """Each table by its dimension: row label -> column name -> count."""
    found: dict[str, dict[str, dict[str, int]]] = me.page.evaluate("""() => {
        const out = {};
        for (const table of document.querySelectorAll('table.reach-table')) {
            const heads = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
            const rows = {};
            for (const tr of table.querySelectorAll('tbody tr')) {
                const label = tr.querySelector('th').innerText.trim();
                const cells = [...tr.querySelectorAll('td')].map(td => parseInt(td.innerText.trim(), 10));
                rows[label] = Object.fromEntries(heads.slice(1).map((h, i) => [h, cells[i]]));
            }
            out[table.dataset.dimension] = rows;
        }
        return out;
    }""")
    return found


def _headline(me: Visitor) -> dict[str, int]:
    items = me.page.locator(".reach-headline__item").all()
    return {i.locator(".reach-headline__text").inner_text().strip():
            int(i.locator(".reach-headline__number").inner_text().replace(".", "").replace(",", "")) for i in items}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_dashboard_shows_the_counts_of_the_loaded_data_and_its_csv_equals_its_tables(
        loaded: Loaded, browser: Any, language: str) -> None:
    world = loaded.world
    t: dict[str, Any] = NAMES[language]
    me = _accepted_invitation(world, browser, world.data.coordinator_key, f"coordinator-{language}@oost.example.org")
    try:
        me.language = language
        me.switch_language()
        me.goto("/coordinator/reach")
        me.page.fill("#date_from", datetime.now(UTC).date().isoformat())
        me.page.fill("#date_to", "2027-12-31")  # today's data and the workshop in March 2027
        me.submit(t["show"])

        headline = _headline(me)
        for figure, by in loaded.expected.items():
            assert headline[t[figure]] == by["total"]["all"], figure
        tables = _tables(me)
        for figure, by in loaded.expected.items():
            for dimension in ("region", "level"):
                if dimension in by:
                    shown = {row: cells[t[figure]] for row, cells in tables[dimension].items()
                             if cells.get(t[figure])}
                    assert shown == dict(by[dimension]), (figure, dimension, shown)
        assert set(tables) >= {"region", "level", "period", "theme", "month"}
        assert len(tables["month"]) == 2  # this month (firms, assignments, rounds) and March 2027 (the workshop)
        assert me.page.locator("svg.reach-chart[role=img]").count() == len(tables)
        assert not me.csp_errors
        me.shot("coordinator-reach")

        href = me.page.get_by_role("link", name=t["csv"]).get_attribute("href")
        assert href
        response = me.page.request.get(world.portal + href)
        assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.body().decode("utf-8"))))
        assert rows[0] == t["header"]
        titles = {dimension: me.page.locator(f"table[data-dimension={dimension}] thead th").first.inner_text().strip()
                  for dimension in tables}
        from_tables = [[name, t["total"], "", str(total)] for name, total in headline.items()]
        from_tables += [[column, titles[dimension], row, str(count)] for dimension, table in tables.items()
                        for row, cells in table.items() for column, count in cells.items()]
        assert sorted(rows[1:]) == sorted(from_tables)

        # a range that ends before it starts is refused with the reason at the field
        me.page.fill("#date_from", "2027-02-01")
        me.page.fill("#date_to", "2027-01-01")
        me.page.get_by_role("button", name=t["show"]).click()
        me.check()
        assert me.page.get_attribute("#date_to", "aria-invalid") == "true"
        assert me.page.locator(".reach-headline").count() == 0
    finally:
        me.close()
