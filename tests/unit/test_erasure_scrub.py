"""Scrubbing stored copies on erasure (werkplaats_shared.erasure) and SQLite keeping no erased byte on disk
(werkplaats_shared.db: secure_delete on every connection, a WAL checkpoint after an erasure)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkplaats_shared.db import checkpoint_after_commit, checkpoint_wal, make_engine, make_session_factory
from werkplaats_shared.erasure import (
    ERASED,
    SKILL_VOCABULARY,
    drop_free_skills,
    free_skills,
    scrub_json_text,
    scrub_texts,
    stored_forms,
)

SNAPSHOT: dict[str, Any] = {
    "batch_id": "b1",
    "teams": [{"team_id": "t1", "skills": ["website", "Jan de Vries", "python"]},
              {"team_id": "t2", "skills": ["website", "Jan de Vries"]}],
    "assignments": [{"assignment_id": "a1", "firm_id": "f1", "required_skills": ["webshop", "bel Piet"],
                     "nice_to_have_skills": ["ux", "Piet"]},
                    {"assignment_id": "a2", "firm_id": "f2", "required_skills": ["Piet"], "nice_to_have_skills": []}],
}


def test_the_vocabulary_holds_the_themes_and_their_skills_and_free_text_is_everything_else() -> None:
    assert {"website", "webshop", "ai", "python", "seo"} <= SKILL_VOCABULARY
    assert free_skills(["website", "Python ", "Jan", "mrk123"]) == ["Jan", "mrk123"]


def test_an_erased_team_loses_its_free_text_skills_and_keeps_the_vocabulary_other_teams_untouched() -> None:
    before = copy.deepcopy(SNAPSHOT)
    scrubbed, removed = drop_free_skills(SNAPSHOT, team_ids={"t1"})
    assert scrubbed["teams"] == [{"team_id": "t1", "skills": ["website", "python"]},
                                 {"team_id": "t2", "skills": ["website", "Jan de Vries"]}]
    assert scrubbed["assignments"] == SNAPSHOT["assignments"]
    assert removed == {"Jan de Vries"}
    assert SNAPSHOT == before  # the input is not changed


def test_an_erased_firm_loses_the_free_text_skills_of_its_assignments_only() -> None:
    scrubbed, removed = drop_free_skills({"payload": SNAPSHOT}, firm_ids={"f1"})
    assert scrubbed["payload"]["assignments"][0]["required_skills"] == ["webshop"]
    assert scrubbed["payload"]["assignments"][0]["nice_to_have_skills"] == ["ux"]
    assert scrubbed["payload"]["assignments"][1] == SNAPSHOT["assignments"][1]
    assert removed == {"bel Piet", "Piet"}


def test_copies_are_replaced_whole_in_values_and_keys_and_inside_sentences_but_ids_are_never_cut() -> None:
    explanations = {"matches": [{"team_id": "Pietabc", "score": {"extra_skills": ["Piet", "ux"]}}],
                    "cells": {"Piet": 2, "ux": 1}, "message": "needs Piet and ux", "id": "xPiety"}
    assert scrub_texts(explanations, {"Piet"}) == {
        "matches": [{"team_id": "Pietabc", "score": {"extra_skills": [ERASED, "ux"]}}],
        "cells": {ERASED: 2, "ux": 1}, "message": f"needs {ERASED} and ux", "id": "xPiety"}
    assert scrub_texts(explanations, set()) is explanations


def test_an_outbox_body_loses_the_subjects_skills_and_the_texts_and_stays_the_same_when_clean() -> None:
    body = json.dumps({"type": "batch.submitted", "payload": SNAPSHOT})
    out = json.loads(scrub_json_text(body, {"bel Piet"}, team_ids={"t1"}))
    assert out["payload"]["teams"][0]["skills"] == ["website", "python"]
    assert out["payload"]["teams"][1]["skills"] == ["website", ERASED]  # the same text elsewhere: a copy
    assert out["payload"]["assignments"][0]["required_skills"] == ["webshop", ERASED]
    assert scrub_json_text(body, {"nothing here"}) == body
    assert scrub_json_text("not json", {"Piet"}) == "not json"


def _raw(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_sqlite_keeps_no_byte_of_a_deleted_row_after_the_checkpoint_that_follows_an_erasure(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    marker = "MrkSecureDelete7f3a"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            conn.execute(sa.text("INSERT INTO t (v) VALUES (:v), ('other')"), {"v": marker})
        checkpoint_wal(engine)  # the marker is now in the database file itself
        assert marker.encode() in _raw(path)
        with engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA secure_delete")).scalar() == 1
        sf = make_session_factory(engine)
        with sf.begin() as session:
            session.execute(sa.text("UPDATE t SET v = '[erased]' WHERE v = :v"), {"v": marker})
            assert marker.encode() in _raw(path)  # still there while the erasure runs
            checkpoint_after_commit(session)
        assert marker.encode() not in _raw(path)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT v FROM t ORDER BY id")).scalars().all() == ["[erased]", "other"]
    finally:
        engine.dispose()


def test_an_erasure_applied_in_a_savepoint_is_checkpointed_once_the_whole_transaction_has_committed(
        tmp_path: Path) -> None:
    # A batched consumer applies each message in a savepoint of one transaction. SQLAlchemy calls after_commit
    # when a savepoint is released too: a checkpoint there waits the busy timeout for the transaction's own
    # write lock, truncates nothing, and the erased bytes stay in the write-ahead log.
    path = tmp_path / "service.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    marker = "MrkSavepoint51c9"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            conn.execute(sa.text("INSERT INTO t (v) VALUES (:v), ('other')"), {"v": marker})
        checkpoint_wal(engine)
        sf = make_session_factory(engine)
        with sf.begin() as session:
            with session.begin_nested():
                session.execute(sa.text("UPDATE t SET v = '[erased]' WHERE v = :v"), {"v": marker})
                checkpoint_after_commit(session)
            with session.begin_nested():  # the next message of the batch
                session.execute(sa.text("UPDATE t SET v = 'other too' WHERE v = 'other'"))
            assert marker.encode() in _raw(path)
        assert marker.encode() not in _raw(path)
        assert Path(f"{path}-wal").stat().st_size == 0
    finally:
        engine.dispose()


def test_a_search_of_stored_json_tries_each_text_escaped_and_as_is() -> None:
    forms = stored_forms(["Café 'Bij Jan'", 'zegt "hoi"'])
    assert {"Café 'Bij Jan'", "Caf\\u00e9 'Bij Jan'", 'zegt \\"hoi\\"'} <= set(forms)
    stored = json.dumps({"skills": ["Café 'Bij Jan'"]})
    assert any(form in stored for form in stored_forms(["Café 'Bij Jan'"]))
