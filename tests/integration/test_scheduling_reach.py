"""``GET /reach`` in scheduling: the workshop sessions a coordinator's programmes run in a date range and the
firms seated in them, by region (the room's province), theme and month; a firm seated in two sessions is one
participant; waitlisted firms are no participants; another coordinator counts none of it; a bad range 422."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .test_matching_scheduling_api import Service, assert_error
from .test_scheduling_workshops import FIRMS, SLOTS, TUE, interest, post, programme
from .test_scheduling_workshops import svc as svc

MARCH = "from=2031-03-01&to=2031-03-31"


def reach(svc: Service, query: str = MARCH, who: str = "coord_1") -> dict[str, Any]:
    resp = svc.get(who, f"/reach?{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return dict(resp.get_json())


def figure(answer: dict[str, Any], name: str) -> tuple[int, dict[str, dict[str, int]]]:
    (found,) = [f for f in answer["figures"] if f["figure"] == name]
    table: dict[str, dict[str, int]] = {}
    for b in found["breakdowns"]:
        table.setdefault(b["dimension"], {})[b["value"]] = b["count"]
    return found["total"], table


@pytest.fixture
def planned(svc: Service) -> Service:
    """Six firms want AI on Monday in Utrecht (two sessions of two: four seated, two wait); firm_1 also wants a
    webshop session on Tuesday."""
    pid = programme(svc, sessions_wanted={"ai": 2, "webshop": 1})
    post(svc, "coord_1", f"/workshop-programmes/{pid}/facilitators",
         {"label": "F-03", "themes": ["webshop"], "availability": SLOTS[2:]})
    for firm in FIRMS:
        interest(svc, firm, pid)
    interest(svc, "firm_1", pid, theme="webshop", available_days=[TUE])
    report = post(svc, "coord_1", f"/workshop-programmes/{pid}/plan")
    assert report["figures"]["sessions"] == 3 and report["figures"]["seated"] == 5
    return svc


def test_sessions_and_participants_each_firm_once(planned: Service) -> None:
    answer = reach(planned)
    total, table = figure(answer, "workshops_given")
    assert total == 3 and table["theme"] == {"ai": 2, "webshop": 1} and table["region"] == {"Utrecht": 3}
    assert table["month"] == {"2031-03": 3}
    total, table = figure(answer, "workshop_participants")
    assert total == 4  # firm_1 sits in two sessions; firm_5 and firm_6 only wait
    assert table["theme"] == {"ai": 4, "webshop": 1}
    text = json.dumps(answer)
    assert "firm_" not in text and "F-0" not in text and "Stadhuis" not in text


def test_the_range_and_the_coordinator_select_what_counts(planned: Service) -> None:
    assert figure(reach(planned, "from=2031-03-04&to=2031-03-04"), "workshops_given")[0] == 1  # Tuesday only
    assert [f["total"] for f in reach(planned, "from=2031-04-01&to=2031-04-30")["figures"]] == [0, 0]
    assert [f["total"] for f in reach(planned, who="coord_2")["figures"]] == [0, 0]
    for who in ("firm_1", "inst_1"):
        assert planned.get(who, f"/reach?{MARCH}").status_code == 403


@pytest.mark.parametrize(("query", "field"), [("from=2031-03-02&to=2031-03-01", "query.to"),
                                              ("from=maandag&to=2031-03-01", "query.from"),
                                              ("to=2031-03-01", "query.from")])
def test_a_bad_range_is_refused_with_its_field(svc: Service, query: str, field: str) -> None:
    body = assert_error(svc.get("coord_1", f"/reach?{query}"), 422)
    assert field in {e["field"] for e in body["errors"]}
