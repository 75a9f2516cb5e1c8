"""Every message between services, defined once: type, version, producer, consumers, schema.

Messages carry ids and the facts the consumer needs, never personal data (no names, e-mail
addresses, phone numbers). Schemas reject unknown fields at every level.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

LEVELS = ("MBO", "HBO", "WO")
ROLES = ("coordinator", "institution", "entrepreneur", "operator")  # operator: runs the platform (dead letters)
# What an API key may do: read = GET, write = POST/PUT/PATCH/DELETE, keys = manage keys and accounts.
SCOPES = ("read", "write", "keys")
# Matching policies a batch may ask for; matching explains each in plain words.
POLICIES = ("max_fit", "max_served", "rank_maximal", "stable")
# Policies a v1 batch could ask for (kept so v1 messages still validate as they did).
POLICIES_V1 = ("max_fit", "max_served")
MODES = ("on_site", "remote", "hybrid")
FLOOR_DIMENSIONS = ("region", "level", "institution")
RESPONSES = ("accepted", "declined")
ERASURE_SUBJECTS = ("team", "firm_contact")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class EnvelopeSchema(StrictSchema):
    message_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    occurred_at = fields.String(required=True)
    producer = fields.String(required=True)
    payload = fields.Dict(required=True)


# ---- payload schemas -------------------------------------------------------------------------


class ApiKeyIssuedV1(StrictSchema):
    key_id = fields.String(required=True)
    organisation_id = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    secret_hash = fields.String(required=True, validate=validate.Length(equal=64))
    issued_at = fields.String(required=True)


class ApiKeyIssuedV2(ApiKeyIssuedV1):
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1, max=len(SCOPES)))


class AccountDisabledV1(StrictSchema):
    account_id = fields.String(required=True, validate=validate.Length(min=1, max=27))
    organisation_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    disabled_at = fields.String(required=True)


class SessionRevokedV1(StrictSchema):
    """A person's sign-in session ended (signed out or revoked): its id only, no personal data."""

    session_id = fields.String(required=True, validate=validate.Length(min=1, max=32))
    revoked_at = fields.String(required=True)


class ApiKeyRevokedV1(StrictSchema):
    key_id = fields.String(required=True)
    revoked_at = fields.String(required=True)


class SnapshotAssignmentV1(StrictSchema):
    assignment_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    accepted_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), required=True)
    required_skills = fields.List(fields.String(), required=True)
    nice_to_have_skills = fields.List(fields.String(), required=True)
    min_teams = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    max_teams = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class SnapshotTeamV1(StrictSchema):
    team_id = fields.String(required=True)
    institution_id = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    skills = fields.List(fields.String(), required=True)


class WorkspaceRegisteredV1(StrictSchema):
    """A workspace exists in intake: its id and its coordinators' organisation, nothing else."""

    workspace_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    coordinator_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    registered_at = fields.String(required=True)


class AnnouncedAssignmentV1(StrictSchema):
    assignment_id = fields.String(required=True)
    firm_id = fields.String(required=True)


class AnnouncedTeamV1(StrictSchema):
    team_id = fields.String(required=True)
    institution_id = fields.String(required=True)


class BatchAnnouncedV1(StrictSchema):
    """What scheduling needs of a batch to check the runs published for it: ids only."""

    batch_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    coordinator_id = fields.String(required=True)
    assignments = fields.List(fields.Nested(AnnouncedAssignmentV1), required=True)
    teams = fields.List(fields.Nested(AnnouncedTeamV1), required=True)


_LABEL = validate.Length(min=1, max=200)


class AnnouncedAssignmentV2(AnnouncedAssignmentV1):
    """An assignment as the firm knows it: its title and the firm's (business) name."""

    title = fields.String(required=True, validate=_LABEL)
    firm_name = fields.String(required=True, validate=_LABEL)


