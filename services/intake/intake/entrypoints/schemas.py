"""Request and response schemas of intake's API (also used by the bulk import)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from werkplaats_shared import geo
from werkplaats_shared.contracts import FLOOR_DIMENSIONS, LEVELS, POLICIES
from werkplaats_shared.fields import UtcDateTime

from ..domain.model import KINDS, MODES, SIZE_CLASSES, THEMES, AssignmentStatus
from ..service_layer import services
from ..service_layer.assignments_bulk import MAX_ITEMS as BULK_ASSIGNMENTS


def _known_municipality(code: str) -> None:
    if not re.fullmatch(r"GM[0-9]{4}", code):
        raise ValidationError("a CBS municipality code is GM and four digits, e.g. GM0363")
    if not geo.is_municipality(code):
        raise ValidationError("not a current CBS municipality code")


def _municipality(**kwargs: Any) -> fields.String:
    return fields.String(validate=_known_municipality, **kwargs)


def _skills() -> fields.List[str]:
    return fields.List(fields.String(validate=validate.Length(min=1, max=60)), load_default=list,
                       validate=validate.Length(max=30))


class PeriodSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class WorkspaceIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    municipalities = fields.List(_municipality(), required=True, validate=validate.Length(min=1, max=400))
    periods = fields.List(fields.Nested(PeriodSchema), required=True, validate=validate.Length(min=1, max=40))


class WorkspaceOut(Schema):
    id = fields.String(dump_only=True)
    organisation_id = fields.String(dump_only=True)
    name = fields.String()
    municipalities = fields.List(fields.String())
    periods = fields.List(fields.Dict())


class TeamIn(Schema):
    workspace_id = fields.String(required=True, validate=validate.Length(max=36))
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    skills = _skills()
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    campus = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    travel_limit_km = fields.Integer(load_default=None, allow_none=True, strict=True,
                                     validate=validate.Range(min=0, max=500))
    remote_allowed = fields.Boolean(load_default=True)
    preferences = fields.List(fields.String(validate=validate.Length(max=36)), load_default=list,
                              validate=validate.Length(max=10),
                              metadata={"description": "assignment ids, most wanted first"})


class TeamOut(TeamIn):
    id = fields.String(dump_only=True)
    institution_id = fields.String(dump_only=True)
    institution_name = fields.String(dump_only=True)


class AssignmentIn(Schema):
    workspace_id = fields.String(required=True, validate=validate.Length(max=36))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    accepted_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), required=True,
                                  validate=validate.Length(min=1, max=3))
    required_skills = _skills()
    nice_to_have_skills = _skills()
    min_teams = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=10))
    max_teams = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=10))
    theme = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(THEMES),
                          metadata={"description": "one of the theme catalogue"})
    kind = fields.String(load_default="project", validate=validate.OneOf(KINDS))
    mode = fields.String(load_default="on_site", validate=validate.OneOf(MODES))
    preferred_institutions = fields.List(fields.String(validate=validate.Length(max=36)), load_default=list,
                                         validate=validate.Length(max=10),
                                         metadata={"description": "institution ids, most wanted first"})
    preferred_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), load_default=list,
                                   validate=validate.Length(max=3),
                                   metadata={"description": "accepted levels, most wanted first"})


class RoutingOut(Schema):
    outcome = fields.String(metadata={"description": "accepted, routed (to the workspace that serves the firm) "
                                                     "or referred (no workspace serves the firm)"})
    workspace_id = fields.String()
    reason = fields.String()


class AssignmentsBulkIn(Schema):
    assignments = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1, max=BULK_ASSIGNMENTS),
                              metadata={"description": "each item as POST /assignments takes it (AssignmentIn); "
                                                       f"1 to {BULK_ASSIGNMENTS:,} items, at most 8 MiB"})


class BulkAssignmentOut(Schema):
    row = fields.Integer(metadata={"description": "the item's position in the request (from 0)"})
    id = fields.String()
    workspace_id = fields.String(metadata={"description": "the workspace it went to"})
    status = fields.String(metadata={"description": "submitted, or referred"})
    routing = fields.Nested(RoutingOut)


class AssignmentsBulkOut(Schema):
    count = fields.Integer()
    assignments = fields.List(fields.Nested(BulkAssignmentOut), metadata={"description": "in the request's order"})


class AssignmentOut(AssignmentIn):
    id = fields.String(dump_only=True)
    firm_id = fields.String(dump_only=True)
    firm_name = fields.String(dump_only=True)
    batch_id = fields.String(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True)
    routed_from_workspace_id = fields.String(dump_only=True, allow_none=True)
    routing = fields.Nested(RoutingOut, dump_only=True)


class FairnessFloorSchema(Schema):
    dimension = fields.String(required=True, validate=validate.OneOf(FLOOR_DIMENSIONS),
                              metadata={"description": "region (a province), level or institution (its id)"})
    value = fields.String(required=True, validate=validate.Length(min=1, max=40))
    min_share = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, max=1),
                             metadata={"description": "the least share of the group to serve, 0 to 1"})


class BatchIn(Schema):
    """A batch of one round. Name its workspace (``workspace_id``) or workspaces (``workspace_ids``: one or several,
    a multi-region or national round, each coordinated by your organisation; the teams of all of them are the
    candidates), one period in their calendars, and either the assignments (``assignment_ids``) or
    ``"assignments": "all_open"``: every submitted assignment of those workspaces and that period not yet in a
    batch."""

    workspace_id = fields.String(validate=validate.Length(max=36), metadata={
        "description": "the batch's one workspace (or give workspace_ids)"})
    workspace_ids = fields.List(fields.String(validate=validate.Length(max=36)),
                                validate=validate.Length(min=1, max=services.MAX_BATCH_WORKSPACES), metadata={
        "description": "the round's workspaces, each coordinated by your organisation (or give workspace_id)"})
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    policy = fields.String(load_default="max_fit", validate=validate.OneOf(POLICIES))
    auto_publish = fields.Boolean(load_default=True, metadata={
        "description": "publish the run's matches as soon as it is solved (otherwise the coordinator publishes)"})
    assignment_ids = fields.List(fields.String(validate=validate.Length(max=36)),
                                 validate=validate.Length(min=1, max=services.MAX_LISTED_ASSIGNMENTS), metadata={
        "description": f"the assignments of the batch (at most {services.MAX_LISTED_ASSIGNMENTS}; or give "
                       "assignments: all_open)"})
    assignments = fields.String(validate=validate.OneOf(["all_open"]), metadata={
        "description": "all_open: every open assignment (submitted, in no batch) of the workspaces and period, "
                       "instead of assignment_ids"})
    fairness_floors = fields.List(fields.Nested(FairnessFloorSchema), load_default=list,
                                  validate=validate.Length(max=50),
                                  metadata={"description": "optional: at least this share of a group served"})

    @validates_schema
    def _one_of_each(self, data: dict[str, Any], **_: Any) -> None:
        if "workspace_id" in data and "workspace_ids" in data:
            raise ValidationError("give workspace_id or workspace_ids, not both", "workspace_ids")
        if "workspace_id" not in data and "workspace_ids" not in data:
            raise ValidationError("give workspace_id or workspace_ids", "workspace_id")
        if "assignment_ids" in data and "assignments" in data:
            raise ValidationError("give assignment_ids or assignments: all_open, not both", "assignments")
        if "assignment_ids" not in data and "assignments" not in data:
            raise ValidationError("give assignment_ids or assignments: all_open", "assignment_ids")


class MatchOut(Schema):
    match_id = fields.String()
    run_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    score = fields.Float()


class BatchPatch(Schema):
    """New settings for a batch whose run ended without a matching; the batch then runs again."""

    policy = fields.String(validate=validate.OneOf(POLICIES))
    auto_publish = fields.Boolean()
    fairness_floors = fields.List(fields.Nested(FairnessFloorSchema), validate=validate.Length(max=50),
                                  metadata={"description": "replaces the batch's floors ([] removes them)"})


class RunDiagnosisOut(Schema):
    groups = fields.List(fields.String(), metadata={"description": "the constraint groups that cannot hold"})
    message = fields.String(metadata={"description": "in English"})
    message_nl = fields.String(metadata={"description": "in Dutch"})


class LastRunOut(Schema):
    run_id = fields.String()
    status = fields.String(metadata={"description": "solved, published, infeasible, failed or cancelled"})
    trigger = fields.String(metadata={"description": "what asked for the run, e.g. batch.submitted, declined"})
    ended_at = UtcDateTime()
    error = fields.String(allow_none=True)
    diagnosis = fields.Nested(RunDiagnosisOut, allow_none=True)


class BatchSummaryOut(Schema):
    id = fields.String(dump_only=True)
    workspace_id = fields.String(metadata={"description": "the (first) workspace of the batch's round"})
    workspace_ids = fields.List(fields.String(), attribute="round_workspace_ids", metadata={
        "description": "every workspace of the batch's round, workspace_id first"})
    period = fields.String()
    policy = fields.String()
    auto_publish = fields.Boolean()
    status = fields.String(dump_only=True, metadata={
        "description": "submitted, matched, infeasible, failed or cancelled (how its last run ended while no "
                       "matching is published), closed"})
    run_id = fields.String(dump_only=True, allow_none=True)
    fairness_floors = fields.List(fields.Nested(FairnessFloorSchema))
    closed_at = UtcDateTime(dump_only=True, allow_none=True)
    submitted_at = UtcDateTime(dump_only=True, allow_none=True)


class BatchOut(BatchSummaryOut):
    assignments = fields.List(fields.Nested(AssignmentOut), dump_only=True)
    matches = fields.List(fields.Nested(MatchOut), dump_only=True)
    last_run = fields.Nested(LastRunOut, dump_only=True, allow_none=True,
                             metadata={"description": "how the batch's last run in matching ended (none yet: null)"})
    released_assignment_ids = fields.List(fields.String(), dump_only=True, metadata={
        "description": "the assignments closing the batch released for a new batch"})


class OrganisationOut(Schema):
    id = fields.String()
    name = fields.String()
    role = fields.String()
    levels = fields.List(fields.String())


class MeAccount(Schema):
    id = fields.String()
    email = fields.String()
    language = fields.String()


class MeOut(OrganisationOut):
    organisation_name = fields.String(metadata={"description": "the organisation's name (the same as name)"})
    account = fields.Nested(MeAccount, allow_none=True, metadata={
        "description": "the signed-in person, when called with an account's token; null for an API key"})


class TeamPatch(Schema):
    code = fields.String(validate=validate.Length(min=1, max=40))
    size = fields.Integer(strict=True, validate=validate.Range(min=1, max=12))
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=60)), validate=validate.Length(max=30))


class AssignmentPatch(Schema):
    """Only while the assignment is submitted (not yet in a batch)."""

    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    period = fields.String(validate=validate.Length(min=1, max=40))
    accepted_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)),
                                  validate=validate.Length(min=1, max=3))
    required_skills = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                                  validate=validate.Length(max=30))
    nice_to_have_skills = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                                      validate=validate.Length(max=30))
    min_teams = fields.Integer(strict=True, validate=validate.Range(min=1, max=10))
    max_teams = fields.Integer(strict=True, validate=validate.Range(min=1, max=10))
    theme = fields.String(allow_none=True, validate=validate.OneOf(THEMES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    mode = fields.String(validate=validate.OneOf(MODES))
    preferred_institutions = fields.List(fields.String(validate=validate.Length(max=36)),
                                         validate=validate.Length(max=10),
                                         metadata={"description": "institution ids, most wanted first"})
    preferred_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), validate=validate.Length(max=3),
                                   metadata={"description": "accepted levels, most wanted first; narrowing "
                                                            "accepted_levels must keep every preferred level"})


def _ids() -> fields.List[str]:
    return fields.List(fields.String(validate=validate.Length(min=1, max=36)), validate=validate.Length(min=1, max=100),
                       metadata={"description": "only these ids (repeat the parameter, at most 100): a batch lookup"})


class TeamFilter(Schema):
    workspace_id = fields.List(
        fields.String(validate=validate.Length(max=36)), validate=validate.Length(min=1, max=100),
        metadata={"description": "teams of this workspace (repeat the parameter for several: a round's workspaces)"})
    period = fields.String(validate=validate.Length(max=40))
    level = fields.String(validate=validate.OneOf(LEVELS))
    id = _ids()
    q = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "text in the team's code or its institution's name (case does not matter)"})


class AssignmentFilter(Schema):
    workspace_id = fields.String(validate=validate.Length(max=36))
    period = fields.String(validate=validate.Length(max=40))
    status = fields.String(validate=validate.OneOf([s.value for s in AssignmentStatus]))
    batch_id = fields.String(validate=validate.Length(max=36))
    id = _ids()
    q = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "text in the assignment's title or its firm's name (case does not matter)"})


class BatchFilter(Schema):
    id = fields.String(validate=validate.Length(max=36), metadata={"description": "one batch, without its lists"})
    workspace_id = fields.String(validate=validate.Length(max=36))
    period = fields.String(validate=validate.Length(max=40))
    status = fields.String(validate=validate.OneOf(["submitted", "matched", "infeasible", "failed", "cancelled",
                                                    "closed"]))


class FirmIn(Schema):
    kvk_number = fields.String(required=True, validate=validate.Length(equal=8),
                               metadata={"description": "the 8 digits of the firm's KvK registration"})
    sector = fields.String(required=True, validate=validate.Length(min=1, max=100))
    size_class = fields.String(required=True, validate=validate.OneOf(SIZE_CLASSES))
    municipality = _municipality(required=True, metadata={"description": "CBS municipality code, e.g. GM0193"})
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))
    max_concurrent_teams = fields.Integer(load_default=None, allow_none=True, strict=True,
                                          validate=validate.Range(min=1, max=100),
                                          metadata={"description": "the most teams the firm can host at once; "
                                                                   "empty: no cap"})


class FirmPatch(Schema):
    kvk_number = fields.String(validate=validate.Length(equal=8))
    sector = fields.String(validate=validate.Length(min=1, max=100))
    size_class = fields.String(validate=validate.OneOf(SIZE_CLASSES))
    municipality = _municipality()
    language = fields.String(validate=validate.OneOf(["nl", "en"]))
    max_concurrent_teams = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=1, max=100))


class FirmOut(FirmIn):
    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    workspace_id = fields.String(dump_only=True, allow_none=True,
                                 metadata={"description": "the workspace whose working area covers the firm"})


class SchemeIn(Schema):
    name_nl = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    url = fields.Url(required=True, schemes={"https"}, validate=validate.Length(max=300))
    themes = fields.List(fields.String(validate=validate.OneOf(THEMES)), load_default=list,
                         metadata={"description": "themes it helps with; empty: every theme"})
    active = fields.Boolean(load_default=True)


SCHEME_CODE = r"[a-z0-9][a-z0-9-]{0,39}"


class SchemeOut(SchemeIn):
    code = fields.String(dump_only=True)
    workspace_id = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "the workspace whose own scheme this is; null: a scheme of the national list"})
    national = fields.Boolean(dump_only=True, metadata={
        "description": "true: on the national list, kept by the operator and offered by every workspace"})


class ReferralOut(Schema):
    id = fields.String()
    firm_id = fields.String()
    assignment_id = fields.String(allow_none=True)
    from_workspace_id = fields.String()
    scheme_codes = fields.List(fields.String())
    reason = fields.String()
    created_at = UtcDateTime()


class ReferralFilter(Schema):
    workspace_id = fields.String(validate=validate.Length(min=1, max=36), metadata={
        "description": "only the referrals this workspace made"})
    newest_first = fields.Boolean(load_default=False, metadata={"description": "the latest referral first"})


class HandoverIn(Schema):
    from_workspace_id = fields.String(required=True, validate=validate.Length(max=36))
    to_workspace_id = fields.String(required=True, validate=validate.Length(max=36))
    firm_ids = fields.List(fields.String(validate=validate.Length(max=36)), load_default=list,
                           validate=validate.Length(max=5000),
                           metadata={"description": "the firms to move; empty: every firm of the workspace"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class HandoverOut(HandoverIn):
    id = fields.String(dump_only=True)
    assignment_ids = fields.List(fields.String(), dump_only=True,
                                 metadata={"description": "the open assignments moved to the receiving workspace"})
    rerun_pending_assignment_ids = fields.List(fields.String(), dump_only=True, metadata={
        "description": "open assignments left where they were: declined, they wait for the automatic re-run "
                       "of their batch (hand them over once it is published, if still open)"})
    actor_organisation_id = fields.String(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class CampusSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    municipality = _municipality(required=True)


class BlockSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40),
                         metadata={"description": "the institution's own name of the block, e.g. B3"})
    workspace_id = fields.String(required=True, validate=validate.Length(max=36))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40),
                           metadata={"description": "the workspace period the block falls in"})


class InstitutionPatch(Schema):
    programmes = fields.List(fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(max=200))
    campuses = fields.List(fields.Nested(CampusSchema), validate=validate.Length(max=50))
    blocks = fields.List(fields.Nested(BlockSchema), validate=validate.Length(max=200))


class InstitutionOut(Schema):
    id = fields.String()
    name = fields.String()
    levels = fields.List(fields.String())
    programmes = fields.List(fields.String())
    campuses = fields.List(fields.Nested(CampusSchema))
    blocks = fields.List(fields.Nested(BlockSchema))


class CapacityIn(Schema):
    workspace_id = fields.String(required=True, validate=validate.Length(max=36))
    programme = fields.String(required=True, validate=validate.Length(min=1, max=100))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    teams = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=500))
    team_size_min = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    team_size_max = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=60)), load_default=list,
                         validate=validate.Length(max=30))
    supervision_hours = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10000),
                                       metadata={"description": "lecturer supervision hours available"})


class CapacityOut(CapacityIn):
    id = fields.String(dump_only=True)
    institution_id = fields.String(dump_only=True)
