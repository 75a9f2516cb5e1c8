"""Reach figures (werkplaats_shared.reach): each thing counts once, at its earliest day; a thing with several
values of a dimension counts under each, once in the total; a team counts its students; and the range check
that every service's ``GET /reach`` shares."""

from __future__ import annotations

from datetime import date

import pytest
from marshmallow import ValidationError
from werkplaats_shared.reach import Counted, ReachQuery, figure


def _table(found: dict[str, object]) -> dict[tuple[str, str], int]:
    return {(b["dimension"], b["value"]): b["count"] for b in found["breakdowns"]}  # type: ignore[attr-defined,index]


def test_a_thing_counts_once_at_its_earliest_day() -> None:
    items = [Counted("firm-1", date(2027, 5, 2), {"region": ("Utrecht",)}),
             Counted("firm-1", date(2027, 3, 9), {"region": ("Utrecht",)}),
             Counted("firm-2", date(2027, 5, 1), {"region": ("Gelderland",)})]
    found = figure("firms_reached", items, ("region", "month"))
    assert found["total"] == 2
    assert _table(found) == {("region", "Gelderland"): 1, ("region", "Utrecht"): 1,
                             ("month", "2027-03"): 1, ("month", "2027-05"): 1}
    assert found["multi_valued"] == []


def test_several_values_count_under_each_and_once_in_the_total() -> None:
    found = figure("assignments_submitted", [Counted("a", date(2027, 1, 1), {"level": ("MBO", "HBO")}),
                                             Counted("b", date(2027, 1, 1), {"level": ("HBO",)}),
                                             Counted("c", date(2027, 1, 1), {})], ("level",))
    assert found["total"] == 3
    assert _table(found) == {("level", "HBO"): 2, ("level", "MBO"): 1, ("level", "unknown"): 1}
    assert found["multi_valued"] == ["level"]


def test_a_team_counts_its_students_once() -> None:
    team = Counted("team-1", date(2027, 2, 1), {"level": ("WO",)}, weight=5)
    found = figure("students_placed", [team, team, Counted("team-2", date(2027, 2, 1), {"level": ("MBO",)}, 3)],
                   ("level",))
    assert found["total"] == 8 and _table(found) == {("level", "WO"): 5, ("level", "MBO"): 3}


def test_nothing_counted_is_zero_without_breakdowns() -> None:
    assert figure("referrals", [], ("region",)) == {"figure": "referrals", "total": 0, "breakdowns": [],
                                                    "multi_valued": []}


@pytest.mark.parametrize(("query", "field"), [
    ({"workspace_id": "w", "from": "2027-02-01", "to": "2027-01-31"}, "to"),
    ({"workspace_id": "w", "from": "2027-02-30", "to": "2027-03-31"}, "from"),
    ({"from": "2027-01-01", "to": "2027-03-31"}, "workspace_id"),
    ({"workspace_id": "w", "from": "2027-01-01", "to": "9999-12-31"}, "to"),
])
def test_the_range_is_checked(query: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ReachQuery().load(query)
    assert field in refused.value.messages


def test_a_range_of_one_day_is_fine() -> None:
    loaded = ReachQuery().load({"workspace_id": "w", "from": "2027-01-01", "to": "2027-01-01"})
    assert loaded == {"workspace_id": "w", "from_": date(2027, 1, 1), "to": date(2027, 1, 1)}


def test_a_thing_met_with_two_values_counts_under_both_once_in_the_total() -> None:
    found = figure("workshop_participants", [Counted("firm-1", date(2031, 3, 3), {"theme": ("ai",)}),
                                             Counted("firm-1", date(2031, 3, 4), {"theme": ("webshop",)}),
                                             Counted("firm-2", date(2031, 3, 3), {"theme": ("ai",)})],
                   ("theme", "month"))
    assert found["total"] == 2
    assert _table(found) == {("theme", "ai"): 2, ("theme", "webshop"): 1, ("month", "2031-03"): 2}
    assert found["multi_valued"] == ["theme"]