class AnnouncedTeamV2(AnnouncedTeamV1):
    """A team as a firm may know it: the code its institution gave it (never a student's name), the
    institution's name, its level and skills."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    institution_name = fields.String(required=True, validate=_LABEL)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=60)), required=True,
                         validate=validate.Length(max=30))


class AnnouncedPeriodV2(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    starts_on = fields.String(required=True, allow_none=True)
    ends_on = fields.String(required=True, allow_none=True)


class BatchAnnouncedV2(BatchAnnouncedV1):
    """v1 plus what the people scheduling writes to read: the workspace's name, the name of the organisation
    that coordinates it, the batch's period (code and dates) and, per assignment and team, its public
    description. Organisations' names only: no person's name, address or number."""

    workspace_name = fields.String(required=True, validate=_LABEL)
    coordinator_name = fields.String(required=True, validate=_LABEL)
    period = fields.Nested(AnnouncedPeriodV2, required=True)
    assignments = fields.List(fields.Nested(AnnouncedAssignmentV2), required=True)
    teams = fields.List(fields.Nested(AnnouncedTeamV2), required=True)


class BatchSubmittedV1(StrictSchema):
    batch_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    coordinator_id = fields.String(required=True)
    period = fields.String(required=True)
    policy = fields.String(required=True, validate=validate.OneOf(POLICIES_V1))
    auto_publish = fields.Boolean(required=True)
    assignments = fields.List(fields.Nested(SnapshotAssignmentV1), required=True)
    teams = fields.List(fields.Nested(SnapshotTeamV1), required=True)


_LATITUDE = validate.Range(min=-90, max=90)
_LONGITUDE = validate.Range(min=-180, max=180)


class SnapshotAssignmentV2(SnapshotAssignmentV1):
    """An assignment as matching needs it. ``municipality`` is the firm's CBS code (GMnnnn) and
    ``latitude``/``longitude`` that municipality's centre (not the firm's address); ``region`` is the
    municipality's province. ``supervision_hours`` is the lecturer time one team on it needs.
    ``preferred_institutions``/``preferred_levels`` are the firm's ranked wishes, best first."""

    period = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    municipality = fields.String(required=True, allow_none=True)
    latitude = fields.Float(required=True, allow_none=True, validate=_LATITUDE)
    longitude = fields.Float(required=True, allow_none=True, validate=_LONGITUDE)
    region = fields.String(required=True, allow_none=True)
    priority = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10))
    supervision_hours = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    preferred_institutions = fields.List(fields.String(), required=True, validate=validate.Length(max=10))
    preferred_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), required=True,
                                   validate=validate.Length(max=3))


class SnapshotTeamV2(SnapshotTeamV1):
    """A team as matching needs it: pseudonymous id, the periods it can work in, its campus's
    municipality (code, centre, province), how far it travels, and its ranked assignment ids."""

    periods = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    municipality = fields.String(required=True, allow_none=True)
    latitude = fields.Float(required=True, allow_none=True, validate=_LATITUDE)
    longitude = fields.Float(required=True, allow_none=True, validate=_LONGITUDE)
    region = fields.String(required=True, allow_none=True)
    travel_limit_km = fields.Integer(required=True, strict=True, allow_none=True, validate=validate.Range(min=0))
    remote_allowed = fields.Boolean(required=True)
    preferences = fields.List(fields.String(), required=True, validate=validate.Length(max=10))


class SnapshotCapacityV2(StrictSchema):
    """An institution's registered capacity for one period and level, summed over its programmes:
    at most ``teams`` teams, and ``supervision_hours`` of lecturer time. No row: no limit."""

    institution_id = fields.String(required=True)
    period = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    teams = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    supervision_hours = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class SnapshotFirmCapV2(StrictSchema):
    firm_id = fields.String(required=True)
    max_teams = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class FairnessFloorV2(StrictSchema):
    """At least ``min_share`` of a group served: a region's assignments, or a level's or an
    institution's teams."""

    dimension = fields.String(required=True, validate=validate.OneOf(FLOOR_DIMENSIONS))
    value = fields.String(required=True)
    min_share = fields.Float(required=True, validate=validate.Range(min=0, max=1))


