"""Intake's use cases. Each runs inside one transaction: business rows and outgoing messages
commit together (the outbox)."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from werkplaats_shared import claimcheck, geo
from werkplaats_shared.auth import Principal, generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import LEVELS, SCOPES, SNAPSHOT_BODY_FIELDS, Envelope, make_envelope
from werkplaats_shared.db import covers_workspace, utcnow

from ..adapters import orm
from ..domain.model import (
    HANDED_OVER_STATUSES,
    OPEN_STATUSES,
    STUCK_BATCH_STATUSES,
    TRANSITIONS,
    AssignmentStatus,
    BatchStatus,
    CapacityRow,
    DomainError,
    Routing,
    check_batch_stuck,
    check_fairness_floors,
    check_kvk_number,
    check_levels_offered,
    check_period,
    check_preferred_levels,
    check_team_range,
    route,
    sum_capacities,
    supervision_hours,
    transition,
)

log = logging.getLogger(__name__)

Emit = Callable[[Envelope], None]
# Measured with benchmarks/batch_submit.py (benchmarks/README.md) on the shared 2-core machine, load average 5
# to 9: POST /batches of 50,000 open assignments with 100,000 teams over 10 workspaces takes 55 s on SQLite and
# 59 s on PostgreSQL (linear in the round: 2,000 take 2.4 s there); its 52 MB snapshot goes by reference and
# matching takes it in in about 30 s; the optimiser solves such a round in about 10 s. Beyond 50,000 a request
# would outlast a minute on this machine: split the round. A listed batch is bounded by the 1 MiB request body
# instead: 25,000 ids.
MAX_BATCH_ASSIGNMENTS = 50_000
MAX_LISTED_ASSIGNMENTS = 25_000
MAX_BATCH_WORKSPACES = 50


class NotFound(Exception):
    pass


class NotYetReceived(Exception):
    """A message refers to something intake has not received yet: messages from different producers
    arrive on different queues in no fixed order. Not a DomainError, so the consumer redelivers the
    message later, a bounded number of times, before it dead-letters it."""


def _new_id() -> str:
    return str(uuid.uuid4())


# ---- organisations and keys -----------------------------------------------------------------


def create_organisation(session: Session, emit: Emit, *, name: str, role: str,
                        levels: list[str] | None = None) -> tuple[orm.Organisation, str]:
    ((org, key),) = create_organisations(session, emit, [(name, role, levels or [])])
    return org, key


def create_organisations(session: Session, emit: Emit,
                         wanted: list[tuple[str, str, list[str]]]) -> list[tuple[orm.Organisation, str]]:
    """Organisations (name, role, levels) and the first API key of each, stored in one round trip per table."""
    now = utcnow()
    orgs = [orm.Organisation(id=_new_id(), name=name, role=role, levels=sorted(set(levels)), created_at=now)
            for name, role, levels in wanted]
    session.add_all(orgs)
    session.flush()
    return list(zip(orgs, _issue_keys(session, emit, orgs), strict=True))


def issue_key(session: Session, emit: Emit, organisation_id: str) -> str:
    org = session.get(orm.Organisation, organisation_id)
    if org is None:
        raise NotFound(organisation_id)
    if org.deactivated_at is not None:
        raise DomainError("organisation_id", "the organisation is deactivated", 409)
    return _issue_keys(session, emit, [org])[0]


def _issue_keys(session: Session, emit: Emit, orgs: list[orm.Organisation]) -> list[str]:
    """A new key with every scope for each organisation (one insert for all); only the hashes are stored."""
    keys = [generate_key() for _ in orgs]
    now = utcnow()
    if orgs:
        session.execute(orm.api_keys.insert(), [
            {"key_id": key.key_id, "organisation_id": org.id, "role": org.role, "secret_hash": key.secret_hash,
             "created_at": now, "scopes": list(SCOPES)} for org, key in zip(orgs, keys, strict=True)])
    for org, key in zip(orgs, keys, strict=True):
        emit(make_envelope("apikey.issued", 2, {
            "key_id": key.key_id, "organisation_id": org.id, "role": org.role,
            "secret_hash": key.secret_hash, "issued_at": now.isoformat(), "scopes": list(SCOPES),
        }))
    return [str(key.plaintext) for key in keys]


def revoke_key(session: Session, emit: Emit, key_id: str) -> None:
    now = utcnow()
    result = session.execute(orm.api_keys.update().where(orm.api_keys.c.key_id == key_id)
                             .values(revoked_at=now))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(key_id)
    emit(make_envelope("apikey.revoked", 1, {"key_id": key_id, "revoked_at": now.isoformat()}))


def caller_organisation(session: Session, principal: Principal) -> orm.Organisation:
    org = session.get(orm.Organisation, principal.organisation_id)
    if org is None:
        raise NotFound(principal.organisation_id)
    return org


# ---- workspaces -----------------------------------------------------------------------------


def create_workspace(session: Session, principal: Principal, data: dict[str, Any]) -> orm.Workspace:
    codes = [p["code"] for p in data["periods"]]
    if len(codes) != len(set(codes)):
        raise DomainError("periods", "period codes must be unique")
    for i, p in enumerate(data["periods"]):
        if p["starts_on"] > p["ends_on"]:
            raise DomainError(f"periods.{i}.ends_on", "a period must not end before it starts")
    ws = orm.Workspace(
        id=_new_id(), organisation_id=principal.organisation_id, name=data["name"],
        municipalities=sorted(set(data["municipalities"])),
        periods=[{"code": p["code"], "starts_on": p["starts_on"].isoformat(),
                  "ends_on": p["ends_on"].isoformat()} for p in data["periods"]],
        created_at=utcnow(),
    )
    session.add(ws)
    session.info.pop("working_areas", None)
    return ws


def get_workspace(session: Session, workspace_id: str) -> orm.Workspace:
    ws = session.get(orm.Workspace, workspace_id)
    if ws is None:
        raise NotFound(workspace_id)
    return ws


def _workspace_for_input(session: Session, workspace_id: str) -> orm.Workspace:
    ws = session.get(orm.Workspace, workspace_id)
    if ws is None:
        raise DomainError("workspace_id", "no such workspace")
    return ws


# ---- teams and assignments ------------------------------------------------------------------

# session.info key: where each assignment a teams import names as a preference is (id -> (workspace, period)),
# read once for the whole file; register_team uses it instead of a query per row while it is there
ASSIGNMENT_PLACES = "intake.assignment_places"


def register_team(session: Session, principal: Principal, data: dict[str, Any],
                  emit: Emit | None = None) -> orm.Team:
    institution = caller_organisation(session, principal)
    ws = _workspace_for_input(session, data["workspace_id"])
    check_levels_offered(institution.levels, data["level"])
    check_period(ws.periods, data["period"])
    campus = data.get("campus")
    if campus is not None and campus not in {c["name"] for c in institution.campuses}:
        raise DomainError("campus", "not one of the institution's campuses (PATCH /institution)")
    preferences = list(dict.fromkeys(data.get("preferences", [])))
    if preferences:
        places: dict[str, tuple[str, str]] | None = session.info.get(ASSIGNMENT_PLACES)
        if places is not None:  # an import looked up every row's preferences at once
            known = {i for i in preferences if places.get(i) == (ws.id, data["period"])}
        else:
            known = set(session.execute(sa.select(orm.Assignment.id).where(
                orm.Assignment.id.in_(preferences), orm.Assignment.workspace_id == ws.id,
                orm.Assignment.period == data["period"])).scalars())
        for i, assignment_id in enumerate(preferences):
            if assignment_id not in known:
                raise DomainError(f"preferences.{i}", "no such assignment in this workspace and period")
    team = orm.Team(
        id=_new_id(), institution_id=institution.id, workspace_id=ws.id, code=data["code"],
        level=data["level"], size=data["size"], skills=sorted(set(data["skills"])),
        period=data["period"], created_at=utcnow(), campus=campus,
        travel_limit_km=data.get("travel_limit_km"), remote_allowed=data.get("remote_allowed", True),
        preferences=preferences,
    )
    session.add(team)
    set_committed_value(team, "institution", institution)  # its name in the answer, without another query
    if emit is not None:
        emit(make_envelope("team.registered", 1, {
            "team_id": team.id, "institution_id": institution.id, "workspace_id": ws.id, "level": team.level,
            "period": team.period, "skills": team.skills}))
    return team


def audit(session: Session, principal: Principal, action: str, object_type: str, object_id: str,
          details: dict[str, Any]) -> None:
    session.add(orm.AuditEntry(at=utcnow(), actor_organisation_id=principal.organisation_id,
                               actor_key_id=principal.key_id, action=action, object_type=object_type,
                               object_id=object_id, details=details))


def working_areas(session: Session) -> dict[str, frozenset[str]]:
    """Each workspace's municipalities, oldest workspace first (it serves an area claimed twice).
    Read once per transaction (an import routes thousands of rows); creating a workspace resets it."""
    cached: dict[str, frozenset[str]] | None = session.info.get("working_areas")
    if cached is None:
        cached = {ws_id: frozenset(area) for ws_id, area in session.execute(
            sa.select(orm.Workspace.id, orm.Workspace.municipalities)
            .order_by(orm.Workspace.created_at, orm.Workspace.id)).all()}
        session.info["working_areas"] = cached
    return cached


def register_firm(session: Session, principal: Principal, data: dict[str, Any], *, create: bool) -> orm.Organisation:
    """Create (once) or update the calling firm's profile; the firm is placed with the workspace whose
    working area covers its municipality (none when no workspace covers it)."""
    firm = caller_organisation(session, principal)
    if create and firm.kvk_number is not None:
        raise DomainError("kvk_number", "the firm profile exists already; change it with PATCH /firm", 409)
    if not create and firm.kvk_number is None:
        raise NotFound(firm.id)
    if "kvk_number" in data:
        check_kvk_number(data["kvk_number"])
        taken = session.execute(sa.select(orm.Organisation.id).where(
            orm.Organisation.kvk_number == data["kvk_number"], orm.Organisation.id != firm.id)).first()
        if taken is not None:
            raise DomainError("kvk_number", "another firm is registered with this KvK number", 409)
    if "municipality" in data:  # before the profile changes: one UPDATE of the firm, not one before the query
        data = {**data, "workspace_id": covering_workspace(session, data["municipality"])}
    for name, value in data.items():
        setattr(firm, name, value)
    session.flush()
    return firm


def covering_workspace(session: Session, code: str | None) -> str | None:
    """The workspace whose working area covers the municipality, the oldest where two do (as ``working_areas``);
    from the transaction's working areas when read already, else by one query for that one municipality."""
    if code is None:
        return None
    cached: dict[str, frozenset[str]] | None = session.info.get("working_areas")
    if cached is not None:
        return next((ws for ws, area in cached.items() if code in area), None)
    # JSON is text in SQLite and PostgreSQL alike: a list of codes holds each as a quoted string
    found: str | None = session.execute(
        sa.select(orm.Workspace.id).where(sa.cast(orm.Workspace.municipalities, sa.Text).contains(
            json.dumps(code), autoescape=True))
        .order_by(orm.Workspace.created_at, orm.Workspace.id).limit(1)).scalar_one_or_none()
    return found


