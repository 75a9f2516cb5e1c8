"""Long lists page in the database (issue 20): walked by ``after`` (keyset) or by page number, on SQLite and
on PostgreSQL, each list returns every row exactly once while rows are being added; GET /runs does not read
the runs' snapshots or explanations; bad paging parameters are refused with the field and the reason."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkplaats_shared.http import encode_cursor

from benchmarks.lists import (
    START,
    World,
    add_matches,
    add_notices,
    add_runs,
    add_teams,
    intake_world,
    matching_world,
    scheduling_world,
    walk,
)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/lists.sqlite3", str(tmp_path)
    else:
        yield request.getfixturevalue("make_postgres_db")("lists"), str(tmp_path)


def _once(seen: list[dict[str, Any]], expected: list[str]) -> None:
    counts = Counter(item["id"] for item in seen)
    assert [i for i, c in counts.items() if c > 1] == []  # no row twice
    assert [i for i in expected if counts[i] != 1] == []  # every row there at the start, once


def _pages_by_number(world: World, who: str, path: str, size: int, between: Any) -> tuple[list[Any], int]:
    first = world.get(who, f"{path}?page_size={size}")
    total = json.loads(first.headers["X-Pagination"])["total"]
    items, page = list(first.get_json()), 1
    between()
    while len(items) < total:
        page += 1
        response = world.get(who, f"{path}?page_size={size}&page={page}")
        assert response.status_code == 200
        items.extend(response.get_json())
        between()
    return items, total


def test_teams_walked_by_key_or_number_come_once_each_while_teams_are_registered(database: tuple[str, str]) -> None:
    world = intake_world(*database)
    try:
        existing = add_teams(world, 230, START)
        pages = []

        def registering() -> None:  # new teams (after everything) and back-dated ones (an import keeping its
            # own dates: before the walk's position, so not in this walk)
            pages.append(1)
            add_teams(world, 3, START + timedelta(days=len(pages)))
            add_teams(world, 2, START - timedelta(days=len(pages)))

        seen = walk(world, "institution", "/teams", registering, page_size=40)
        _once(seen, existing)
        assert [t["code"] for t in seen[:230]] == [f"T{i:06d}" for i in range(230)]  # in the order they came
        assert len(seen) == 230 + 3 * (len(pages) - 1) and len(pages) > 230 // 40
        everyone = walk(world, "coordinator", "/teams", page_size=100)
        _once(everyone, existing)
        assert len(everyone) == 230 + 5 * len(pages)

        added = []

        def appending() -> None:
            added.append(1)
            add_teams(world, 4, START + timedelta(days=100 + len(added)))

        numbered, total = _pages_by_number(world, "coordinator", "/teams", 50, appending)
        assert total == len(everyone)
        _once(numbered, [t["id"] for t in everyone])
        response = world.get("coordinator", "/teams?page_size=50")
        meta = json.loads(response.headers["X-Pagination"])
        assert meta["total"] == total + 4 * len(added) and meta["total_pages"] == -(-meta["total"] // 50)
        assert "next_after" in meta
        assert world.get("coordinator", "/teams?level=MBO&page_size=50").get_json() == []
    finally:
        world.infra.engine.dispose()


def test_matches_walked_by_key_come_once_each_while_runs_add_matches_anywhere_in_the_order(
        database: tuple[str, str]) -> None:
    world = matching_world(*database)
    try:
        runs = add_runs(world, 4, at=START)
        existing = add_matches(world, runs, 600)
        stop = threading.Event()
        added: list[str] = []

        def adding() -> None:  # another process publishing: matches land before and after the walk's position
            while not stop.is_set():
                added.extend(add_matches(world, [random.choice(runs)], 5))

        writer = threading.Thread(target=adding)
        writer.start()
        try:
            coordinator = walk(world, "coordinator", "/matches", page_size=70)
            firm = walk(world, "firm", "/matches", page_size=100)
        finally:
            stop.set()
            writer.join()
        assert added  # rows were inserted during the walks
        _once(coordinator, existing)
        _once(firm, existing)
        keys = [(m["run_id"], m["assignment_id"], m["id"]) for m in coordinator]
        assert keys == sorted(keys)
    finally:
        world.infra.engine.dispose()


def test_the_runs_list_pages_without_reading_snapshots_or_explanations(database: tuple[str, str]) -> None:
    world = matching_world(*database)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    try:
        existing = add_runs(world, 7, payload_bytes=20_000, at=START)
        sa.event.listen(world.infra.engine, "before_cursor_execute", record)
        seen = walk(world, "coordinator", "/runs", lambda: add_runs(world, 1), page_size=3)
        sa.event.remove(world.infra.engine, "before_cursor_execute", record)
        _once(seen, existing)
        assert {r["id"]: r["figures"] for r in seen if r["id"] in existing} == {
            i: {"served_share": 0.75} for i in existing}
        listing = [s for s in statements if "FROM runs" in s]
        assert listing and not [s for s in listing if "runs.snapshot" in s]
        # the figures are kept apart: no explanations read (the runs added meanwhile write theirs)
        assert not [s for s in statements if "run_explanations" in s and not s.startswith("INSERT")]
        one = world.get("coordinator", f"/runs/{existing[0]}").get_json()
        assert one["figures"] == {"served_share": 0.75}
    finally:
        world.infra.engine.dispose()


def test_notices_walked_by_key_come_once_each_while_notices_are_made(database: tuple[str, str]) -> None:
    world = scheduling_world(*database)
    try:
        existing = add_notices(world, 260, START)
        pages = []

        def making() -> None:
            pages.append(1)
            add_notices(world, 6, START + timedelta(days=len(pages)))

        seen = walk(world, "firm", "/notices", making, page_size=50)
        _once(seen, existing)
        assert len(seen) == 260 + 6 * (len(pages) - 1)  # made after the walk's position (the last after the walk)
        coordinator = walk(world, "coordinator", "/notices", page_size=100)
        _once(coordinator, [n["id"] for n in seen])
    finally:
        world.infra.engine.dispose()


def test_bad_paging_parameters_are_refused_with_the_field_and_the_reason(tmp_path: Path) -> None:
    world = matching_world(f"sqlite:///{tmp_path}/m.sqlite3", str(tmp_path))
    teams = intake_world(f"sqlite:///{tmp_path}/i.sqlite3", str(tmp_path))
    try:
        add_teams(teams, 3, START)
        teams_cursor = json.loads(teams.get("institution", "/teams?page_size=1").headers["X-Pagination"])["next_after"]
        add_matches(world, add_runs(world, 1, at=START), 3)
        cursor = json.loads(world.get("coordinator", "/matches?page_size=1").headers["X-Pagination"])["next_after"]
        assert len(world.get("coordinator", f"/matches?page_size=5&after={cursor}").get_json()) == 2
        for query, field in [("page=0", "query.page"), ("page=x", "query.page"), ("page_size=0", "query.page_size"),
                             ("page=92615532060542021679004205973504", "query.page"),  # no database's offset
                             ("page_size=101", "query.page_size"), ("after=%%%", "query.after"),
                             ("after=" + "A" * 1200, "query.after"), ("after=W10", "query.after"),
                             (f"after={teams_cursor}", "query.after"),  # another list's position
                             ("after=" + encode_cursor(["run", "a\x00", "id"]), "query.after"),  # no db takes
                             (f"after={cursor}&page=2", "query.page")]:
            response = world.get("coordinator", f"/matches?{query}")
            assert response.status_code == 422, query
            body = response.get_json()
            assert [e["field"] for e in body["errors"]] == [field], (query, body)
            assert all(e["reason"] for e in body["errors"])
    finally:
        world.infra.engine.dispose()
        teams.infra.engine.dispose()


def test_a_position_keeps_its_place_when_its_row_is_gone(tmp_path: Path) -> None:
    world = scheduling_world(f"sqlite:///{tmp_path}/s.sqlite3", str(tmp_path))
    try:
        ids = add_notices(world, 5, START)
        meta = json.loads(world.get("firm", "/notices?page_size=2").headers["X-Pagination"])
        from scheduling.adapters import orm

        with world.infra.session_factory.begin() as session:
            session.execute(sa.delete(orm.Notice).where(orm.Notice.id == ids[1]))
        rest = world.get("firm", f"/notices?page_size=2&after={meta['next_after']}")
        assert [n["id"] for n in rest.get_json()] == ids[2:4]
        assert set(json.loads(rest.headers["X-Pagination"])) == {"page_size", "next_after"}  # no count
    finally:
        world.infra.engine.dispose()


def test_the_portal_reads_a_whole_list_by_position_each_team_once(tmp_path: Path) -> None:
    from portal.adapters.clients import ServiceClient
    from werkzeug.serving import make_server

    world = intake_world(f"sqlite:///{tmp_path}/i.sqlite3", str(tmp_path))
    server = make_server("127.0.0.1", 0, world.client.application, threaded=True)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    asked: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        asked.append(statement)

    try:
        existing = add_teams(world, 250, START)
        sa.event.listen(world.infra.engine, "before_cursor_execute", record)
        client = ServiceClient(f"http://127.0.0.1:{server.server_port}")
        teams = client.get_all("/teams", world.keys["institution"])
        assert [t["id"] for t in teams] == existing
        pages = [s for s in asked if "FROM teams" in s and "count(" not in s]
        assert len(pages) == 3 and sum("OFFSET" in s and "(teams.created_at, teams.id) >" not in s
                                       for s in pages) == 1  # the first page by number, the others by key
        assert client.get_all("/teams", world.keys["institution"], limit=120) == teams[:120]
    finally:
        sa.event.remove(world.infra.engine, "before_cursor_execute", record)
        server.shutdown()
        serving.join()
        world.infra.engine.dispose()