class BatchSubmittedV2(StrictSchema):
    batch_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    coordinator_id = fields.String(required=True)
    period = fields.String(required=True)
    policy = fields.String(required=True, validate=validate.OneOf(POLICIES))
    auto_publish = fields.Boolean(required=True)
    working_area = fields.List(fields.String(), required=True)
    assignments = fields.List(fields.Nested(SnapshotAssignmentV2), required=True)
    teams = fields.List(fields.Nested(SnapshotTeamV2), required=True)
    capacities = fields.List(fields.Nested(SnapshotCapacityV2), required=True)
    firm_caps = fields.List(fields.Nested(SnapshotFirmCapV2), required=True)
    fairness_floors = fields.List(fields.Nested(FairnessFloorV2), required=True)


class SnapshotReferenceV3(StrictSchema):
    """Where matching fetches a snapshot that is too large for one message (a claim-check): intake keeps it under
    ``snapshot_id`` and serves it at ``GET /batch-snapshots/{snapshot_id}`` to a request matching signs with the
    shared secret (see werkplaats_shared.claimcheck); ``sha256`` and ``size_bytes`` are of the JSON body served."""

    snapshot_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    size_bytes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class SnapshotAssignmentV3(SnapshotAssignmentV2):
    """v2 plus the workspace the assignment belongs to (one of the round's; absent in snapshots sent before)."""

    workspace_id = fields.String(validate=validate.Length(min=1, max=36))


class SnapshotTeamV3(SnapshotTeamV2):
    """v2 plus the workspace the team is registered in (one of the round's; absent in snapshots sent before)."""

    workspace_id = fields.String(validate=validate.Length(min=1, max=36))


class BatchSubmittedV3(StrictSchema):
    """v2 plus the workspaces of the round (``workspace_ids``, one or several: a multi-region or national round;
    ``workspace_id`` is the first of them) and, for a large batch, the snapshot by reference: then
    ``snapshot_ref`` is set and ``working_area``, ``assignments``, ``teams``, ``capacities``, ``firm_caps`` and
    ``fairness_floors`` are absent; matching fetches them (the full v3 payload, inline form) and checks the hash."""

    batch_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    workspace_ids = fields.List(fields.String(validate=validate.Length(min=1, max=36)), required=True,
                                validate=validate.Length(min=1))
    coordinator_id = fields.String(required=True)
    period = fields.String(required=True)
    policy = fields.String(required=True, validate=validate.OneOf(POLICIES))
    auto_publish = fields.Boolean(required=True)
    snapshot_ref = fields.Nested(SnapshotReferenceV3, load_default=None, allow_none=True)
    working_area = fields.List(fields.String())
    assignments = fields.List(fields.Nested(SnapshotAssignmentV3))
    teams = fields.List(fields.Nested(SnapshotTeamV3))
    capacities = fields.List(fields.Nested(SnapshotCapacityV2))
    firm_caps = fields.List(fields.Nested(SnapshotFirmCapV2))
    fairness_floors = fields.List(fields.Nested(FairnessFloorV2))

    @validates_schema
    def _inline_or_by_reference(self, data: dict[str, Any], **_: Any) -> None:
        if data["workspace_ids"][0] != data["workspace_id"] or len(set(data["workspace_ids"])) != len(
                data["workspace_ids"]):
            raise ValidationError("workspace_ids must start with workspace_id and name each workspace once",
                                  field_name="workspace_ids")
        present = [name for name in SNAPSHOT_BODY_FIELDS if name in data]
        if data.get("snapshot_ref") is None and len(present) != len(SNAPSHOT_BODY_FIELDS):
            missing = sorted(set(SNAPSHOT_BODY_FIELDS) - set(present))
            raise ValidationError(f"an inline snapshot needs {', '.join(missing)}", field_name="snapshot_ref")
        if data.get("snapshot_ref") is not None and present:
            raise ValidationError(f"a snapshot by reference carries no {', '.join(present)}",
                                  field_name="snapshot_ref")


# What a v3 batch.submitted carries inline, or leaves to the fetch of its snapshot_ref.
SNAPSHOT_BODY_FIELDS = ("working_area", "assignments", "teams", "capacities", "firm_caps", "fairness_floors")