def update_institution(session: Session, principal: Principal, data: dict[str, Any]) -> orm.Organisation:
    institution = caller_organisation(session, principal)
    if "campuses" in data:
        names = [c["name"] for c in data["campuses"]]
        if len(names) != len(set(names)):
            raise DomainError("campuses", "campus names must be unique")
        data = {**data, "campuses": [{"name": c["name"], "municipality": c["municipality"]} for c in data["campuses"]]}
    if "programmes" in data:
        data = {**data, "programmes": sorted(set(data["programmes"]))}
    if "blocks" in data:
        seen: set[tuple[str, str]] = set()
        for i, block in enumerate(data["blocks"]):
            ws = session.get(orm.Workspace, block["workspace_id"])
            if ws is None:
                raise DomainError(f"blocks.{i}.workspace_id", "no such workspace")
            try:
                check_period(ws.periods, block["period"])
            except DomainError as exc:
                raise DomainError(f"blocks.{i}.period", exc.reason) from None
            if (block["code"], ws.id) in seen:
                raise DomainError(f"blocks.{i}.code", "each block is mapped once per workspace")
            seen.add((block["code"], ws.id))
        data = {**data, "blocks": [dict(b) for b in data["blocks"]]}
    for name, value in data.items():
        setattr(institution, name, value)
    session.flush()
    return institution


def register_capacity(session: Session, emit: Emit, principal: Principal, data: dict[str, Any]) -> orm.Capacity:
    institution = caller_organisation(session, principal)
    ws = _workspace_for_input(session, data["workspace_id"])
    check_period(ws.periods, data["period"])
    check_levels_offered(institution.levels, data["level"])
    if data["programme"] not in institution.programmes:
        raise DomainError("programme", "not one of the institution's programmes (PATCH /institution)")
    if data["team_size_min"] > data["team_size_max"]:
        raise DomainError("team_size_min", "team_size_min must not exceed team_size_max")
    capacity = orm.Capacity(
        id=_new_id(), institution_id=institution.id, workspace_id=ws.id, programme=data["programme"],
        period=data["period"], level=data["level"], teams=data["teams"], team_size_min=data["team_size_min"],
        team_size_max=data["team_size_max"], skills=sorted(set(data["skills"])),
        supervision_hours=data["supervision_hours"], created_at=utcnow())
    session.add(capacity)
    emit(make_envelope("capacity.registered", 1, {
        "capacity_id": capacity.id, "institution_id": institution.id, "workspace_id": ws.id,
        "period": capacity.period, "level": capacity.level, "teams": capacity.teams,
        "team_size_min": capacity.team_size_min, "team_size_max": capacity.team_size_max,
        "skills": capacity.skills, "supervision_hours": capacity.supervision_hours}))
    return capacity


