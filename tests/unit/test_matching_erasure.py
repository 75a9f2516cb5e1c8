"""Matching's side of erasure at the service layer, on SQLite: the free-text skills of an erased team or
firm leave the batch's and every run's snapshot and what the runs quoted (explanations, pre-check), a re-run
copies nothing back, a ``batch.submitted`` that waited in a queue is scrubbed on arrival, and a run that was
solving during the erasure records a result without them. Vocabulary skills and other teams stay."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from matching import bootstrap
from matching.adapters import orm
from matching.entrypoints.handlers import HANDLERS
from matching.service_layer import privacy, services
from matching.solver.paths import solve
from werkplaats_shared.auth import Principal
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import Envelope, make_envelope
from werkplaats_shared.db import utcnow
from werkplaats_shared.service import Infrastructure

from ..integration.harness import announce_workspace_of

COORDINATOR = str(uuid.uuid4())
COORD = Principal(COORDINATOR, "coordinator", "key-coord")
TEAM_TEXT, FIRM_TEXT, OTHER_TEXT = "MrkTeam Jan Jansen", "MrkFirm bel Piet", "MrkOther eigen vak"
TEAM_EXTRA = "MrkTeamExtra hobby van Jan"  # a skill nobody asks for: the score breakdown quotes it as extra


@pytest.fixture
def infra(tmp_path: Path) -> Iterator[Infrastructure]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings.from_env("matching", {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3",
                                              "WERKPLAATS_DATA_DIR": str(tmp_path)})
    built = bootstrap.bootstrap(settings)
    try:
        yield built
    finally:
        built.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)


def handle(infra: Infrastructure, envelope: Envelope) -> None:
    with infra.session_factory.begin() as session:
        announce_workspace_of(session, envelope)
        HANDLERS[envelope.type](session, envelope)


def erase(infra: Infrastructure, kind: str, subject_id: str) -> None:
    handle(infra, make_envelope("personal_data.erased", 1, {"subject_kind": kind, "subject_id": subject_id,
                                                            "erased_at": utcnow().isoformat()}))


def submit(infra: Infrastructure) -> str:
    """t-erased works on a-erased (its firm f-erased); t-other on a-other. Each team has a free-text skill
    beside vocabulary ones; a-erased wishes for the firm's free text and its team's."""
    batch_id = str(uuid.uuid4())
    handle(infra, make_envelope("batch.submitted", 1, {
        "batch_id": batch_id, "workspace_id": str(uuid.uuid4()), "coordinator_id": COORDINATOR,
        "period": "2026-Q1", "policy": "max_fit", "auto_publish": True,
        "assignments": [
            {"assignment_id": "a-erased", "firm_id": "f-erased", "accepted_levels": ["HBO"],
             "required_skills": ["website", TEAM_TEXT], "nice_to_have_skills": [FIRM_TEXT], "min_teams": 1,
             "max_teams": 1},
            {"assignment_id": "a-other", "firm_id": "f-other", "accepted_levels": ["MBO"],
             "required_skills": ["python", OTHER_TEXT], "nice_to_have_skills": [], "min_teams": 1,
             "max_teams": 1}],
        "teams": [{"team_id": "t-erased", "institution_id": "inst", "level": "HBO",
                   "skills": ["website", TEAM_TEXT, "ux", TEAM_EXTRA]},
                  {"team_id": "t-other", "institution_id": "inst", "level": "MBO", "skills": ["python", OTHER_TEXT]}]}))
    return batch_id


def work(infra: Infrastructure) -> list[str]:
    done = []
    while (run_id := services.claim_next_run(infra.session_factory)) is not None:
        services.execute_run(infra.session_factory, infra.emit, run_id, "highs", 30)
        done.append(run_id)
    return done


def stored(infra: Infrastructure) -> str:
    """Every batch, run and outbox row of matching's database, as text."""
    with infra.session_factory() as session:
        rows = [*session.execute(sa.select(orm.Batch.snapshot)).scalars(),
                *session.execute(sa.select(orm.RunSnapshot.snapshot)).scalars(),
                *session.execute(sa.select(orm.Run.precheck, orm.Run.diagnosis)).all(),
                *session.execute(sa.select(orm.RunExplanations.explanations)).scalars(),
                *session.execute(sa.select(orm.outbox.c.body)).scalars()]
    return json.dumps([list(r) if isinstance(r, sa.Row) else r for r in rows])


def pairs(infra: Infrastructure, run_id: str) -> set[tuple[str, str]]:
    with infra.session_factory() as session:
        return {(m.team_id, m.assignment_id) for m in services.run_matches(session, run_id)}


def snapshot_skills(infra: Infrastructure) -> dict[str, Any]:
    with infra.session_factory() as session:
        (snapshot,) = session.execute(sa.select(orm.Batch.snapshot)).scalars().all()
    return {**{t["team_id"]: t["skills"] for t in snapshot["teams"]},
            **{a["assignment_id"]: [a["required_skills"], a["nice_to_have_skills"]] for a in snapshot["assignments"]}}