class PublishedMatchV1(StrictSchema):
    match_id = fields.String(required=True)
    assignment_id = fields.String(required=True)
    team_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    institution_id = fields.String(required=True)
    score = fields.Float(required=True)


class MatchesPublishedV1(StrictSchema):
    run_id = fields.String(required=True)
    batch_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    coordinator_id = fields.String(required=True)
    period = fields.String(required=True)
    matches = fields.List(fields.Nested(PublishedMatchV1), required=True)
    unmatched_assignment_ids = fields.List(fields.String(), required=True)


class PublishedMatchV2(PublishedMatchV1):
    """A match; ``previous_match_id`` names the same (team, assignment) pair's match in the superseded run
    (its answer, deadline and kickoff carry over), null for a pair the run added."""

    previous_match_id = fields.String(required=True, allow_none=True)


class MatchesPublishedV2(MatchesPublishedV1):
    """v1 plus ``supersedes_run_id``: the batch's previously published run, null for the first."""

    supersedes_run_id = fields.String(required=True, allow_none=True)
    matches = fields.List(fields.Nested(PublishedMatchV2), required=True)


class MatchRespondedV1(StrictSchema):
    match_id = fields.String(required=True)
    run_id = fields.String(required=True)
    batch_id = fields.String(required=True)
    assignment_id = fields.String(required=True)
    team_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    response = fields.String(required=True, validate=validate.OneOf(RESPONSES))
    responded_at = fields.String(required=True)


class AssignmentWithdrawnV1(StrictSchema):
    assignment_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    batch_id = fields.String(required=True, allow_none=True)
    withdrawn_at = fields.String(required=True)


class AssignmentLeftBatchV1(StrictSchema):
    assignment_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    batch_id = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(["handed_over"]))
    left_at = fields.String(required=True)


RUN_OUTCOMES = ("solved", "published", "infeasible", "failed", "cancelled")


class RunDiagnosisV1(StrictSchema):
    """Why a run found no matching, as the coordinator reads it: the constraint groups that cannot hold
    and the message in English and Dutch (constraint labels name ids and groups, never a person)."""

    groups = fields.List(fields.String(validate=validate.Length(max=40)), required=True,
                         validate=validate.Length(max=20))
    message = fields.String(required=True, validate=validate.Length(max=2000))
    message_nl = fields.String(required=True, validate=validate.Length(max=2000))


class RunEndedV1(StrictSchema):
    run_id = fields.String(required=True)
    batch_id = fields.String(required=True)
    trigger = fields.String(required=True, validate=validate.Length(max=30))
    status = fields.String(required=True, validate=validate.OneOf(RUN_OUTCOMES))
    ended_at = fields.String(required=True)
    error = fields.String(required=True, allow_none=True, validate=validate.Length(max=500))
    diagnosis = fields.Nested(RunDiagnosisV1, required=True, allow_none=True)


class BatchClosedV1(StrictSchema):
    batch_id = fields.String(required=True)
    closed_at = fields.String(required=True)


class AssignmentSubmittedV1(StrictSchema):
    assignment_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    period = fields.String(required=True)
    theme = fields.String(required=True, allow_none=True)
    accepted_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), required=True)
    routed_from_workspace_id = fields.String(required=True, allow_none=True)


class TeamRegisteredV1(StrictSchema):
    team_id = fields.String(required=True)
    institution_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    period = fields.String(required=True)
    skills = fields.List(fields.String(), required=True)


class CapacityRegisteredV1(StrictSchema):
    capacity_id = fields.String(required=True)
    institution_id = fields.String(required=True)
    workspace_id = fields.String(required=True)
    period = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    teams = fields.Integer(required=True, strict=True)
    team_size_min = fields.Integer(required=True, strict=True)
    team_size_max = fields.Integer(required=True, strict=True)
    skills = fields.List(fields.String(), required=True)
    supervision_hours = fields.Integer(required=True, strict=True)