def visible_capacities(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Capacity).order_by(orm.Capacity.created_at, orm.Capacity.id)
    if principal.role == "institution":
        return query.where(orm.Capacity.institution_id == principal.organisation_id)
    if principal.role == "coordinator":
        return query.join(orm.Workspace).where(orm.Workspace.organisation_id == principal.organisation_id)
    return query.where(sa.false())


def submit_assignment(session: Session, emit: Emit, principal: Principal,
                      data: dict[str, Any]) -> tuple[orm.Assignment, Routing]:
    """Submit an assignment to a workspace. A firm outside that workspace's working area is never
    silently accepted or dropped: its assignment goes to the workspace that covers the firm, or the
    firm is referred to the support schemes of the catalogue (and notified through firm.referred)."""
    firm = caller_organisation(session, principal)
    if firm.municipality is None:
        raise DomainError("firm", "register the firm first (POST /firm) so we know where it is")
    requested = _workspace_for_input(session, data["workspace_id"])
    routing = route(firm.municipality, requested.id, working_areas(session))
    ws = get_workspace(session, routing.workspace_id)
    try:
        check_period(ws.periods, data["period"])
    except DomainError as exc:
        if routing.outcome != "routed":
            raise
        raise DomainError("period", f"{exc.reason}; the firm's area is served by workspace {ws.name}, "
                                    "whose calendar has other periods") from None
    check_team_range(data["min_teams"], data["max_teams"])
    preferred_levels = list(dict.fromkeys(data.get("preferred_levels", [])))
    check_preferred_levels(data["accepted_levels"], preferred_levels)
    preferred_institutions = _known_institutions(session, data.get("preferred_institutions", []))
    status = AssignmentStatus.REFERRED if routing.outcome == "referred" else AssignmentStatus.SUBMITTED
    assignment = orm.Assignment(
        id=_new_id(), firm_id=principal.organisation_id, workspace_id=ws.id, batch_id=None,
        title=data["title"], description=data["description"], period=data["period"],
        accepted_levels=sorted(set(data["accepted_levels"])),
        required_skills=sorted(set(data["required_skills"])),
        nice_to_have_skills=sorted(set(data["nice_to_have_skills"])),
        min_teams=data["min_teams"], max_teams=data["max_teams"], theme=data.get("theme"),
        kind=data.get("kind", "project"), mode=data.get("mode", "on_site"),
        preferred_institutions=preferred_institutions, preferred_levels=preferred_levels,
        routed_from_workspace_id=requested.id if routing.outcome == "routed" else None,
        status=status.value, created_at=utcnow(),
    )
    session.add(assignment)
    session.flush()
    set_committed_value(assignment, "firm", firm)  # its name in the answer, without another query
    if routing.outcome == "referred":
        refer(session, emit, firm, assignment, requested.id, routing.reason)
    else:
        emit(make_envelope("assignment.submitted", 1, {
            "assignment_id": assignment.id, "firm_id": firm.id, "workspace_id": ws.id, "period": assignment.period,
            "theme": assignment.theme, "accepted_levels": assignment.accepted_levels,
            "routed_from_workspace_id": assignment.routed_from_workspace_id}))
    return assignment, routing


def _known_institutions(session: Session, ids: list[str]) -> list[str]:
    """The firm's ranked institution wishes, each once, every one an institution."""
    ranked = list(dict.fromkeys(ids))
    if ranked:
        known = set(session.execute(sa.select(orm.Organisation.id).where(
            orm.Organisation.id.in_(ranked), orm.Organisation.role == "institution")).scalars())
        for i, institution_id in enumerate(ranked):
            if institution_id not in known:
                raise DomainError(f"preferred_institutions.{i}", "no such institution")
    return ranked


def refer(session: Session, emit: Emit, firm: orm.Organisation, assignment: orm.Assignment,
          from_workspace_id: str, reason: str) -> orm.Referral:
    schemes = [s for s in _schemes_of(session, {orm.NATIONAL, from_workspace_id}, active_only=True)
               if assignment.theme is None or not s.themes or assignment.theme in s.themes]
    referral = orm.Referral(id=_new_id(), firm_id=firm.id, assignment_id=assignment.id,
                            from_workspace_id=from_workspace_id, scheme_codes=[s.code for s in schemes],
                            reason=reason, created_at=utcnow())
    session.add(referral)
    announce_workspace(session, emit, get_workspace(session, from_workspace_id))
    emit(make_envelope("firm.referred", 1, {
        "referral_id": referral.id, "firm_id": firm.id, "assignment_id": assignment.id,
        "from_workspace_id": from_workspace_id,
        "coordinator_id": get_workspace(session, from_workspace_id).organisation_id,
        "scheme_codes": referral.scheme_codes,
        "schemes": [{"code": s.code, "label_nl": s.name_nl, "label_en": s.name_en, "url": s.url} for s in schemes],
        "reason": "outside_working_area"}))
    return referral


def referral_query(principal: Principal, workspace_id: str | None = None,
                   newest_first: bool = False) -> sa.Select[Any]:
    """The referrals the principal may see (a firm its own, a coordinator its workspaces'), of one workspace
    if asked, oldest or newest first."""
    if newest_first:
        query = sa.select(orm.Referral).order_by(orm.Referral.created_at.desc(), orm.Referral.id.desc())
    else:
        query = sa.select(orm.Referral).order_by(orm.Referral.created_at, orm.Referral.id)
    if workspace_id is not None:
        query = query.where(orm.Referral.from_workspace_id == workspace_id)
    if principal.role == "entrepreneur":
        query = query.where(orm.Referral.firm_id == principal.organisation_id)
    elif principal.role == "coordinator":
        query = query.join(orm.Workspace, orm.Workspace.id == orm.Referral.from_workspace_id).where(
            orm.Workspace.organisation_id == principal.organisation_id)
    else:
        query = query.where(sa.false())
    return query


# ---- referral schemes: each workspace's own, and the national list ---------------------------

SCHEME_FIELDS = ("name_nl", "name_en", "url", "themes", "active")
OPERATOR = Principal(organisation_id="operator", role="operator", key_id="cli")  # who the admin command acts as


def _schemes_of(session: Session, scopes: set[str], active_only: bool = False) -> list[orm.ReferralScheme]:
    """The schemes of these scopes by code; a code the national list has is the national scheme (a
    workspace cannot shadow a national scheme)."""
    query = sa.select(orm.ReferralScheme).where(orm.ReferralScheme.scope.in_(sorted(scopes)))
    if active_only:
        query = query.where(orm.ReferralScheme.active.is_(True))
    found: dict[str, orm.ReferralScheme] = {}
    for scheme in session.execute(query.order_by(orm.ReferralScheme.code, orm.ReferralScheme.scope)).scalars():
        if scheme.code not in found or scheme.national:
            found[scheme.code] = scheme
    return [found[code] for code in sorted(found)]


def applicable_schemes(session: Session, principal: Principal) -> list[orm.ReferralScheme]:
    """The caller's applicable list: the national schemes, plus a coordinator's own workspaces' schemes
    and an entrepreneur's referring workspaces' schemes."""
    scopes = {orm.NATIONAL}
    if principal.role == "coordinator":
        scopes |= set(session.execute(sa.select(orm.Workspace.id).where(
            orm.Workspace.organisation_id == principal.organisation_id)).scalars())
    elif principal.role == "entrepreneur":
        scopes |= set(session.execute(sa.select(orm.Referral.from_workspace_id).where(
            orm.Referral.firm_id == principal.organisation_id)).scalars())
    return _schemes_of(session, scopes)


