"""For scheduling tests that hand it a run of their own making: what intake announces first (the workspace, then
the batch with the names firms read, ``batch.announced`` v2), so notices can name assignments and teams."""

from __future__ import annotations

from typing import Any

from scheduling.adapters import orm
from scheduling.service_layer import services
from sqlalchemy.orm import Session
from werkplaats_shared.contracts import make_envelope


def title_of(assignment_id: str) -> str:
    return f"Webshop {assignment_id[:8]}"  # 8 hex digits: 4 gave two of 80 titles alike in 1 run of 20


def code_of(team_id: str) -> str:
    return f"TEAM-{team_id[:8].upper()}"


def announce(session: Session, p: dict[str, Any]) -> None:
    """Announce the workspace and batch of ``matches.published`` payload ``p``, naming each assignment
    ``title_of(id)`` and each team ``code_of(id)``."""
    if session.get(orm.KnownWorkspace, p["workspace_id"]) is None:
        services.on_workspace_registered(session, make_envelope("workspace.registered", 1, {
            "workspace_id": p["workspace_id"], "coordinator_id": p["coordinator_id"],
            "registered_at": "2030-11-01T09:00:00+00:00"}))
    services.on_batch_announced(session, make_envelope("batch.announced", 2, {
        "batch_id": p["batch_id"], "workspace_id": p["workspace_id"], "coordinator_id": p["coordinator_id"],
        "workspace_name": "Digitale Werkplaats Regio Test", "coordinator_name": "Gemeente Testdorp",
        "period": {"code": p["period"], "starts_on": None, "ends_on": None},
        "assignments": [{"assignment_id": m["assignment_id"], "firm_id": m["firm_id"],
                         "title": title_of(m["assignment_id"]), "firm_name": f"Bedrijf {m['firm_id']}"}
                        for m in p["matches"]],
        "teams": [{"team_id": m["team_id"], "institution_id": m["institution_id"], "code": code_of(m["team_id"]),
                   "institution_name": "Hogeschool Test", "level": "HBO", "skills": ["web"]}
                  for m in p["matches"]]}))


def announced_then(handler: Any) -> Any:
    """``handler`` (on_matches_published) preceded by the announcement of the run's workspace and batch."""
    def handle(session: Session, envelope: Any) -> None:
        announce(session, envelope.payload)
        handler(session, envelope)
    return handle