def test_an_erasure_takes_the_free_text_skills_out_of_snapshots_and_runs_and_a_rerun_brings_none_back(
        infra: Infrastructure) -> None:
    batch_id = submit(infra)
    (first,) = work(infra)
    assert pairs(infra, first) == {("t-erased", "a-erased"), ("t-other", "a-other")}
    assert TEAM_TEXT in stored(infra) and FIRM_TEXT in stored(infra)
    with infra.session_factory() as session:
        assert TEAM_EXTRA in json.dumps(session.get(orm.Run, first).explanations)  # type: ignore[union-attr]

    erase(infra, "team", "t-erased")
    erase(infra, "firm_contact", "f-erased")

    text = stored(infra)
    assert TEAM_TEXT not in text and FIRM_TEXT not in text and TEAM_EXTRA not in text
    assert "[erased]" in text  # the first run's explanations quoted the skills; the quotes are replaced
    assert snapshot_skills(infra) == {"t-erased": ["website", "ux"], "t-other": ["python", OTHER_TEXT],
                                      "a-erased": [["website"], []], "a-other": [["python", OTHER_TEXT], []]}

    with infra.session_factory.begin() as session:
        rerun = services.request_run(session, COORD, batch_id, {}).id
    work(infra)
    assert pairs(infra, rerun) == {("t-erased", "a-erased"), ("t-other", "a-other")}  # the team keeps its place
    text = stored(infra)
    assert TEAM_TEXT not in text and FIRM_TEXT not in text and OTHER_TEXT in text


def test_a_batch_that_arrives_after_the_erasure_of_its_team_and_firm_is_stored_without_their_free_text(
        infra: Infrastructure) -> None:
    erase(infra, "team", "t-erased")
    erase(infra, "firm_contact", "f-erased")
    submit(infra)
    assert snapshot_skills(infra)["t-erased"] == ["website", "ux"]
    assert snapshot_skills(infra)["a-erased"] == [["website"], []]
    work(infra)
    text = stored(infra)
    assert TEAM_TEXT not in text and FIRM_TEXT not in text and OTHER_TEXT in text


@pytest.mark.parametrize("noted", [False, True], ids=["snapshot-compared", "erasures-noted-as-the-worker-does"])
def test_a_run_solving_while_its_team_and_firm_are_erased_records_a_result_without_the_erased_skills(
        infra: Infrastructure, noted: bool) -> None:
    """The worker notes the erasures done before it reads the run (``privacy.erasures``) and reads the stored
    snapshot again when recording only if there are more; without that count the snapshots are compared."""
    submit(infra)
    erase(infra, "team", "t-other-never-there")  # an erasure before the run is read changes nothing of it
    run_id = services.claim_next_run(infra.session_factory)
    assert run_id is not None
    with infra.session_factory() as session:  # what a worker reads before solving
        erasures = privacy.erasures(session)
        run = session.get(orm.Run, run_id)
        assert run is not None
        solved_snapshot, problem = copy.deepcopy(run.snapshot), services.problem_of(run)
    solution = solve(problem, "highs", 30)

    erase(infra, "team", "t-erased")  # the erasures come in while the worker solves
    erase(infra, "firm_contact", "f-erased")

    services.record_solution(infra.session_factory, infra.emit, run_id, problem, solution,
                             solved_snapshot=solved_snapshot, erasures_seen=erasures if noted else None)
    with infra.session_factory() as session:
        run = session.get(orm.Run, run_id)
        assert run is not None and run.status == "published"
        recorded = json.dumps([run.snapshot, run.explanations, run.precheck])
    assert solution.matches and "[erased]" in recorded
    assert TEAM_TEXT not in recorded and FIRM_TEXT not in recorded and TEAM_EXTRA not in recorded
    assert OTHER_TEXT in recorded


def test_a_result_page_read_before_an_erasure_shows_none_of_the_erased_text_after_it(infra: Infrastructure) -> None:
    """The result pages keep a big run's parsed result in memory; an erasure (possibly in another process)
    must not leave the removed text on the next page."""
    submit(infra)
    (run_id,) = work(infra)

    def page() -> str:
        with infra.session_factory() as session:
            return json.dumps(services.run_results(session, COORD, run_id, {"show": "matches"}))

    assert TEAM_EXTRA in page()  # the fit's breakdown quotes the team's extra skill
    erase(infra, "team", "t-erased")
    after = page()
    assert TEAM_EXTRA not in after and TEAM_TEXT not in after


def test_a_run_erased_between_its_claim_and_the_workers_read_is_solved_without_the_erased_skills(
        infra: Infrastructure) -> None:
    """The worker solves from the snapshot its claim read, unless an erasure came in since: then from the
    stored, scrubbed one."""
    submit(infra)
    run_id = services.claim_next_run(infra.session_factory)
    assert run_id is not None
    erase(infra, "team", "t-erased")
    erase(infra, "firm_contact", "f-erased")
    services.execute_run(infra.session_factory, infra.emit, run_id, "highs", 30)
    text = stored(infra)
    assert pairs(infra, run_id) == {("t-erased", "a-erased"), ("t-other", "a-other")}
    assert TEAM_TEXT not in text and FIRM_TEXT not in text and TEAM_EXTRA not in text
    assert OTHER_TEXT in text