def _put(session: Session, principal: Principal, scope: str, code: str, data: dict[str, Any]) -> orm.ReferralScheme:
    scheme = session.get(orm.ReferralScheme, (scope, code))
    before = None if scheme is None else {name: getattr(scheme, name) for name in SCHEME_FIELDS}
    if scheme is None:
        scheme = orm.ReferralScheme(scope=scope, code=code)
        session.add(scheme)
    for name in SCHEME_FIELDS:
        if name in data:
            setattr(scheme, name, data[name])
    scheme.updated_at = utcnow()
    after = {name: getattr(scheme, name) for name in SCHEME_FIELDS}
    # what changed, field by field (scheme names and links are public texts, no personal data)
    changes = {name: {"from": None if before is None else before[name], "to": after[name]}
               for name in SCHEME_FIELDS if before is None or before[name] != after[name]}
    audit(session, principal, "referral_scheme.created" if before is None else "referral_scheme.updated",
          "referral_scheme", scope, {"scope": scope, "code": code, "changes": changes})  # a code can pass 36
    session.flush()
    return scheme


def put_scheme(session: Session, principal: Principal, workspace_id: str, code: str,
               data: dict[str, Any]) -> orm.ReferralScheme:
    """A workspace's own scheme, created or changed by that workspace's coordinator (another's: 404)."""
    ws = session.get(orm.Workspace, workspace_id)
    if ws is None or ws.organisation_id != principal.organisation_id:
        raise NotFound(workspace_id)
    if session.get(orm.ReferralScheme, (orm.NATIONAL, code)) is not None:
        raise DomainError("code", "a national scheme has this code; choose another code", 409)
    return _put(session, principal, workspace_id, code, data)


def national_schemes(session: Session) -> list[orm.ReferralScheme]:
    return _schemes_of(session, {orm.NATIONAL})


def put_national_scheme(session: Session, code: str, data: dict[str, Any]) -> orm.ReferralScheme:
    """A scheme of the national list, which every workspace's referrals offer (the operator's command)."""
    return _put(session, OPERATOR, orm.NATIONAL, code, data)


def hand_over(session: Session, emit: Emit, principal: Principal, data: dict[str, Any]) -> orm.Handover:
    """Move firms and their open assignments to another workspace in one audited operation.

    A firm is of the workspace when it is placed there or has open work there; only firms placed there
    are placed anew. Its open assignments in the workspace move; one a round left unmatched also leaves
    that batch, so the receiving coordinator can batch it again. A declined one stays, as its batch
    re-runs to find another team; the handover lists it. Nothing moves if any moving assignment's period
    is missing from the receiving workspace's calendar."""
    source = _workspace_for_input(session, data["from_workspace_id"])
    if source.organisation_id != principal.organisation_id:
        raise DomainError("from_workspace_id", "no such workspace")
    target = session.get(orm.Workspace, data["to_workspace_id"])
    if target is None:
        raise DomainError("to_workspace_id", "no such workspace")
    if target.id == source.id:
        raise DomainError("to_workspace_id", "the receiving workspace must be another one")
    chosen = data.get("firm_ids") or []
    firms_query = sa.select(orm.Organisation).where(orm.Organisation.role == "entrepreneur",
                                                    orm.Organisation.workspace_id == source.id)
    open_query = sa.select(orm.Assignment).where(orm.Assignment.workspace_id == source.id,
                                                 orm.Assignment.status.in_([s.value for s in OPEN_STATUSES]))
    if chosen:
        firms_query = firms_query.where(orm.Organisation.id.in_(chosen))
        open_query = open_query.where(orm.Assignment.firm_id.in_(chosen))
    placed = list(session.execute(firms_query.order_by(orm.Organisation.id)).scalars())
    open_work = list(session.execute(open_query.order_by(orm.Assignment.id)).scalars())
    found = {f.id for f in placed} | {a.firm_id for a in open_work}
    for i, firm_id in enumerate(chosen):
        if firm_id not in found:
            raise DomainError(f"firm_ids.{i}", "no firm of this workspace with this id")
    moving = [a for a in open_work if a.status in HANDED_OVER_STATUSES]
    rerun_pending = [a.id for a in open_work if a.status not in HANDED_OVER_STATUSES]
    target_periods = {p["code"] for p in target.periods}
    missing = sorted({a.period for a in moving} - target_periods)
    if missing:
        raise DomainError("to_workspace_id", f"the receiving workspace has no period {', '.join(missing)}")
    for firm in placed:
        firm.workspace_id = target.id
    for a in moving:
        if a.batch_id is not None:
            emit(make_envelope("assignment.left_batch", 1, {
                "assignment_id": a.id, "firm_id": a.firm_id, "batch_id": a.batch_id, "reason": "handed_over",
                "left_at": utcnow().isoformat()}))
        a.workspace_id = target.id
        a.batch_id = None
    handover = orm.Handover(id=_new_id(), from_workspace_id=source.id, to_workspace_id=target.id,
                            firm_ids=sorted(found), assignment_ids=[a.id for a in moving],
                            rerun_pending_assignment_ids=rerun_pending, reason=data["reason"],
                            actor_organisation_id=principal.organisation_id, actor_key_id=principal.key_id,
                            created_at=utcnow())
    session.add(handover)
    audit(session, principal, "handover", "handover", handover.id, {
        "from_workspace_id": source.id, "to_workspace_id": target.id, "firms": len(found),
        "assignments": len(moving), "assignments_rerun_pending": len(rerun_pending)})
    session.flush()
    return handover


def _in_own_workspace(principal: Principal, workspace_id: Any) -> sa.ColumnElement[bool]:
    """The row's workspace is the coordinator's: as EXISTS (not a join), so a list walks its own index in
    order (SQLite sorts every row of a join otherwise)."""
    return sa.exists().where(orm.Workspace.id == workspace_id,
                             orm.Workspace.organisation_id == principal.organisation_id)


def visible_teams(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Team).order_by(orm.Team.created_at, orm.Team.id)
    if principal.role == "institution":
        return query.where(orm.Team.institution_id == principal.organisation_id)
    if principal.role == "coordinator":
        return query.where(_in_own_workspace(principal, orm.Team.workspace_id))
    return query.where(sa.false())


def visible_assignments(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Assignment).order_by(orm.Assignment.created_at, orm.Assignment.id)
    if principal.role == "entrepreneur":
        return query.where(orm.Assignment.firm_id == principal.organisation_id)
    if principal.role == "coordinator":
        return query.where(_in_own_workspace(principal, orm.Assignment.workspace_id))
    return query.where(sa.false())


def visible_batches(principal: Principal) -> sa.Select[Any]:
    query = sa.select(orm.Batch).order_by(orm.Batch.created_at, orm.Batch.id)
    if principal.role == "coordinator":
        return query.join(orm.Workspace).where(orm.Workspace.organisation_id == principal.organisation_id)
    return query.where(sa.false())


