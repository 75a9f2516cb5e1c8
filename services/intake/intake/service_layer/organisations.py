"""Organisations as the operator manages them: created one at a time or many at once (all or none), listed,
and deactivated. The API (``/organisations``) and the admin command (``python -m intake admin``) both call
these functions, so both apply the same rules and both are audited.

Rules of a new organisation: a name (at most 200 characters), a role, the levels it offers (an institution
offers at least one). An organisation is refused when an active one of the same role has the same name
(spaces collapsed, case ignored), and so is a file that names one twice. Its first API key is shown once, in
the answer; only its hash is stored, and it is never logged nor written in the audit log.

Deactivating an organisation revokes its API keys (at once in intake; the other services follow through
``apikey.revoked``), disables its accounts (``account.disabled``), ends its open invitations, and keeps its
data. It cannot be undone here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import LEVELS, ROLES
from werkplaats_shared.db import utcnow

from ..adapters import orm
from ..adapters.accounts_orm import Account, Invitation
from ..domain.model import DomainError, check_kvk_number
from . import accounts, services
from .services import Emit

NAME_MAX_LENGTH = 200
REASON_MAX_LENGTH = 500
MAX_BULK_ROWS = 2000  # rows of one bulk file (CSV) or firms of one request, all created in one transaction

NAME_REQUIRED = "a name is required"
NAME_TOO_LONG = f"Longer than maximum length {NAME_MAX_LENGTH}."
ROLE_UNKNOWN = f"Must be one of: {', '.join(ROLES)}."
LEVEL_UNKNOWN = f"Must be one of: {', '.join(LEVELS)}."
LEVEL_NEEDED = "an institution needs at least one level"
DUPLICATE_STORED = "an active organisation of this role has this name already"
ALREADY_DEACTIVATED = "the organisation is deactivated already"
DEACTIVATED = "the organisation is deactivated"


@dataclass(frozen=True)
class NewOrganisation:
    """A checked request for an organisation: its name trimmed, its levels sorted without repeats."""

    name: str
    role: str
    levels: list[str]

    @property
    def key(self) -> tuple[str, str]:
        return self.role, orm.organisation_name_key(self.name)


@dataclass(frozen=True)
class Problem:
    """What is wrong with one organisation of a bulk request: its row (a CSV file's, header = row 1; a JSON
    list's index), the column or field, and why."""

    row: int
    column: str
    reason: str


class BulkRejected(Exception):
    """A bulk request refused whole: nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


@dataclass(frozen=True)
class Created:
    organisation: orm.Organisation
    api_key: str  # the plaintext, for the answer only


def check(name: Any, role: Any, levels: Any) -> tuple[NewOrganisation | None, list[tuple[str, str]]]:
    """The request as a NewOrganisation, or the (field, reason) of everything wrong with it."""
    problems: list[tuple[str, str]] = []
    clean = name.strip() if isinstance(name, str) else ""
    if not clean:
        problems.append(("name", NAME_REQUIRED))
    elif len(clean) > NAME_MAX_LENGTH:
        problems.append(("name", NAME_TOO_LONG))
    if role not in ROLES:
        problems.append(("role", ROLE_UNKNOWN))
    wanted = levels if isinstance(levels, list) else [levels]
    if any(level not in LEVELS for level in wanted):
        problems.append(("levels", LEVEL_UNKNOWN))
    elif role == "institution" and not wanted:
        problems.append(("levels", LEVEL_NEEDED))
    if problems:
        return None, problems
    return NewOrganisation(clean, str(role), sorted(set(wanted))), []


# Creating organisations takes this PostgreSQL transaction lock first, so that two requests naming the same
# organisation at the same moment cannot both pass the duplicate check (SQLite runs one writer at a time).
CREATE_LOCK = 0x5750_4F52  # "WPOR"


def _stored_duplicates(session: Session, wanted: list[NewOrganisation]) -> set[tuple[str, str]]:
    """The (role, name key) of the wanted ones that an active stored organisation has already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(CREATE_LOCK)))
    found: set[tuple[str, str]] = set()
    keys = sorted({w.key for w in wanted})
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows = session.execute(sa.select(orm.Organisation.role, orm.Organisation.name_key).where(
            orm.Organisation.deactivated_at.is_(None),
            orm.Organisation.name_key.in_(sorted({name_key for _, name_key in chunk})))).all()
        found |= {(role, name_key or "") for role, name_key in rows} & set(chunk)
    return found