class ReferralSchemeV1(StrictSchema):
    code = fields.String(required=True)
    label_nl = fields.String(required=True)
    label_en = fields.String(required=True)
    url = fields.String(required=True)


class FirmReferredV1(StrictSchema):
    referral_id = fields.String(required=True)
    firm_id = fields.String(required=True)
    assignment_id = fields.String(required=True, allow_none=True)
    from_workspace_id = fields.String(required=True)
    coordinator_id = fields.String(required=True)
    scheme_codes = fields.List(fields.String(), required=True)
    schemes = fields.List(fields.Nested(ReferralSchemeV1), required=True)
    reason = fields.String(required=True, validate=validate.OneOf(["outside_working_area"]))


class PersonalDataErasedV1(StrictSchema):
    """Whose personal data intake erased: the kind of subject and its (pseudonymous) id, never the data."""

    subject_kind = fields.String(required=True, validate=validate.OneOf(ERASURE_SUBJECTS))
    subject_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    erased_at = fields.String(required=True)


@dataclass(frozen=True)
class Contract:
    type: str
    version: int
    producer: str
    consumers: tuple[str, ...]
    schema: builtins.type[Schema]
    description: str


CONTRACTS: tuple[Contract, ...] = (
    Contract(
        "apikey.issued", 1, "intake", ("matching", "scheduling"), ApiKeyIssuedV1,
        "An API key was issued to an organisation; carries the key's SHA-256 hash, never the key.",
    ),
    Contract(
        "apikey.issued", 2, "intake", ("matching", "scheduling"), ApiKeyIssuedV2,
        "An API key was issued: v1 plus the key's scopes (read, write, keys); a v1 key holds all of them.",
    ),
    Contract(
        "apikey.revoked", 1, "intake", ("matching", "scheduling"), ApiKeyRevokedV1,
        "An API key was revoked; every service stops accepting it.",
    ),
    Contract(
        "account.disabled", 1, "intake", ("matching", "scheduling"), AccountDisabledV1,
        "An account was disabled; every service stops accepting its tokens at once.",
    ),
    Contract(
        "session.revoked", 1, "intake", ("matching", "scheduling"), SessionRevokedV1,
        "A person's sign-in session was revoked (sign-out); every service stops accepting the tokens that carry "
        "its id (claim sid). The session id only, no personal data.",
    ),
    Contract(
        "assignment.submitted", 1, "intake", (), AssignmentSubmittedV1,
        "A firm submitted an assignment (after working-area routing); no consumer yet.",
    ),
    Contract(
        "team.registered", 1, "intake", (), TeamRegisteredV1,
        "An institution registered a team (pseudonymous: code and attributes stay in intake); no consumer yet.",
    ),
    Contract(
        "capacity.registered", 1, "intake", (), CapacityRegisteredV1,
        "An institution registered capacity for a workspace period; no consumer yet.",
    ),
    Contract(
        "firm.referred", 1, "intake", ("scheduling",), FirmReferredV1,
        "No workspace serves the firm's municipality: its assignment was referred to the listed support "
        "schemes of the catalogue; scheduling tells the firm.",
    ),
    Contract(
        "workspace.registered", 1, "intake", ("matching", "scheduling"), WorkspaceRegisteredV1,
        "A workspace exists (its id and its coordinators' organisation), sent before its first batch or referral "
        "and by intake's reconciliation: matching and scheduling act on a batch, run or referral only for a "
        "workspace announced this way, by the coordinators' organisation it names.",
    ),
    Contract(
        "batch.announced", 1, "intake", ("scheduling",), BatchAnnouncedV1,
        "A batch was submitted (or re-submitted): which assignments (of which firm) and teams (of which "
        "institution) it holds, ids only; scheduling checks the runs matching publishes for it against this. A "
        "message of its own (not a second consumer of batch.submitted): on the embedded broker two queues' "
        "copies of one publish share a delivery tag, so one consumer's ack would drop the other's unacked copy.",
    ),
    Contract(
        "batch.announced", 2, "intake", ("scheduling",), BatchAnnouncedV2,
        "v1 plus the names people know things by, for the notices, invitations and pages scheduling makes: each "
        "assignment's title and firm name, each team's code, institution name, level and skills, the workspace's "
        "and its coordinating organisation's names and the batch's period with its dates. Organisations' names "
        "only, never a person's.",
    ),
    Contract(
        "batch.submitted", 1, "intake", ("matching",), BatchSubmittedV1,
        "A coordinator submitted a batch: the snapshot of assignments and teams matching needs.",
    ),
    Contract(
        "batch.submitted", 2, "intake", ("matching",), BatchSubmittedV2,
        "A coordinator submitted a batch: assignments with period, mode, place and the firm's wishes; teams "
        "with periods, campus place, travel limit and ranked wishes; capacity, firm caps and fairness floors. "
        "Sent again with the same batch_id when the coordinator changes the settings of a batch without a "
        "published matching (PATCH /batches/{id}): matching replaces its copy and runs the batch again. Sent again "
        "with the same message id by intake's reconciliation when the batch has no run outcome for too long.",
    ),
    Contract(
        "batch.submitted", 3, "intake", ("matching",), BatchSubmittedV3,
        "v2 for a round over one or several workspaces (workspace_ids; workspace_id is the first, whose coordinators' "
        "organisation coordinates every one of them). A snapshot of at most WERKPLAATS_SNAPSHOT_INLINE_BYTES travels "
        "in the message; a larger one stays in intake (a claim-check) and the message carries snapshot_ref: matching "
        "fetches it with a signed, expiring request, checks its SHA-256 and proceeds as with the inline form.",
    ),
    Contract(
        "batch.closed", 1, "intake", ("matching",), BatchClosedV1,
        "A coordinator closed a batch without a published matching (POST /batches/{id}/close): its assignments "
        "were released for a new batch; matching cancels the batch's open runs and runs or publishes it no more.",
    ),
    Contract(
        "assignment.withdrawn", 1, "intake", ("matching",), AssignmentWithdrawnV1,
        "A firm or coordinator withdrew an assignment; when it is in a batch with published matches, matching "
        "proposes (or publishes) a minimum-change re-run without it.",
    ),
    Contract(
        "assignment.left_batch", 1, "intake", ("matching",), AssignmentLeftBatchV1,
        "An assignment a round left unmatched moved to another workspace in a handover: matching drops it from "
        "its copy of the batch, so a later re-run of that batch cannot give it a team.",
    ),
    Contract(
        "matches.published", 1, "matching", ("scheduling", "intake"), MatchesPublishedV1,
        "A matching run was published: one id per match, plus the assignments left unmatched.",
    ),
    Contract(
        "matches.published", 2, "matching", ("scheduling", "intake"), MatchesPublishedV2,
        "A matching run was published: v1 plus the run it supersedes and, per match, the same pair's match in "
        "that run, so a re-run only notifies the pairs it changed.",
    ),
    Contract(
        "run.ended", 1, "matching", ("intake",), RunEndedV1,
        "A matching run ended: solved (waiting to be published), published, infeasible (with the diagnosis: "
        "the constraint groups that cannot hold), failed (with the error) or cancelled; intake shows it on "
        "the batch.",
    ),
    Contract(
        "match.responded", 1, "scheduling", ("intake", "matching"), MatchRespondedV1,
        "An entrepreneur accepted or declined a match (through the signed link in the notice).",
    ),
    Contract(
        "personal_data.erased", 1, "intake", ("matching", "scheduling"), PersonalDataErasedV1,
        "Intake erased a team's or a firm contact's personal data (on request or by the retention job); "
        "every service erases its own copies and keeps the pseudonymous id only.",
    ),
)

