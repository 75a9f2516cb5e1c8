"""A re-run published as matches.published v2 notifies only what changed: kept pairs carry over their
answer, deadline, kickoff and links; new pairs get a match notice; firms whose pair was dropped hear the
team is no longer available and their kickoff is cancelled. v1 re-publishes still notify everyone."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.service_layer import services
from werkplaats_shared.contracts import make_envelope

from . import test_scheduling_kickoffs as kickoff_tests
from .scheduling_names import announced_then, code_of, title_of
from .test_matching_scheduling_api import SECRET_KEY, Service
from .test_scheduling_kickoffs import PERIOD, _answer, _mailer
from .test_scheduling_responses import _Collector

svc, smtp = kickoff_tests.svc, kickoff_tests.smtp  # the same fixtures: a scheduling app and an SMTP server

LINKS = ResponseLinks(SECRET_KEY, "http://x")


def _match(firm: str, previous: dict[str, Any] | None = None, team: str | None = None) -> dict[str, Any]:
    return {"match_id": str(uuid.uuid4()), "firm_id": firm, "institution_id": "inst", "score": 0.5,
            "assignment_id": previous["assignment_id"] if previous else str(uuid.uuid4()),
            "team_id": team or (previous["team_id"] if previous else str(uuid.uuid4())),
            "previous_match_id": previous["match_id"] if previous and team is None else None}


def _publish(svc: Service, batch: str, run: str, matches: list[dict[str, Any]], version: int = 2,
             supersedes: str | None = None, unmatched: list[str] | None = None) -> None:
    payload: dict[str, Any] = {
        "run_id": run, "batch_id": batch, "workspace_id": "ws", "coordinator_id": "coord-1", "period": PERIOD,
        "unmatched_assignment_ids": unmatched or [], "matches": matches}
    if version == 2:
        payload["supersedes_run_id"] = supersedes
    else:
        payload["matches"] = [{k: v for k, v in m.items() if k != "previous_match_id"} for m in matches]
    svc.handle(announced_then(services.on_matches_published), make_envelope("matches.published", version, payload))


def _notices(svc: Service) -> list[tuple[str, str]]:
    with svc.infra.session_factory() as session:
        return [(n.kind, n.firm_id) for n in session.execute(
            sa.select(orm.Notice).order_by(orm.Notice.created_at, orm.Notice.id)).scalars()]


def _link(svc: Service, firm: str, match_id: str) -> str:
    with svc.infra.session_factory() as session:
        notice_id = session.execute(sa.select(orm.Notice.id).where(
            orm.Notice.kind == "match_notice", orm.Notice.firm_id == firm)
            .order_by(orm.Notice.created_at)).scalars().first()
    return f"/responses/{LINKS.issue(str(notice_id), match_id)}"


def _send(svc: Service, port: int) -> int:
    return services.send_pending(svc.infra.session_factory, _mailer(port), LINKS)


def test_a_decline_re_run_notifies_only_the_replacement_and_keeps_the_accepted_kickoff(
        svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    batch, run_1, run_2 = (str(uuid.uuid4()) for _ in range(3))
    kept, pending, declined = _match("firm_nl"), _match("firm_nl"), _match("firm_en")
    _publish(svc, batch, run_1, [kept, pending, declined], version=1)
    assert _send(svc, port) == 2
    _answer(svc, kept, "accepted")
    _answer(svc, declined, "declined")
    assert _send(svc, port) == 1  # the kickoff invitation of the accepted match
    with svc.infra.session_factory() as session:
        deadline = session.execute(sa.select(orm.Notice.answer_deadline).where(
            orm.Notice.kind == "match_notice", orm.Notice.firm_id == "firm_nl")).scalar_one()
    before = len(inbox.messages)

    kept_2, pending_2 = _match("firm_nl", kept), _match("firm_nl", pending)
    replacement = _match("firm_en", declined, team=str(uuid.uuid4()))
    _publish(svc, batch, run_2, [kept_2, pending_2, replacement], supersedes=run_1)
    assert _send(svc, port) == 1
    (new_mail,) = inbox.messages[before:]
    assert new_mail["To"] == "office@kapsalon-bloem.nl" and code_of(replacement["team_id"]) in new_mail.get_body(
        preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert _notices(svc).count(("match_notice", "firm_nl")) == 1

    # the accepted firm keeps its answer and its kickoff (same invitation), now under the new match id
    [kickoff] = svc.get("firm_nl", "/kickoffs").get_json()
    assert (kickoff["match_id"], kickoff["status"], kickoff["sequence"]) == (kept_2["match_id"], "proposed", 0)
    with svc.infra.session_factory() as session:
        row = session.get(orm.Kickoff, kept_2["match_id"])
        assert row is not None and row.uid == f"kickoff-{kept['match_id']}@werkplaats" and row.run_id == run_2
        answer = session.get(orm.MatchResponse, kept_2["match_id"])
        assert answer is not None and (answer.decision, answer.run_id) == ("accepted", run_2)
        assert session.get(orm.MatchResponse, kept["match_id"]) is None
        notice = session.execute(sa.select(orm.Notice).where(
            orm.Notice.kind == "match_notice", orm.Notice.firm_id == "firm_nl")).scalar_one()
        assert notice.answer_deadline == deadline  # the deadline does not start again
        assert [m["match_id"] for m in notice.matches] == [kept_2["match_id"], pending_2["match_id"]]

    # the old links open the current match: the accepted one shows its answer, the open one can be answered
    answered = svc.client.get(_link(svc, "firm_nl", kept["match_id"]), headers={"Accept": "application/json"})
    assert answered.status_code == 200
    assert (answered.get_json()["match_id"], answered.get_json()["response"]["decision"]) == (
        kept_2["match_id"], "accepted")
    again = svc.client.post(_link(svc, "firm_nl", kept["match_id"]), data={"decision": "declined"})
    assert again.status_code == 409
    resp = svc.client.post(_link(svc, "firm_nl", pending["match_id"]), data={"decision": "accepted"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with svc.infra.engine.connect() as conn:
        bodies = [json.loads(b) for b in conn.execute(sa.select(orm.outbox.c.body)).scalars()]
    last = [b["payload"] for b in bodies if b["type"] == "match.responded"][-1]
    assert (last["match_id"], last["run_id"], last["response"]) == (pending_2["match_id"], run_2, "accepted")
    # the declined pair is gone: its old link says a new matching replaced it (410, in the firm's language),
    # and its firm got no "no longer available"
    gone = svc.client.get(_link(svc, "firm_en", declined["match_id"]))
    assert gone.status_code == 410 and "This match was withdrawn" in gone.get_data(as_text=True)
    late = svc.client.post(_link(svc, "firm_en", declined["match_id"]), json={"decision": "accepted"})
    assert late.status_code == 410 and late.get_json()["errors"][0]["field"] == "token"
    assert ("match_cancelled", "firm_en") not in _notices(svc)


def test_a_re_run_that_drops_an_accepted_pair_tells_the_firm_and_cancels_its_kickoff(
        svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    batch, run_1, run_2 = (str(uuid.uuid4()) for _ in range(3))
    accepted, other = _match("firm_en"), _match("firm_nl")
    _publish(svc, batch, run_1, [accepted, other])
    assert _send(svc, port) == 2
    _answer(svc, accepted, "accepted")
    assert _send(svc, port) == 1
    before = len(inbox.messages)
    # a coordinator's re-run gives the assignment another team and keeps the other pair
    moved = _match("firm_en", accepted, team=str(uuid.uuid4()))
    _publish(svc, batch, run_2, [moved, _match("firm_nl", other)], supersedes=run_1)
    assert _send(svc, port) == 3
    subjects = sorted(m["Subject"] for m in inbox.messages[before:])
    title = title_of(accepted["assignment_id"])
    assert subjects == ["A student team is no longer available", f'Cancelled: kickoff meeting for "{title}"',
                        f'We have found a student team for your assignment "{title}"']
    assert all(m["To"] == "office@kapsalon-bloem.nl" for m in inbox.messages[before:])
    cancelled = next(m for m in inbox.messages[before:] if m["Subject"].startswith("Cancelled"))
    [part] = [p for p in cancelled.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "CANCEL"
    [kickoff] = svc.get("firm_en", "/kickoffs").get_json()
    assert (kickoff["match_id"], kickoff["status"]) == (accepted["match_id"], "cancelled")
    withdrawn = next(m for m in inbox.messages[before:] if m["Subject"].startswith("A student team"))
    assert code_of(accepted["team_id"]) in withdrawn.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # the dropped match's link no longer opens it: a new matching replaced it
    assert svc.client.get(_link(svc, "firm_en", accepted["match_id"])).status_code == 410


def test_a_withdrawn_assignment_s_firm_gets_no_notice_and_a_v1_re_run_notifies_everyone(
        svc: Service, smtp: tuple[int, _Collector]) -> None:
    port, _ = smtp
    batch, run_1, run_2, run_3 = (str(uuid.uuid4()) for _ in range(4))
    withdrawn, other = _match("firm_en"), _match("firm_nl")
    _publish(svc, batch, run_1, [withdrawn, other])
    # the assignment left the batch: neither matched nor unmatched in the re-run
    kept = _match("firm_nl", other)
    _publish(svc, batch, run_2, [kept], supersedes=run_1)
    assert sorted(_notices(svc)) == [("match_notice", "firm_en"), ("match_notice", "firm_nl")]
    # a v1 re-publish still sends every firm a new notice
    _publish(svc, batch, run_3, [_match("firm_nl", kept)], version=1)
    assert sorted(_notices(svc)) == [("match_notice", "firm_en"), ("match_notice", "firm_nl"),
                                     ("match_notice", "firm_nl")]
    assert _send(svc, port) == 3