def _create(session: Session, emit: Emit, principal: Principal, wanted: list[NewOrganisation],
            via: str) -> list[Created]:
    made = services.create_organisations(session, emit, [(new.name, new.role, new.levels) for new in wanted])
    for org, _ in made:
        services.audit(session, principal, "organisation.created", "organisation", org.id,
                       {"role": org.role, "levels": org.levels, "via": via})
    return [Created(org, key) for org, key in made]


def create(session: Session, emit: Emit, principal: Principal, *, name: Any, role: Any, levels: Any,
           via: str = "api") -> Created:
    """One organisation and its first API key (422 on a bad field, 409 on an active namesake)."""
    new, problems = check(name, role, levels)
    if new is None:
        field, reason = problems[0]
        raise DomainError(field, reason)
    if _stored_duplicates(session, [new]):
        raise DomainError("name", DUPLICATE_STORED, 409)
    (made,) = _create(session, emit, principal, [new], via)
    return made


def create_many(session: Session, emit: Emit, principal: Principal, items: list[tuple[int, dict[str, Any]]],
                via: str = "api") -> list[Created]:
    """Every organisation of ``items`` (row number, fields), or none: BulkRejected names every bad row."""
    problems: list[Problem] = []
    checked: list[tuple[int, NewOrganisation]] = []
    first_row: dict[tuple[str, str], int] = {}
    for row, item in items:
        new, wrong = check(item.get("name"), item.get("role"), item.get("levels", []))
        problems += [Problem(row, field, reason) for field, reason in wrong]
        if new is None:
            continue
        if new.key in first_row:
            problems.append(Problem(row, "name", f"row {first_row[new.key]} has this organisation already"))
            continue
        first_row[new.key] = row
        checked.append((row, new))
    stored = _stored_duplicates(session, [new for _, new in checked])
    problems += [Problem(row, "name", DUPLICATE_STORED) for row, new in checked if new.key in stored]
    if problems:
        raise BulkRejected(sorted(problems, key=lambda p: (p.row, p.column)))
    created = _create(session, emit, principal, [new for _, new in checked], via)
    services.audit(session, principal, "organisation.bulk_created", "organisation", created[0].organisation.id
                   if created else "-", {"count": len(created), "via": via})
    return created


KVK_TWICE = "row {row} has this KvK number already"
KVK_STORED = "another firm is registered with this KvK number"


@dataclass(frozen=True)
class CreatedFirm:
    row: int
    organisation: orm.Organisation
    api_key: str  # the plaintext, for the answer only