_BY_KEY = {(c.type, c.version): c for c in CONTRACTS}


def contract_for(message_type: str, version: int) -> Contract:
    try:
        return _BY_KEY[(message_type, version)]
    except KeyError:
        raise ValidationError(
            f"unknown message type/version {message_type!r} v{version}", field_name="type"
        ) from None


@dataclass(frozen=True)
class Envelope:
    type: str
    version: int
    producer: str
    payload: dict[str, Any]
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at,
            "producer": self.producer,
            "payload": self.payload,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)


@functools.cache
def _schema_of(schema_class: builtins.type[Schema]) -> Schema:
    """One instance of each contract's schema, made once: making a marshmallow schema copies every field,
    which cost more than loading a payload. Loading and dumping do not change an instance."""
    return schema_class()


def make_envelope(message_type: str, version: int, payload: dict[str, Any]) -> Envelope:
    """Build an outgoing envelope, validating the payload against its contract."""
    contract = contract_for(message_type, version)
    return Envelope(type=message_type, version=version, producer=contract.producer,
                    payload=validated(contract.schema, payload))


# ---- the typed check of a long list of flat records ------------------------------------------
# A publication carries thousands of matches; marshmallow takes about 50 us per match to load and dump one
# (0.3 s of the worker's path at 10,000 teams). A list of records whose fields are all plain strings and
# floats is checked instead by a loop built from the same schema: every record a dict with exactly the
# schema's keys, each value of exactly the field's type (None only where the field allows it, floats
# finite unless it allows NaN). What passes is what marshmallow accepts, and the copy made is what it
# dumps (str and finite float values load and dump as themselves); anything else (a missing or extra key,
# an int, bytes, a str subclass, NaN) leaves that list to marshmallow, so its error is marshmallow's own.
# tests/unit/test_contracts.py holds both equal on mutated payloads of every contract with such a list.