def filtered(query: sa.Select[Any], model: Any, filters: dict[str, Any]) -> sa.Select[Any]:
    """Filters on list endpoints: equality on a column of the model; a list of ids (``id`` given as a list);
    ``q``: text in an assignment's title or its firm's name, or in a team's code or its institution's name,
    case not mattering. A batch's ``workspace_id``: any workspace of its round."""
    for name, value in sorted(filters.items()):
        if name == "q":
            pattern = "%" + value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            owners = sa.select(orm.Organisation.id).where(
                sa.func.lower(orm.Organisation.name).like(pattern, escape="\\"))
            if model is orm.Team:
                query = query.where(sa.or_(sa.func.lower(model.code).like(pattern, escape="\\"),
                                           model.institution_id.in_(owners)))
            else:
                query = query.where(sa.or_(sa.func.lower(model.title).like(pattern, escape="\\"),
                                           model.firm_id.in_(owners)))
        elif model is orm.Batch and name == "workspace_id":  # a round over several workspaces shows under each
            query = query.where(covers_workspace(orm.Batch.workspace_id, orm.Batch.workspace_ids, value))
        elif isinstance(value, list):
            query = query.where(getattr(model, name).in_(value))
        else:
            query = query.where(getattr(model, name) == value)
    return query


def update_team(session: Session, team: orm.Team, data: dict[str, Any]) -> orm.Team:
    if "skills" in data:
        data = {**data, "skills": sorted(set(data["skills"]))}
    for name, value in data.items():
        setattr(team, name, value)
    session.flush()
    return team


def update_assignment(session: Session, assignment: orm.Assignment, data: dict[str, Any]) -> orm.Assignment:
    if assignment.status != AssignmentStatus.SUBMITTED.value:
        raise DomainError("status", f"an assignment can only be changed before it is in a batch "
                                    f"(it is {assignment.status})", 409)
    if "period" in data:
        check_period(get_workspace(session, assignment.workspace_id).periods, data["period"])
    check_team_range(data.get("min_teams", assignment.min_teams), data.get("max_teams", assignment.max_teams))
    changes = dict(data)
    for name in ("accepted_levels", "required_skills", "nice_to_have_skills"):
        if name in changes:
            changes[name] = sorted(set(changes[name]))
    if "preferred_levels" in changes:
        changes["preferred_levels"] = list(dict.fromkeys(changes["preferred_levels"]))
    if "preferred_institutions" in changes:
        changes["preferred_institutions"] = _known_institutions(session, changes["preferred_institutions"])
    try:
        check_preferred_levels(changes.get("accepted_levels", assignment.accepted_levels),
                               changes.get("preferred_levels", assignment.preferred_levels))
    except DomainError as exc:
        if "preferred_levels" in changes:
            raise
        raise DomainError("accepted_levels", exc.reason) from None
    for name, value in changes.items():
        setattr(assignment, name, value)
    session.flush()
    return assignment


def withdraw_assignment(session: Session, assignment: orm.Assignment, emit: Emit) -> orm.Assignment:
    """Withdraw an assignment; matching hears of it so that a published matching can be redone without it."""
    assignment.status = transition(assignment.status, AssignmentStatus.WITHDRAWN)
    session.flush()
    emit(make_envelope("assignment.withdrawn", 1, {
        "assignment_id": assignment.id, "firm_id": assignment.firm_id, "batch_id": assignment.batch_id,
        "withdrawn_at": utcnow().isoformat()}))
    return assignment


def get_visible(session: Session, query: sa.Select[Any], model: Any, object_id: str, *, lock: bool = False) -> Any:
    query = query.where(model.id == object_id)
    found = session.execute(query.with_for_update(of=model) if lock else query).scalar_one_or_none()
    if found is None:
        raise NotFound(object_id)
    return found


# ---- batches --------------------------------------------------------------------------------


