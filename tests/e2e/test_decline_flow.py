"""Batch submitted -> matches published -> notices mailed -> a firm declines through the signed link in
its mail -> matching re-runs with minimum change -> a replacement match and a new notice for that firm, and
no new notice for any other firm (matches.published v2 carries their matches over)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from werkplaats_shared.devstack.demo import Api, load_and_run, wait_for
from werkplaats_shared.devstack.smtp_sink import read_mails
from werkplaats_shared.devstack.stack import LocalStack

pytestmark = pytest.mark.e2e


def _body(mail: Any) -> str:
    """The mail's plain-text part (beside it: the HTML part, and any invitation)."""
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def _link_for(body: str, title: str) -> list[str]:
    """The accept/decline link a match notice gives for the assignment titled ``title``."""
    found = re.findall(r"(?:Opdracht|Assignment): (.+?)\r?\n(?:.*\r?\n){1,3}?.*?(https?://\S+/responses/\S+)", body)
    return [link for named, link in found if named.strip() == title]


def test_a_decline_through_the_mailed_link_gets_a_replacement_and_a_new_notice(
        make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack()
    result = load_and_run(stack, say=lambda _line: None)
    coordinator = result.keys["Werkplaats Regio IJssel (coordinator)"]
    intake = Api(stack.url("intake"), coordinator)
    teams = {t["id"]: t for t in intake.get("/teams?page_size=100")}
    batch = result.batch
    used = {m["team_id"] for m in batch["matches"]}
    assignments = {a["id"]: a for a in batch["assignments"]}

    def free_replacement(match: dict[str, Any]) -> bool:
        a = assignments[match["assignment_id"]]
        return any(t["level"] in a["accepted_levels"] and set(a["required_skills"]) <= set(t["skills"])
                   for tid, t in teams.items() if tid not in used)

    declined = next(m for m in batch["matches"] if free_replacement(m))
    firm_id = assignments[declined["assignment_id"]]["firm_id"]
    mails = read_mails(stack.maildir)
    notices_before = Api(stack.url("scheduling"), coordinator).get("/notices?page_size=100")
    title = assignments[declined["assignment_id"]]["title"]
    # the notice names the assignment by its title and the team by its code, never by an id
    links = [link for mail in mails for link in _link_for(_body(mail), title)
             if teams[declined["team_id"]]["code"] in _body(mail)]
    assert len(links) == 1, "the firm's notice has one link for this match"
    assert not [m for m in mails if declined["match_id"] in _body(m) or declined["team_id"] in _body(m)]
    # the page behind the link names the same assignment and team, by title and code
    with urllib.request.urlopen(urllib.request.Request(links[0], headers={"Accept": "text/html"}), timeout=10) as page:
        html = page.read().decode()
    assert title in html and teams[declined["team_id"]]["code"] in html and declined["team_id"] not in html
    request = urllib.request.Request(links[0], data=json.dumps({"decision": "declined"}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201

    def replaced() -> dict[str, Any] | None:
        b: dict[str, Any] = intake.get(f"/batches/{batch['id']}")
        mine = [m for m in b["matches"] if m["assignment_id"] == declined["assignment_id"]]
        return b if b["run_id"] != batch["run_id"] and mine and mine[0]["team_id"] != declined["team_id"] else None

    new_batch = wait_for("the replacement run", replaced, timeout=90)
    replacement = next(m for m in new_batch["matches"] if m["assignment_id"] == declined["assignment_id"])
    # minimum change: every other firm keeps its team
    before = {m["assignment_id"]: m["team_id"] for m in batch["matches"] if m is not declined}
    after = {m["assignment_id"]: m["team_id"] for m in new_batch["matches"]}
    assert all(after.get(a) == t for a, t in before.items() if a != declined["assignment_id"])
    run = Api(stack.url("matching"), coordinator).get(f"/runs/{new_batch['run_id']}")
    assert run["policy"] == "min_change" and run["status"] == "published"
    # the firm gets a new notice naming its replacement team
    firm_key = next(k for name, k in result.keys.items()
                    if name.endswith("(entrepreneur)") and Api(stack.url("intake"), k).get("/me")["id"] == firm_id)
    wait_for("the new notice", lambda: len(Api(stack.url("scheduling"), firm_key).get("/notices")) == 2, timeout=60)
    new_code = teams[replacement["team_id"]]["code"]
    # the mails that came after, by Message-ID: a maildir's names do not sort in the order mails arrived
    # within one second (their microseconds are not zero-padded)
    seen = {m["Message-ID"] for m in mails}
    wait_for("the new mail", lambda: [m for m in read_mails(stack.maildir) if m["Message-ID"] not in seen], timeout=60)
    [new_mail] = [m for m in read_mails(stack.maildir) if m["Message-ID"] not in seen]
    assert new_code in _body(new_mail) and _link_for(_body(new_mail), title)
    assert Api(stack.url("intake"), firm_key).get(f"/assignments/{declined['assignment_id']}")["status"] == "matched"
    # every other firm's notices stay as they were: the re-run only notified the replacement
    notices_after = Api(stack.url("scheduling"), coordinator).get("/notices?page_size=100")
    new = [n for n in notices_after if n["id"] not in {o["id"] for o in notices_before}]
    assert [(n["kind"], n["firm_id"], [m["match_id"] for m in n["matches"]]) for n in new] == [
        ("match_notice", firm_id, [replacement["match_id"]])]
    # no other mail went out (kept pairs carry over without a new notice)
    assert len(read_mails(stack.maildir)) == len(mails) + 1