@dataclass(frozen=True)
class _FlatRecords:
    """A ``List(Nested(S))`` field the typed check takes: S's field names in dump order and, per field, a check
    that passes only values S's field loads (and dumps) as themselves, and whether the value is a list (copied,
    as loading makes a new one)."""

    names: tuple[str, ...]
    keys: frozenset[str]
    checks: tuple[tuple[Callable[[Any], bool], bool], ...]


def _plain(f: fields.Field[Any], optional: bool = False) -> bool:
    """A field loaded and dumped under its own name, with no validator of its own, always present (unless
    ``optional``)."""
    return (not f.validators and f.data_key is None and f.attribute is None and not f.load_only
            and not f.dump_only and (f.required or optional))


def _no_hooks(schema: Schema) -> bool:
    return not any(schema._hooks.values())  # marshmallow keeps the pre/post/validates hooks here


def _value_check(f: fields.Field[Any]) -> Callable[[Any], bool] | None:
    """A check that passes only values ``f`` loads as themselves and accepts, validators included (they are
    called as marshmallow calls them); None when ``f`` is of a kind the typed check leaves to marshmallow. It
    passes a value of exactly the plain type only: marshmallow may accept others (1 for a float, "true" for a
    boolean), converted; those go to marshmallow."""
    if f.data_key is not None or f.attribute is not None or f.load_only or f.dump_only:
        return None
    if not all(isinstance(v, validate.Validator) for v in f.validators):
        return None  # a plain function may say no by returning False: leave it to marshmallow
    validators = tuple(f.validators)
    kind = type(f)
    base: Callable[[Any], bool]
    if kind is fields.String:
        def base(v: Any) -> bool:
            return type(v) is str
    elif kind is fields.Integer and cast(fields.Integer, f).strict:
        def base(v: Any) -> bool:
            return type(v) is int
    elif kind is fields.Float and not cast(fields.Float, f).as_string:
        if cast(fields.Float, f).allow_nan:
            def base(v: Any) -> bool:
                return type(v) is float
        else:
            def base(v: Any) -> bool:
                return type(v) is float and math.isfinite(v)
    elif kind is fields.Boolean:
        def base(v: Any) -> bool:
            return type(v) is bool
    elif kind is fields.List:
        inner = _value_check(cast("fields.List[Any]", f).inner)
        if inner is None:
            return None

        def base(v: Any) -> bool:
            return type(v) is list and all(inner(item) for item in v)
    else:
        return None
    nullable = f.allow_none
    if not validators:
        if nullable:
            return lambda v: v is None or base(v)
        return base

    def check(v: Any) -> bool:
        if v is None:
            return nullable
        if not base(v):
            return False
        try:
            for validator in validators:
                validator(v)
        except ValidationError:
            return False
        return True

    return check