def submit_batch(session: Session, emit: Emit, principal: Principal, data: dict[str, Any], *,
                 inline_max_bytes: int | None = None) -> orm.Batch:
    """A batch of one round: the workspaces it names (one, or several: a multi-region or national round, all of
    them coordinated by the caller's organisation) and one period of their calendars; the assignments listed, or
    every open one (submitted, in no batch) of those workspaces and that period. The teams of every named
    workspace for the period are its candidates."""
    given = data.get("workspace_ids")
    wanted = list(given) if given is not None else [data["workspace_id"]]
    if len(set(wanted)) != len(wanted):
        raise DomainError("workspace_ids", "each workspace may be named once")
    workspaces = []
    for i, wid in enumerate(wanted):
        where = f"workspace_ids.{i}" if given is not None else "workspace_id"
        ws = session.get(orm.Workspace, wid)
        if ws is None or ws.organisation_id != principal.organisation_id:
            raise DomainError(where, "no such workspace")
        try:
            check_period(ws.periods, data["period"])
        except DomainError:
            raise DomainError(where if len(wanted) > 1 else "period",
                              f"period {data['period']!r} is not in the workspace's calendar") from None
        workspaces.append(ws)
    ws_ids = [ws.id for ws in workspaces]
    if data.get("assignments") == "all_open":
        found = list(session.execute(sa.select(orm.Assignment).where(
            orm.Assignment.workspace_id.in_(ws_ids), orm.Assignment.period == data["period"],
            orm.Assignment.status == AssignmentStatus.SUBMITTED.value, orm.Assignment.batch_id.is_(None))
            .order_by(orm.Assignment.created_at, orm.Assignment.id).limit(MAX_BATCH_ASSIGNMENTS + 1)).scalars())
        if not found:
            raise DomainError("assignments", "no open assignments in these workspaces for this period", 409)
        if len(found) > MAX_BATCH_ASSIGNMENTS:
            raise DomainError("assignments", f"a batch holds at most {MAX_BATCH_ASSIGNMENTS} assignments", 413)
        ids, by_id = [a.id for a in found], {a.id: a for a in found}
    else:
        ids = list(dict.fromkeys(data["assignment_ids"]))
        if len(ids) > MAX_BATCH_ASSIGNMENTS:
            raise DomainError("assignment_ids", f"a batch holds at most {MAX_BATCH_ASSIGNMENTS} assignments", 413)
        by_id = {a.id: a for a in _by_ids(session, orm.Assignment, ids, orm.Assignment.workspace_id.in_(ws_ids))}
    for i, aid in enumerate(ids):
        a = by_id.get(aid)
        if a is None:
            raise DomainError(f"assignment_ids.{i}", "no such assignment in this workspace" if len(ws_ids) == 1
                              else "no such assignment in these workspaces")
        if a.period != data["period"]:
            raise DomainError(f"assignment_ids.{i}", f"assignment is for period {a.period}, not {data['period']}")
        try:
            transition(a.status, AssignmentStatus.IN_BATCH)
        except DomainError as exc:
            raise DomainError(f"assignment_ids.{i}", exc.reason, 409) from None
    floors = _fairness_floors(session, data.get("fairness_floors", []))
    batch = orm.Batch(id=_new_id(), workspace_id=ws_ids[0], workspace_ids=ws_ids, period=data["period"],
                      policy=data["policy"], status=BatchStatus.SUBMITTED.value, created_at=utcnow(),
                      submitted_at=utcnow(), fairness_floors=floors, auto_publish=data.get("auto_publish", True))
    session.add(batch)
    session.flush()
    # one UPDATE per chunk of ids, not one per assignment (a national batch holds tens of thousands); only rows
    # still in a state that may join a batch, so a concurrent batch that took one first leaves a count that differs
    batchable = [s.value for s, targets in TRANSITIONS.items() if AssignmentStatus.IN_BATCH in targets]
    taken = 0
    for start in range(0, len(ids), ID_CHUNK):
        taken += session.execute(sa.update(orm.Assignment).where(
            orm.Assignment.id.in_(ids[start:start + ID_CHUNK]), orm.Assignment.status.in_(batchable))
            .values(status=AssignmentStatus.IN_BATCH.value, batch_id=batch.id)
            .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if taken != len(ids):
        raise DomainError("assignment_ids", "some assignments went into another batch meanwhile; submit again", 409)
    for a in by_id.values():
        set_committed_value(a, "status", AssignmentStatus.IN_BATCH.value)
        set_committed_value(a, "batch_id", batch.id)
    announce_batch(session, emit, workspaces[0], batch, [by_id[aid] for aid in ids],
                   inline_max_bytes=inline_max_bytes)
    return batch


ID_CHUNK = 5000  # ids per IN (...): SQLite allows 32,766 variables in a statement


def _by_ids(session: Session, model: Any, ids: Iterable[str], *where: sa.ColumnElement[bool]) -> list[Any]:
    """The rows of ``model`` with these ids (and ``where``), fetched a chunk of ids at a time."""
    wanted = sorted(set(ids))
    found: list[Any] = []
    for start in range(0, len(wanted), ID_CHUNK):
        found.extend(session.execute(sa.select(model).where(model.id.in_(wanted[start:start + ID_CHUNK]), *where))
                     .scalars())
    return found


def inline_max_bytes(settings: Settings) -> int | None:
    """The largest snapshot sent inside batch.submitted; None (no limit) without the secret matching signs its
    fetch of a stored one with."""
    return settings.snapshot_inline_bytes if settings.secret_key else None


def round_workspaces(session: Session, batch: orm.Batch) -> list[orm.Workspace]:
    """The batch's workspaces, the first (``batch.workspace_id``) first."""
    found = {ws.id: ws for ws in session.execute(sa.select(orm.Workspace).where(
        orm.Workspace.id.in_(batch.round_workspace_ids))).scalars()}
    return [found[wid] for wid in batch.round_workspace_ids]


def announce_workspace(session: Session, emit: Emit, ws: orm.Workspace) -> None:
    """Tell matching and scheduling the workspace exists (workspace.registered), once, before the first message
    that refers to it: they act on a batch, run or referral only for an announced workspace."""
    if ws.announced_at is not None:
        return
    ws.announced_at = utcnow()
    emit(make_envelope("workspace.registered", 1, {
        "workspace_id": ws.id, "coordinator_id": ws.organisation_id, "registered_at": ws.announced_at.isoformat()}))


def announce_batch(session: Session, emit: Emit, ws: orm.Workspace, batch: orm.Batch,
                   assignments: list[orm.Assignment], *, inline_max_bytes: int | None = None) -> None:
    """Send the batch to matching (batch.submitted v3) and remember the message's id: the reconciliation sends
    that same message again when no run outcome comes back. A snapshot larger than ``inline_max_bytes`` (None:
    no limit) is stored here and the message carries a reference to it (claimcheck.py)."""
    workspaces = round_workspaces(session, batch)
    for each in workspaces:
        announce_workspace(session, emit, each)
    snapshot = batch_snapshot(session, ws, batch, assignments, auto_publish=batch.auto_publish)
    emit(make_envelope("batch.announced", 2, announcement(session, ws, batch, assignments, snapshot)))
    envelope = make_envelope("batch.submitted", 3, snapshot)
    body = claimcheck.encode(envelope.payload)
    if inline_max_bytes is not None and len(body) > inline_max_bytes:
        session.add(orm.BatchSnapshot(id=envelope.message_id, batch_id=batch.id, sha256=claimcheck.digest(body),
                                      size_bytes=len(body), body=body, created_at=utcnow()))
        header = {k: v for k, v in snapshot.items() if k not in SNAPSHOT_BODY_FIELDS}
        envelope = replace(make_envelope("batch.submitted", 3, {**header, "snapshot_ref": {
            "snapshot_id": envelope.message_id, "sha256": claimcheck.digest(body), "size_bytes": len(body)}}),
            message_id=envelope.message_id)
        log.info("batch snapshot sent by reference", extra={"batch_id": batch.id, "size_bytes": len(body)})
    batch.announced_message_id, batch.reannounced_at, batch.reannouncements = envelope.message_id, None, 0
    emit(envelope)
    # in the request's trace: where the batch's trace starts in intake's log (matching's, scheduling's go on)
    log.info("batch sent to matching", extra={"batch_id": batch.id, "message_id": envelope.message_id,
                                              "assignments": len(assignments), "teams": len(snapshot["teams"])})


def forget_snapshots(session: Session, batch: orm.Batch, keep: str | None = None) -> None:
    """Delete the batch's stored snapshots but ``keep`` (the one its last batch.submitted names, which the
    reconciliation may send again): matching took in a batch before it ran it, and a closed batch runs no more."""
    session.execute(sa.delete(orm.BatchSnapshot).where(orm.BatchSnapshot.batch_id == batch.id,
                                                       orm.BatchSnapshot.id != (keep or "")))


def batch_snapshot_body(session: Session, snapshot_id: str) -> tuple[bytes, dict[str, str]] | None:
    """A stored snapshot as matching fetches it (the route checks the signature), with the headers that name its
    digest and the digests it had before an erasure rewrote it (claimcheck.rewritten_headers)."""
    found = session.get(orm.BatchSnapshot, snapshot_id)
    if found is None:
        return None
    return found.body, claimcheck.rewritten_headers(found.sha256, list(found.replaces_sha256 or []))


def announcement(session: Session, ws: orm.Workspace, batch: orm.Batch, assignments: list[orm.Assignment],
                 snapshot: dict[str, Any]) -> dict[str, Any]:
    """What scheduling needs of a batch (``batch.announced`` v2): the ids it checks runs against and the names
    people know things by (titles, organisations' names, team codes, the period); no person's data."""
    by_id = {a.id: a for a in assignments}
    team_ids = [t["team_id"] for t in snapshot["teams"]]
    teams = {t.id: t for t in _by_ids(session, orm.Team, team_ids)}
    coordinator = session.get(orm.Organisation, ws.organisation_id)
    period: dict[str, Any] = next((p for p in ws.periods if p["code"] == batch.period), {})
    return {
        "batch_id": batch.id, "workspace_id": ws.id, "coordinator_id": ws.organisation_id,
        "workspace_name": ws.name, "coordinator_name": coordinator.name if coordinator is not None else ws.name,
        "period": {"code": batch.period, "starts_on": period.get("starts_on"), "ends_on": period.get("ends_on")},
        "assignments": [{"assignment_id": a["assignment_id"], "firm_id": a["firm_id"],
                         "title": by_id[a["assignment_id"]].title, "firm_name": by_id[a["assignment_id"]].firm_name}
                        for a in snapshot["assignments"]],
        "teams": [{"team_id": t["team_id"], "institution_id": t["institution_id"], "code": teams[t["team_id"]].code,
                   "institution_name": teams[t["team_id"]].institution_name, "level": t["level"],
                   "skills": list(t["skills"])} for t in snapshot["teams"]]}


def _fairness_floors(session: Session, given: list[dict[str, Any]]) -> list[dict[str, Any]]:
    floors = [{"dimension": f["dimension"], "value": f["value"], "min_share": f["min_share"]} for f in given]
    if floors:
        institution_ids = frozenset(session.execute(sa.select(orm.Organisation.id).where(
            orm.Organisation.role == "institution",
            orm.Organisation.id.in_([f["value"] for f in floors if f["dimension"] == "institution"]))).scalars())
        check_fairness_floors(floors, LEVELS, frozenset(geo.PARTS_OF_COUNTRY), institution_ids)
    return floors


def update_batch(session: Session, emit: Emit, principal: Principal, batch: orm.Batch,
                 data: dict[str, Any], *, inline_max_bytes: int | None = None) -> orm.Batch:
    """Change the settings (policy, fairness floors, auto_publish) of a batch whose run ended without a
    matching, and run it again: the batch is sent to matching anew (``batch.submitted`` v3, same id),
    with its current assignments and the teams and capacity registered now."""
    check_batch_stuck(batch.status)
    if "fairness_floors" in data:
        batch.fairness_floors = _fairness_floors(session, data["fairness_floors"])
    if "policy" in data:
        batch.policy = data["policy"]
    if "auto_publish" in data:
        batch.auto_publish = data["auto_publish"]
    assignments = list(session.execute(sa.select(orm.Assignment).where(
        orm.Assignment.batch_id == batch.id, orm.Assignment.status == AssignmentStatus.IN_BATCH.value)
        .order_by(orm.Assignment.created_at, orm.Assignment.id)).scalars())
    if not assignments:
        raise DomainError("status", "the batch has no assignments left to match; close it", 409)
    batch.status, batch.submitted_at = BatchStatus.SUBMITTED.value, utcnow()
    audit(session, principal, "batch.updated", "batch", batch.id, {
        "policy": batch.policy, "fairness_floors": batch.fairness_floors, "auto_publish": batch.auto_publish,
        "previous_run_id": batch.last_run_id, "previous_run_status": batch.last_run_status})
    session.flush()
    announce_batch(session, emit, get_workspace(session, batch.workspace_id), batch, assignments,
                   inline_max_bytes=inline_max_bytes)
    return batch


def close_batch(session: Session, emit: Emit, principal: Principal, batch: orm.Batch) -> orm.Batch:
    """Close a batch whose run ended without a matching: its assignments are released (back to
    submitted, in no batch) so they can go into a new batch; matching runs it no more."""
    check_batch_stuck(batch.status)
    released = []
    for a in session.execute(sa.select(orm.Assignment).where(orm.Assignment.batch_id == batch.id)
                             .order_by(orm.Assignment.id)).scalars():
        if a.status == AssignmentStatus.IN_BATCH.value:
            a.status = transition(a.status, AssignmentStatus.SUBMITTED)
            a.batch_id = None
            released.append(a.id)
    now = utcnow()
    batch.status, batch.closed_at, batch.released_assignment_ids = BatchStatus.CLOSED.value, now, released
    forget_snapshots(session, batch)
    audit(session, principal, "batch.closed", "batch", batch.id, {
        "released_assignment_ids": released, "last_run_id": batch.last_run_id,
        "last_run_status": batch.last_run_status})
    session.flush()
    emit(make_envelope("batch.closed", 1, {"batch_id": batch.id, "closed_at": now.isoformat()}))
    return batch


def _place(code: str | None) -> dict[str, Any]:
    """A municipality as messages carry it: its code, centre and region (province)."""
    found = geo.municipality(code) if code is not None else None
    if found is None:
        return {"municipality": code, "latitude": None, "longitude": None, "region": None}
    return {"municipality": found.code, "latitude": found.latitude, "longitude": found.longitude,
            "region": found.region}


def batch_snapshot(session: Session, ws: orm.Workspace, batch: orm.Batch, assignments: list[orm.Assignment], *,
                   auto_publish: bool) -> dict[str, Any]:
    """What matching needs of a batch (``batch.submitted`` v3): ids and facts, no personal data. A round over
    several workspaces takes the teams and capacity of each, and their working areas together."""
    firms = {f.id: f for f in _by_ids(session, orm.Organisation, {a.firm_id for a in assignments})}
    workspaces = round_workspaces(session, batch)
    ws_ids = [each.id for each in workspaces]
    teams = session.execute(
        sa.select(orm.Team).where(orm.Team.workspace_id.in_(ws_ids), orm.Team.period == batch.period)
        .order_by(orm.Team.id)
    ).scalars().all()
    institutions = {i.id: i for i in _by_ids(session, orm.Organisation, {t.institution_id for t in teams})}
    capacities = sum_capacities([
        CapacityRow(c.institution_id, c.period, c.level, c.teams, c.supervision_hours)
        for c in session.execute(sa.select(orm.Capacity).where(
            orm.Capacity.workspace_id.in_(ws_ids), orm.Capacity.period == batch.period)).scalars()])

    def campus_municipality(team: orm.Team) -> str | None:
        campuses = {c["name"]: c["municipality"] for c in institutions[team.institution_id].campuses}
        return campuses.get(team.campus) if team.campus is not None else None

    return {
        "batch_id": batch.id, "workspace_id": ws.id, "workspace_ids": ws_ids, "coordinator_id": ws.organisation_id,
        "period": batch.period, "policy": batch.policy, "auto_publish": auto_publish,
        "working_area": list(dict.fromkeys(m for each in workspaces for m in each.municipalities)),
        "assignments": [{
            "assignment_id": a.id, "workspace_id": a.workspace_id, "firm_id": a.firm_id,
            "accepted_levels": a.accepted_levels,
            "required_skills": a.required_skills, "nice_to_have_skills": a.nice_to_have_skills,
            "min_teams": a.min_teams, "max_teams": a.max_teams, "period": a.period, "mode": a.mode,
            **_place(firms[a.firm_id].municipality), "priority": 0, "supervision_hours": supervision_hours(a.kind),
            "preferred_institutions": a.preferred_institutions, "preferred_levels": a.preferred_levels,
        } for a in assignments],
        "teams": [{
            "team_id": t.id, "workspace_id": t.workspace_id, "institution_id": t.institution_id, "level": t.level,
            "skills": t.skills,
            "periods": [t.period], **_place(campus_municipality(t)), "travel_limit_km": t.travel_limit_km,
            "remote_allowed": t.remote_allowed, "preferences": t.preferences,
        } for t in teams],
        "capacities": [{"institution_id": c.institution_id, "period": c.period, "level": c.level, "teams": c.teams,
                        "supervision_hours": c.supervision_hours} for c in capacities],
        "firm_caps": [{"firm_id": f.id, "max_teams": f.max_concurrent_teams}
                      for f in sorted(firms.values(), key=lambda f: f.id) if f.max_concurrent_teams is not None],
        "fairness_floors": list(batch.fairness_floors),
    }


def batch_matches(session: Session, batch_id: str, run_id: str | None) -> list[orm.BatchMatch]:
    """The matches of the batch's current (last published) run."""
    return list(session.execute(
        sa.select(orm.BatchMatch).where(orm.BatchMatch.batch_id == batch_id, orm.BatchMatch.run_id == run_id)
        .order_by(orm.BatchMatch.match_id)
    ).scalars())


# ---- message handlers -----------------------------------------------------------------------


def on_matches_published(session: Session, envelope: Envelope) -> None:
    """A run of a batch was published (the first, or a re-run that supersedes it). An accepted
    assignment stays accepted when the re-run kept its teams: in v2, when each of its matches names a
    match of the previous run as its ``previous_match_id`` and none of its previous matches was dropped."""
    p = envelope.payload
    batch = session.get(orm.Batch, p["batch_id"])
    if batch is None:
        raise DomainError("batch_id", "unknown batch")
    if batch.status == BatchStatus.CLOSED.value:
        # published before matching heard of the close: the assignments are released, maybe in a new batch
        log.warning("matches published for a closed batch ignored", extra={"batch_id": batch.id,
                                                                             "run_id": p["run_id"]})
        return
    before = batch_matches(session, batch.id, batch.run_id)
    previous = {m.assignment_id: m.team_id for m in before}
    kept: set[str] | None = None
    if envelope.version >= 2:
        known = {m.match_id for m in before}
        successors = {m["previous_match_id"] for m in p["matches"]}
        changed = ({m["assignment_id"] for m in p["matches"] if m["previous_match_id"] not in known}
                   | {m.assignment_id for m in before if m.match_id not in successors})
        kept = {m["assignment_id"] for m in p["matches"]} - changed
    batch.status = BatchStatus.MATCHED.value
    batch.run_id = p["run_id"]
    current: dict[str, str] = {}
    ids = [m["match_id"] for m in p["matches"]]
    stored: set[str] = set()  # a redelivered publication's matches: stored once (one query per ID_CHUNK, not per match)
    for start in range(0, len(ids), ID_CHUNK):
        stored.update(session.execute(sa.select(orm.BatchMatch.match_id).where(
            orm.BatchMatch.match_id.in_(ids[start:start + ID_CHUNK]))).scalars())
    for m in p["matches"]:
        if m["match_id"] not in stored:
            stored.add(m["match_id"])
            session.add(orm.BatchMatch(match_id=m["match_id"], batch_id=batch.id, run_id=p["run_id"],
                                       assignment_id=m["assignment_id"], team_id=m["team_id"],
                                       score=m["score"]))
        current[m["assignment_id"]] = m["team_id"]
    for a in session.execute(sa.select(orm.Assignment).where(orm.Assignment.batch_id == batch.id)).scalars():
        keeps_team = a.id in kept if kept is not None else a.id in current and previous.get(a.id) == current[a.id]
        if a.status == AssignmentStatus.ACCEPTED.value and keeps_team:
            continue
        if a.status in (S_WITHDRAWN, S_IN_PROGRESS, S_COMPLETED, S_REFERRED):
            continue
        target = AssignmentStatus.MATCHED if a.id in current else AssignmentStatus.UNMATCHED
        if a.status != target.value:
            a.status = transition(a.status, target)


S_WITHDRAWN, S_IN_PROGRESS, S_COMPLETED, S_REFERRED = (
    AssignmentStatus.WITHDRAWN.value, AssignmentStatus.IN_PROGRESS.value, AssignmentStatus.COMPLETED.value,
    AssignmentStatus.REFERRED.value)


def on_match_responded(session: Session, envelope: Envelope) -> None:
    """An entrepreneur accepted or declined a match: move the assignment along its lifecycle.

    An answer to a match intake has not seen yet (its matches.published is still on the other queue)
    waits for a redelivery. An answer to a match that is no longer the assignment's current one
    (the assignment has since left the batch, or a re-run gave it another team) changes nothing; an
    answer to a superseded match whose pair the current run kept counts for that pair."""
    p = envelope.payload
    match = session.get(orm.BatchMatch, p["match_id"])
    assignment = session.get(orm.Assignment, p["assignment_id"])
    if assignment is None:
        raise DomainError("assignment_id", "unknown assignment")
    if match is None:
        raise NotYetReceived(f"match {p['match_id']} of run {p['run_id']} is not published to intake yet")
    batch = session.get(orm.Batch, match.batch_id)
    if batch is not None and match.run_id != batch.run_id:
        match = session.execute(sa.select(orm.BatchMatch).where(
            orm.BatchMatch.batch_id == batch.id, orm.BatchMatch.run_id == batch.run_id,
            orm.BatchMatch.assignment_id == match.assignment_id, orm.BatchMatch.team_id == match.team_id)
        ).scalars().first() or match
    if (batch is None or match.assignment_id != assignment.id or match.run_id != batch.run_id
            or assignment.batch_id != batch.id):
        return
    target = AssignmentStatus.ACCEPTED if p["response"] == "accepted" else AssignmentStatus.DECLINED
    if assignment.status == target.value:
        return
    assignment.status = transition(assignment.status, target)


def on_run_ended(session: Session, envelope: Envelope) -> None:
    """A run of a batch ended (run.ended): the batch shows how, with the diagnosis of an infeasible run.
    While no matching is published, an infeasible, failed or cancelled run makes that the batch's status,
    so the coordinator can change its settings or close it. An outcome older than the one shown (a late
    redelivery) changes nothing."""
    p = envelope.payload
    batch = session.get(orm.Batch, p["batch_id"])
    if batch is None:
        raise DomainError("batch_id", "unknown batch")
    try:
        ended_at = datetime.fromisoformat(p["ended_at"])
    except ValueError:
        raise DomainError("ended_at", "not an ISO 8601 time") from None
    shown = batch.last_run_ended_at
    if shown is not None and shown.tzinfo is None:
        shown = shown.replace(tzinfo=UTC)
    if shown is not None and ended_at.tzinfo is not None and ended_at < shown:
        return
    forget_snapshots(session, batch, keep=batch.announced_message_id)
    batch.last_run_id, batch.last_run_status, batch.last_run_trigger = p["run_id"], p["status"], p["trigger"]
    batch.last_run_ended_at, batch.last_run_error, batch.last_run_diagnosis = ended_at, p["error"], p["diagnosis"]
    if batch.status in {BatchStatus.SUBMITTED, *STUCK_BATCH_STATUSES} and p["status"] in STUCK_BATCH_STATUSES:
        batch.status = p["status"]