def create_firms(session: Session, emit: Emit, principal: Principal, items: list[tuple[int, dict[str, Any]]],
                 rejected: list[Problem] | None = None, via: str = "api") -> list[CreatedFirm]:
    """Firms (entrepreneur organisations) with their profiles and first API keys, or none: BulkRejected names
    every bad row with ``rejected`` (rows the request schema refused already). Each item is ``name`` and the
    fields of ``POST /firm``; the rules are those of both: a name unique among active entrepreneurs, a KvK
    number no other firm has, and the firm placed with the workspace whose working area covers it."""
    problems: list[Problem] = list(rejected or [])
    checked: list[tuple[int, NewOrganisation, dict[str, Any]]] = []
    first_name: dict[tuple[str, str], int] = {}
    first_kvk: dict[str, int] = {}
    for row, item in items:
        new, wrong = check(item.get("name"), "entrepreneur", [])
        problems += [Problem(row, field, reason) for field, reason in wrong]
        try:
            check_kvk_number(item["kvk_number"])
        except DomainError as exc:
            problems.append(Problem(row, exc.field, exc.reason))
            continue
        if item["kvk_number"] in first_kvk:
            problems.append(Problem(row, "kvk_number", KVK_TWICE.format(row=first_kvk[item["kvk_number"]])))
            continue
        first_kvk[item["kvk_number"]] = row
        if new is None:
            continue
        if new.key in first_name:
            problems.append(Problem(row, "name", f"row {first_name[new.key]} has this organisation already"))
            continue
        first_name[new.key] = row
        checked.append((row, new, item))
    stored = _stored_duplicates(session, [new for _, new, _ in checked])
    problems += [Problem(row, "name", DUPLICATE_STORED) for row, new, _ in checked if new.key in stored]
    kvks = sorted(first_kvk)
    for start in range(0, len(kvks), 500):
        taken = {kvk for kvk in session.execute(sa.select(orm.Organisation.kvk_number).where(
            orm.Organisation.kvk_number.in_(kvks[start:start + 500]))).scalars() if kvk is not None}
        problems += [Problem(first_kvk[kvk], "kvk_number", KVK_STORED) for kvk in taken]
    if problems:
        raise BulkRejected(sorted(problems, key=lambda p: (p.row, p.column)))
    created = _create(session, emit, principal, [new for _, new, _ in checked], via)
    areas = services.working_areas(session)
    for made, (_, _, item) in zip(created, checked, strict=True):
        firm = made.organisation
        for name in ("kvk_number", "sector", "size_class", "municipality", "language", "max_concurrent_teams"):
            if name in item:
                setattr(firm, name, item[name])
        covering = [ws for ws, area in areas.items() if firm.municipality in area]
        firm.workspace_id = covering[0] if covering else None
    session.flush()
    if created:
        services.audit(session, principal, "organisation.bulk_created", "organisation", created[0].organisation.id,
                       {"count": len(created), "via": via, "firms": True})
    return [CreatedFirm(row, made.organisation, made.api_key)
            for (row, _, _), made in zip(checked, created, strict=True)]


def query(role: str | None = None, active: bool | None = None) -> sa.Select[Any]:
    """The organisations, oldest first, by role and by whether they are active."""
    found = sa.select(orm.Organisation).order_by(orm.Organisation.created_at, orm.Organisation.id)
    if role is not None:
        found = found.where(orm.Organisation.role == role)
    if active is True:
        found = found.where(orm.Organisation.deactivated_at.is_(None))
    elif active is False:
        found = found.where(orm.Organisation.deactivated_at.is_not(None))
    return found


def get(session: Session, organisation_id: str) -> orm.Organisation:
    org = session.get(orm.Organisation, organisation_id)
    if org is None:
        raise services.NotFound(organisation_id)
    return org


def deactivate(session: Session, emit: Emit, principal: Principal, organisation_id: str,
               reason: str) -> orm.Organisation:
    """Revoke its keys, disable its accounts, end its open invitations; keep its data. Twice: 409."""
    reason = reason.strip()
    if not reason:
        raise DomainError("reason", "must not be blank")
    org = session.execute(sa.select(orm.Organisation).where(orm.Organisation.id == organisation_id)
                          .with_for_update()).scalar()
    if org is None:
        raise services.NotFound(organisation_id)
    if org.deactivated_at is not None:
        raise DomainError("status", ALREADY_DEACTIVATED, 409)
    now = utcnow()
    org.deactivated_at = now
    keys = session.execute(sa.select(orm.api_keys.c.key_id).where(
        orm.api_keys.c.organisation_id == org.id, orm.api_keys.c.revoked_at.is_(None))
        .order_by(orm.api_keys.c.key_id)).scalars().all()
    for key_id in keys:
        services.revoke_key(session, emit, key_id)
    people = session.execute(sa.select(Account).where(Account.organisation_id == org.id,
                                                      Account.disabled_at.is_(None))
                             .order_by(Account.id)).scalars().all()
    for account in people:
        accounts.disable(session, emit, account)
    session.execute(sa.update(Invitation).where(Invitation.organisation_id == org.id,
                                                Invitation.accepted_at.is_(None), Invitation.expires_at > now)
                    .values(expires_at=now))
    services.audit(session, principal, "organisation.deactivated", "organisation", org.id,
                   {"reason": reason, "revoked_keys": len(keys), "disabled_accounts": len(people)})
    session.flush()
    return org
