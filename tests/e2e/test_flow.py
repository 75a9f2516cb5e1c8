"""The skeleton flow end to end, through the three services' HTTP APIs, as separate processes:
batch submitted -> matching run (PuLP) -> matches published -> notices e-mailed."""

from __future__ import annotations

import email.message
from collections.abc import Callable
from typing import Any

import pytest
from werkplaats_shared.devstack.demo import FIRMS, Api, DemoResult, load_and_run
from werkplaats_shared.devstack.smtp_sink import read_mails
from werkplaats_shared.devstack.stack import SERVICES, LocalStack

pytestmark = pytest.mark.e2e


def check_flow(stack: LocalStack, result: DemoResult) -> None:
    batch, run = result.batch, result.run
    assert batch["status"] == "matched"
    assert run["status"] == "published" and run["solver_status"] == "optimal"
    assert len(run["input_hash"]) == 64 and len(run["model_hash"]) == 64
    coordinator = result.keys["Werkplaats Regio IJssel (coordinator)"]
    teams = {t["id"]: t for t in Api(stack.url("intake"), coordinator).get("/teams?page_size=100")}
    assignments = {a["id"]: a for a in batch["assignments"]}
    matches = batch["matches"]
    # every team at most once, every assignment at most its maximum, every pair level-eligible
    assert len({m["team_id"] for m in matches}) == len(matches)
    for m in matches:
        assert teams[m["team_id"]]["level"] in assignments[m["assignment_id"]]["accepted_levels"]
        assert set(assignments[m["assignment_id"]]["required_skills"]) <= set(teams[m["team_id"]]["skills"])
    assert len(matches) == len(assignments) == len(FIRMS)  # the demo set has a team for every assignment
    assert {a["status"] for a in assignments.values()} == {"matched"}
    assert run["objective"] == pytest.approx(sum(m["score"] for m in matches))
    # one notice per firm, sent in the firm's language, each mail exactly once
    assert len(result.notices) == len(FIRMS)
    assert all(n["status"] == "sent" for n in result.notices)
    mails = read_mails(stack.maildir)
    assert len(mails) == len(FIRMS)
    languages = {f"demo-firm-{i:02d}@example.org": lang for i, (_, lang, *_rest) in enumerate(FIRMS, 1)}
    titles = {f"demo-firm-{i:02d}@example.org": title for i, (_, _, title, *_rest) in enumerate(FIRMS, 1)}
    for mail in mails:
        assert isinstance(mail, email.message.Message)
        assert mail["Content-Language"] == languages[mail["To"]]
        parts = {p.get_content_type(): p for p in mail.walk()}
        assert mail.get_content_type() == "multipart/alternative" and {"text/plain", "text/html"} <= set(parts)
        payload = parts["text/plain"].get_payload(decode=True)
        assert isinstance(payload, bytes)
        body = payload.decode(parts["text/plain"].get_content_charset() or "utf-8")
        assert ("studententeam" in body) == (languages[mail["To"]] == "nl")
        # the firm's assignment by its title, its team by code and institution; no id of either
        [match] = [m for m in matches if assignments[m["assignment_id"]]["title"] == titles[mail["To"]]]
        assert titles[mail["To"]] in body
        assert teams[match["team_id"]]["code"] in body and match["team_id"] not in body
        assert match["assignment_id"] not in body and match["match_id"] not in body
    # the entrepreneur sees its own match and notice, the institution its own matches
    firm_key = result.keys[f"{FIRMS[0][0]} (entrepreneur)"]
    own = Api(stack.url("matching"), firm_key).get("/matches")
    assert [m["assignment_id"] for m in own] == [m["assignment_id"] for m in matches
                                                 if assignments[m["assignment_id"]]["title"] == FIRMS[0][2]]
    assert len(Api(stack.url("scheduling"), firm_key).get("/notices")) == 1


def test_skeleton_flow_on_the_local_default(make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack()
    result = load_and_run(stack, say=lambda _line: None)
    check_flow(stack, result)


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_skeleton_flow_on_rabbitmq_and_postgres(namespace: str, rabbitmq_url: str, make_postgres_db: Any,
                                                make_stack: Callable[..., LocalStack]) -> None:
    # namespace first: its queues are deleted after the stack's processes have stopped
    stack = make_stack(broker_url=rabbitmq_url, namespace=namespace,
                       database_urls={s: make_postgres_db(s) for s in SERVICES})
    assert stack.broker is None
    result = load_and_run(stack, say=lambda _line: None)
    check_flow(stack, result)
    for service in SERVICES:
        assert Api(stack.url(service), "x").get("/health") == {"status": "ok"}