# Schemas whose own hooks look only at which fields a payload has, never into their records: the typed check may
# take their lists (marshmallow then sees each list it took as empty, present all the same).
# BatchSubmittedV3's hook: inline or by reference, told by which snapshot fields are there.
_RECORD_BLIND_HOOKS: set[builtins.type[Schema]] = {BatchSubmittedV3}


@functools.cache
def _flat_lists(schema_class: builtins.type[Schema]) -> dict[str, _FlatRecords]:
    """The fields of ``schema_class`` the typed check can validate (none when the schema has hooks that may look
    into them)."""
    schema = schema_class()
    if not _no_hooks(schema) and schema_class not in _RECORD_BLIND_HOOKS:
        return {}
    out = {}
    for name, f in schema.fields.items():
        inner = getattr(f, "inner", None)
        # a list that may be left out is taken only where it is there (an absent one is not a list: marshmallow's)
        if type(f) is not fields.List or not _plain(f, optional=True) or type(inner) is not fields.Nested:
            continue
        if inner.many or inner.only is not None or inner.exclude or inner.unknown is not None or inner.validators:
            continue
        item = inner.schema
        if (not _no_hooks(item) or item.opts.unknown != RAISE or item.only is not None or item.exclude
                or item.partial or item.many or list(item.dump_fields) != list(item.load_fields)):
            continue
        checks: list[tuple[Callable[[Any], bool], bool]] = []
        for g in item.dump_fields.values():
            check = _value_check(g) if g.required else None
            if check is None:
                break
            checks.append((check, type(g) is fields.List))
        else:
            names = tuple(item.dump_fields)
            out[name] = _FlatRecords(names, frozenset(names), tuple(checks))
    return out


def _checked(records: _FlatRecords, items: Any) -> list[dict[str, Any]] | None:
    """``items`` as marshmallow would load and dump them, or None when the typed check does not pass them."""
    if type(items) is not list:
        return None
    names, keys = records.names, records.keys
    fields_of = tuple(zip(names, records.checks, strict=True))
    out = []
    for item in items:
        if type(item) is not dict or item.keys() != keys:
            return None
        record = {}
        for name, (check, copied) in fields_of:
            value = item[name]
            if not check(value):
                return None
            record[name] = list(value) if copied else value
        out.append(record)
    return out


def validated(schema_class: builtins.type[Schema], payload: Any) -> dict[str, Any]:
    """The payload as ``schema_class`` loads it (the same as loading then dumping it: see the
    comment below); raises the schema's ValidationError. Long lists of flat records are checked by the typed
    check above, the rest by marshmallow."""
    fast: dict[str, list[dict[str, Any]]] = {}
    if isinstance(payload, dict):
        for name, records in _flat_lists(schema_class).items():
            rows = _checked(records, payload.get(name))
            if rows is not None:
                fast[name] = rows
    # every payload field is JSON-native (String, Integer, Float, Boolean, List, Nested: a unit test keeps it so),
    # so what loading gives is what dumping it would give; a national batch's snapshot is not serialised twice
    schema = _schema_of(schema_class)
    out: dict[str, Any] = schema.load({**payload, **{name: [] for name in fast}} if fast else payload)
    out.update(fast)
    return out


def parse_envelope(raw: Any) -> Envelope:
    """Validate an incoming message (already JSON-decoded). Raises ValidationError."""
    if not isinstance(raw, dict):
        raise ValidationError("message body must be a JSON object", field_name="_schema")
    data = _schema_of(EnvelopeSchema).load(raw)  # one instance: making a schema costs more than a message
    contract = contract_for(data["type"], data["version"])
    return Envelope(
        type=data["type"], version=data["version"], producer=data["producer"],
        payload=validated(contract.schema, data["payload"]), message_id=data["message_id"],
        occurred_at=data["occurred_at"],
    )
