"""Fakes and a small world for intake's service-layer tests: a real in-memory SQLite database made from
intake's own metadata, one transaction per use case (as the API and the consumer run them), and a fake
outbox port that keeps what each committed use case emitted, read back through the contracts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from intake.adapters import orm
from intake.entrypoints import schemas
from intake.service_layer import services
from sqlalchemy.orm import Session
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import Envelope, make_envelope, parse_envelope
from werkplaats_shared.db import make_engine, make_session_factory

T = TypeVar("T")


class FakeEmit:
    """The outbox port. Each envelope is read back as a consumer would read it (envelope and payload
    validated against its contract); envelopes emitted in a transaction that rolled back are dropped,
    as their outbox rows would be."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self._pending: list[Envelope] = []

    def __call__(self, envelope: Envelope) -> None:
        assert envelope.producer == "intake"
        received = parse_envelope(json.loads(envelope.to_json()))
        assert received.payload == envelope.payload
        self._pending.append(received)

    def commit(self) -> None:
        self.published.extend(self._pending)
        self._pending.clear()

    def rollback(self) -> None:
        self._pending.clear()

    def payloads(self, message_type: str) -> list[dict[str, Any]]:
        return [e.payload for e in self.published if e.type == message_type]

    def types(self) -> list[str]:
        return [e.type for e in self.published]


