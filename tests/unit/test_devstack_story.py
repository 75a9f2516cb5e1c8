"""The run command's summary of the demo: one line per part of the programme's case, in names."""

from __future__ import annotations

from werkplaats_shared.devstack.__main__ import running_line, where_to_look
from werkplaats_shared.devstack.stack import PORTAL, LocalStack, StackConfig
from werkplaats_shared.devstack.story import (
    AMSTERDAM,
    AMSTERDAM_AREA,
    SPOT035,
    UTRECHT,
    UTRECHT_AREA,
    Story,
    area_names,
    summary,
)


def _story() -> Story:
    workspaces = [{"id": "w1", "name": AMSTERDAM, "municipalities": sorted(AMSTERDAM_AREA)},
                  {"id": "w2", "name": UTRECHT, "municipalities": sorted(UTRECHT_AREA)},
                  {"id": "w3", "name": SPOT035, "municipalities": ["GM0406"]}]
    assignments = [{"id": "a1", "title": "Webshop voor taarten", "firm_id": "f1"},
                   {"id": "a2", "title": "Chatbot voor afspraken", "firm_id": "f2"}]
    return Story(
        keys={}, workspaces=workspaces,
        referral={"scheme_codes": ["loket-digitaal"]}, referral_schemes=["Landelijk loket digitaal ondernemen"],
        handover={"firm_ids": ["f8", "f9"], "assignment_ids": ["a8", "a9"], "reason": "Het programma is afgelopen."},
        programme={"title": "Cyberweerbaarheid voor ondernemers"},
        registrations=[{"status": "seated"}] * 3 + [{"status": "waitlisted"}],
        batch={"period": "2027-S1", "assignments": assignments,
               "matches": [{"assignment_id": "a1", "team_id": "t1", "score": 10.5}]},
        run={"solver_status": "optimal", "objective": 10.5},
        unmatched=[{"assignment_id": "a2", "en": "no team had AI", "nl": "geen team kende AI"}],
        team_codes={"t1": "MBO-A1", "t2": "HBO-A1", "t3": "WO-A1"},
        notices=[{"status": "sent", "language": "nl"}], mails=3, seconds=1.25)


def test_the_summary_names_each_part_of_the_case_in_one_line() -> None:
    lines = summary(_story())
    assert lines[0].startswith(f"Workspaces: {AMSTERDAM} (Almere, Amstelveen, Amsterdam, Diemen, Haarlem, ")
    assert f"; {UTRECHT} (Bunnik, De Bilt, Houten, IJsselstein, Nieuwegein, Stichtse Vecht, Utrecht, Zeist)" in lines[0]
    assert lines[1] == ("Referral: Fotostudio Hilversum (Hilversum, Gooi & Vechtstreek) lies outside both working "
                        "areas; referred to Landelijk loket digitaal ondernemen")
    assert lines[2].startswith(f"Handover: {SPOT035}'s network (2 firms, 2 open assignments) moved to {AMSTERDAM}")
    assert lines[3] == ('Workshop: "Cyberweerbaarheid voor ondernemers", 4 entrepreneurs registered, 3 seated, '
                        "1 on the waitlist")
    assert lines[4] == (f"Round 2027-S1 in {AMSTERDAM} with MBO, HBO, WO teams: 1 of 2 assignments matched "
                        "(run optimal, objective 10.5)")
    assert "Webshop voor taarten" in lines[5] and "MBO-A1" in lines[5]
    assert lines[6] == "Unmatched: Chatbot voor afspraken: no team had AI (geen team kende AI)"
    assert "Match notices sent: 1 (nl)" in lines[7]


def test_municipality_names_come_from_the_shipped_cbs_data_and_an_unknown_code_stays() -> None:
    assert area_names(["GM0402", "GM0363", "GM9999"]) == ["Amsterdam", "GM9999", "Hilversum"]


def test_where_to_look_names_portal_docs_and_mails_and_what_happens_to_the_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ports = {"intake": 9101, "matching": 9102, "scheduling": 9103, PORTAL: 9100}
    stack = LocalStack(StackConfig(data_dir=str(tmp_path), ports=ports, portal=True))
    text = "\n".join(where_to_look(stack, str(tmp_path), keep_data=False))
    for url in ("http://127.0.0.1:9100", "http://127.0.0.1:9101/docs", "http://127.0.0.1:9102/docs",
                "http://127.0.0.1:9103/docs", str(tmp_path / "mail" / "new")):
        assert url in text
    assert "emptied at each start; start with --keep-data" in text
    assert "is kept (--keep-data)" in "\n".join(where_to_look(stack, str(tmp_path), keep_data=True))
    line = running_line(stack)
    assert line.startswith("Running. Press Ctrl-C to stop.") and "http://127.0.0.1:9103/docs" in line
