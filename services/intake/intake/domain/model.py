"""Intake's rules, free of frameworks: assignment lifecycle, what may go into a batch, the snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DomainError(Exception):
    """A rule was broken; ``field`` names the input at fault."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.status = status


class AssignmentStatus(StrEnum):
    SUBMITTED = "submitted"
    IN_BATCH = "in_batch"
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    REFERRED = "referred"


S = AssignmentStatus
TRANSITIONS: dict[AssignmentStatus, frozenset[AssignmentStatus]] = {
    S.SUBMITTED: frozenset({S.IN_BATCH, S.WITHDRAWN, S.REFERRED}),
    # closing a batch without a published matching releases its assignments for a new batch
    S.IN_BATCH: frozenset({S.MATCHED, S.UNMATCHED, S.WITHDRAWN, S.SUBMITTED}),
    S.UNMATCHED: frozenset({S.MATCHED, S.IN_BATCH, S.WITHDRAWN, S.REFERRED}),
    # a re-run after a decline or withdrawal may give a matched assignment another team, or none
    S.MATCHED: frozenset({S.ACCEPTED, S.DECLINED, S.UNMATCHED, S.WITHDRAWN}),
    S.DECLINED: frozenset({S.MATCHED, S.UNMATCHED, S.IN_BATCH, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.MATCHED, S.WITHDRAWN}),
    S.IN_PROGRESS: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.REFERRED: frozenset(),
}


class BatchStatus(StrEnum):
    """A batch is submitted (its run pending), matched (a run is published), or, while none is published,
    infeasible, failed or cancelled as its last run ended; closed once the coordinator closed it."""

    SUBMITTED = "submitted"
    MATCHED = "matched"
    INFEASIBLE = "infeasible"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CLOSED = "closed"


# A batch whose runs ended without a published matching: its settings can change (and it runs again),
# or it can be closed (its assignments released).
STUCK_BATCH_STATUSES = frozenset({BatchStatus.INFEASIBLE, BatchStatus.FAILED, BatchStatus.CANCELLED})


def check_batch_stuck(status: str) -> None:
    if status not in STUCK_BATCH_STATUSES:
        raise DomainError("status", f"only a batch whose run ended without a matching (infeasible, failed or "
                                    f"cancelled) can be changed or closed; this batch is {status}", 409)


def transition(current: str, target: AssignmentStatus) -> str:
    if target not in TRANSITIONS[AssignmentStatus(current)]:
        raise DomainError("status", f"an assignment cannot go from {current} to {target.value}", 409)
    return target.value


@dataclass(frozen=True)
class Period:
    code: str
    starts_on: str
    ends_on: str


def check_period(periods: list[dict[str, str]], period: str) -> None:
    if period not in {p["code"] for p in periods}:
        raise DomainError("period", f"period {period!r} is not in the workspace's calendar")


def check_levels_offered(offered: list[str], level: str) -> None:
    if level not in offered:
        raise DomainError("level", f"the institution does not offer level {level}")


def check_team_range(min_teams: int, max_teams: int) -> None:
    if min_teams > max_teams:
        raise DomainError("min_teams", "min_teams must not exceed max_teams")


def check_preferred_levels(accepted: list[str], preferred: list[str]) -> None:
    for i, level in enumerate(preferred):
        if level not in accepted:
            raise DomainError(f"preferred_levels.{i}", "a preferred level must be an accepted level")


THEMES = ("website", "webshop", "online_marketing", "data_automation", "cyber_security", "ai", "digital_roadmap")
KINDS = ("short_job", "project", "roadmap")
MODES = ("on_site", "remote", "hybrid")
SIZE_CLASSES = ("micro", "small", "medium")
OPEN_STATUSES = frozenset({S.SUBMITTED, S.UNMATCHED, S.DECLINED})
# Open work a handover moves. A declined assignment stays: its batch re-runs to find it another team.
HANDED_OVER_STATUSES = frozenset({S.SUBMITTED, S.UNMATCHED})


def check_kvk_number(value: str) -> None:
    """A KvK (Chamber of Commerce) number has exactly eight digits."""
    if len(value) != 8 or not value.isascii() or not value.isdigit() or value == "00000000":
        raise DomainError("kvk_number", "a KvK number has exactly 8 digits")


@dataclass(frozen=True)
class Routing:
    """Where a firm's assignment goes: accepted by the requested workspace, routed to the workspace
    whose working area covers the firm, or referred because no workspace covers it."""

    outcome: str  # accepted | routed | referred
    workspace_id: str
    reason: str


def route(firm_municipality: str, requested_workspace_id: str,
          working_areas: dict[str, frozenset[str]]) -> Routing:
    if firm_municipality in working_areas.get(requested_workspace_id, frozenset()):
        return Routing("accepted", requested_workspace_id, "the firm is in the workspace's working area")
    covering = [ws for ws, area in working_areas.items() if firm_municipality in area]  # in priority order
    if covering:
        return Routing("routed", covering[0],
                       f"municipality {firm_municipality} is served by another workspace")
    return Routing("referred", requested_workspace_id,
                   f"no workspace serves municipality {firm_municipality}")


# Lecturer supervision one team needs for an assignment of each kind, in hours: a short job of a few
# days, a 10-20 week project, a roadmap or quick scan.
SUPERVISION_HOURS_BY_KIND: dict[str, int] = {"short_job": 4, "project": 20, "roadmap": 8}


def supervision_hours(kind: str) -> int:
    return SUPERVISION_HOURS_BY_KIND[kind]


@dataclass(frozen=True)
class CapacityRow:
    institution_id: str
    period: str
    level: str
    teams: int
    supervision_hours: int


def sum_capacities(rows: list[CapacityRow]) -> list[CapacityRow]:
    """An institution's capacity per (period, level), summed over its programmes, in a stable order."""
    totals: dict[tuple[str, str, str], tuple[int, int]] = {}
    for r in rows:
        key = (r.institution_id, r.period, r.level)
        teams, hours = totals.get(key, (0, 0))
        totals[key] = (teams + r.teams, hours + r.supervision_hours)
    return [CapacityRow(i, p, lv, t, h) for (i, p, lv), (t, h) in sorted(totals.items())]


def check_fairness_floors(floors: list[dict[str, object]], levels: tuple[str, ...], regions: frozenset[str],
                          institutions: frozenset[str]) -> None:
    """Each floor names a known group once: a level, a region (province) or an institution."""
    known = {"level": frozenset(levels), "region": regions, "institution": institutions}
    seen: set[tuple[object, object]] = set()
    for i, floor in enumerate(floors):
        dimension, value = floor["dimension"], floor["value"]
        if value not in known[str(dimension)]:
            raise DomainError(f"fairness_floors.{i}.value", f"no {dimension} {value!r} is known")
        if (dimension, value) in seen:
            raise DomainError(f"fairness_floors.{i}.value", "each group has one floor at most")
        seen.add((dimension, value))