class Database:
    """Intake's schema in a private in-memory SQLite database, and a unit of work over it."""

    def __init__(self) -> None:
        self.engine = make_engine("sqlite:///:memory:")
        orm.metadata.create_all(self.engine)
        self.session_factory = make_session_factory(self.engine)
        self.emit = FakeEmit()

    def run(self, use_case: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one use case in its own transaction: commit and publish its envelopes, or roll back both."""
        session = self.session_factory()
        try:
            with session.begin():
                result = use_case(session, *args, **kwargs)
        except BaseException:
            self.emit.rollback()
            raise
        finally:
            session.close()
        self.emit.commit()
        return result

    def get(self, model: type[T], object_id: str) -> T:
        with self.session_factory() as session:
            found = session.get(model, object_id)
            assert found is not None, f"no {model.__name__} {object_id}"
            return found

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: what a refused request must leave as it was."""
        with self.engine.connect() as conn:
            return {t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
                    for t in orm.metadata.sorted_tables}

    def close(self) -> None:
        self.engine.dispose()


def workspace_data(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Werkplaats Amsterdam-Noord", "municipalities": ["GM0363", "GM0384"],
        "periods": [{"code": "2025-Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"},
                    {"code": "2025-Q2", "starts_on": "2025-04-07", "ends_on": "2025-06-27"}],
    }
    return dict(schemas.WorkspaceIn().load({**body, **over}))


def firm_data(**over: Any) -> dict[str, Any]:
    body = {"kvk_number": "12345678", "sector": "bakkerij", "size_class": "micro", "municipality": "GM0363"}
    return dict(schemas.FirmIn().load({**body, **over}))


def assignment_data(workspace_id: str, /, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workspace_id": workspace_id, "title": "Webwinkel voor de bakkerij",
        "description": "Bestellen via de site, ophalen in de winkel.", "period": "2025-Q1",
        "accepted_levels": ["HBO", "WO"], "required_skills": ["python"], "nice_to_have_skills": ["ux"],
        "min_teams": 1, "max_teams": 2,
    }
    return dict(schemas.AssignmentIn().load({**body, **over}))


def team_data(workspace_id: str, /, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"workspace_id": workspace_id, "code": "HE-T01", "level": "HBO", "size": 4,
                            "skills": ["python", "ux"], "period": "2025-Q1"}
    return dict(schemas.TeamIn().load({**body, **over}))


def capacity_data(workspace_id: str, /, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"workspace_id": workspace_id, "programme": "HBO-ICT", "period": "2025-Q1",
                            "level": "HBO", "teams": 3, "team_size_min": 3, "team_size_max": 5,
                            "skills": ["python"], "supervision_hours": 60}
    return dict(schemas.CapacityIn().load({**body, **over}))


def batch_data(workspace_id: str, assignment_ids: list[str], /, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"workspace_id": workspace_id, "period": "2025-Q1", "assignment_ids": assignment_ids}
    return dict(schemas.BatchIn().load({**body, **over}))


def institution_data(**over: Any) -> dict[str, Any]:
    return dict(schemas.InstitutionPatch().load(over))


@dataclass
class World:
    """Two coordinators with a workspace each (A: Amsterdam and Diemen, 2025-Q1/Q2; B: Zwolle, 2025-Q1),
    an HBO/MBO and a WO institution, and two firms with a profile in A's area."""

    db: Database
    who: dict[str, Principal] = field(default_factory=dict)
    ws: dict[str, str] = field(default_factory=dict)

    @property
    def emit(self) -> FakeEmit:
        return self.db.emit

    def org(self, who: str) -> str:
        return self.who[who].organisation_id

    def add_org(self, who: str, role: str, levels: list[str] | None = None) -> Principal:
        def create(session: Session) -> Principal:
            org, key = services.create_organisation(session, self.emit, name=f"Organisatie {who}", role=role,
                                                    levels=levels)
            return Principal(organisation_id=org.id, role=role, key_id=key.split("_", 2)[1])

        self.who[who] = self.db.run(create)
        return self.who[who]

    def submit(self, who: str, workspace: str = "a", **over: Any) -> orm.Assignment:
        assignment, _ = self.db.run(services.submit_assignment, self.emit, self.who[who],
                                    assignment_data(self.ws[workspace], **over))
        return assignment

    def set_status(self, assignment_id: str, status: str) -> None:
        """Put an assignment in a state directly (test set-up for states reached through other services)."""
        with self.db.session_factory.begin() as session:
            session.execute(sa.update(orm.Assignment).where(orm.Assignment.id == assignment_id)
                            .values(status=status))

    def status(self, assignment_id: str) -> str:
        return self.db.get(orm.Assignment, assignment_id).status


def make_world(db: Database) -> World:
    world = World(db)
    world.add_org("coord_a", "coordinator")
    world.add_org("coord_b", "coordinator")
    world.add_org("inst_1", "institution", ["HBO", "MBO"])
    world.add_org("inst_2", "institution", ["WO"])
    world.add_org("firm_1", "entrepreneur")
    world.add_org("firm_2", "entrepreneur")
    world.ws["a"] = db.run(services.create_workspace, world.who["coord_a"], workspace_data()).id
    world.ws["b"] = db.run(services.create_workspace, world.who["coord_b"], workspace_data(
        name="Werkplaats Zwolle", municipalities=["GM0193"],
        periods=[{"code": "2025-Q1", "starts_on": "2025-01-06", "ends_on": "2025-03-28"}])).id
    db.run(services.update_institution, world.who["inst_1"], institution_data(
        programmes=["HBO-ICT", "Software Development"], campuses=[{"name": "Noord", "municipality": "GM0363"}]))
    db.run(services.update_institution, world.who["inst_2"], institution_data(
        programmes=["Informatica"], campuses=[{"name": "Science Park", "municipality": "GM0344"}]))
    db.run(services.register_firm, world.who["firm_1"], firm_data(), create=True)
    db.run(services.register_firm, world.who["firm_2"], firm_data(kvk_number="87654321", municipality="GM0384"),
           create=True)
    return world


def published(run_id: str, batch_id: str, world: World, matches: list[tuple[str, str, str]],
              unmatched: list[str]) -> Envelope:
    """A ``matches.published`` envelope as matching sends it: (match_id, assignment_id, team_id) triples."""
    with world.db.session_factory() as session:
        batch = session.get(orm.Batch, batch_id)
        assert batch is not None
        rows = []
        for match_id, assignment_id, team_id in matches:
            assignment, team = session.get(orm.Assignment, assignment_id), session.get(orm.Team, team_id)
            assert assignment is not None and team is not None
            rows.append({"match_id": match_id, "assignment_id": assignment_id, "team_id": team_id,
                         "firm_id": assignment.firm_id, "institution_id": team.institution_id, "score": 0.75})
        ws = session.get(orm.Workspace, batch.workspace_id)
        assert ws is not None
        payload = {"run_id": run_id, "batch_id": batch_id, "workspace_id": ws.id,
                   "coordinator_id": ws.organisation_id, "period": batch.period, "matches": rows,
                   "unmatched_assignment_ids": unmatched}
    return _incoming("matches.published", payload)


def responded(match: Envelope, match_id: str, response: str) -> Envelope:
    """A ``match.responded`` envelope as scheduling sends it for one match of a published run."""
    found = next(m for m in match.payload["matches"] if m["match_id"] == match_id)
    return _incoming("match.responded", {
        "match_id": match_id, "run_id": match.payload["run_id"], "batch_id": match.payload["batch_id"],
        "assignment_id": found["assignment_id"], "team_id": found["team_id"], "firm_id": found["firm_id"],
        "response": response, "responded_at": "2025-01-20T10:00:00+00:00"})


def _incoming(message_type: str, payload: dict[str, Any]) -> Envelope:
    """An envelope as the consumer hands it over: built by its producer, then parsed from the wire."""
    return parse_envelope(json.loads(make_envelope(message_type, 1, payload).to_json()))


def rows_of(db: Database, model: Any, **where: Any) -> list[Any]:
    with db.session_factory() as session:
        return list(session.execute(sa.select(model).filter_by(**where)).scalars())
