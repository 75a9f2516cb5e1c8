"""Scheduling's workshop API: the theme catalogue; coordinators' programmes with candidate slots, rooms,
facilitators, the optimiser's plan and its sessions; entrepreneurs' interest; seats and waitlist places,
and cancelling them (the freed seat goes to the next in line, who gets a notice)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Page
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import current_principal
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, Listed, QueryPage, service_errors

from ..domain.workshops import DAY_PARTS, THEMES
from ..service_layer import plan_jobs
from ..service_layer import workshops as svc
from .plan_jobs_api import PlanJobOut, job_errors

MUNICIPALITY = validate.Regexp(r"^GM\d{4}$", error="a CBS municipality code such as GM0344")
THEME = validate.OneOf(sorted(THEMES))
MAX_SLOTS = 200


def _errors() -> Any:
    return service_errors((svc.Refused,), (svc.NotFound,))


def _unique(items: list[Any], field: str, what: str) -> None:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        key = tuple(sorted(item.items())) if isinstance(item, dict) else item
        if key in seen:
            raise ValidationError({field: {i: [f"{what} is listed twice"]}})
        seen.add(key)


class SlotSchema(Schema):
    date = fields.Date(required=True)
    day_part = fields.String(required=True, validate=validate.OneOf(DAY_PARTS))


class SlotOut(Schema):
    date = fields.String(metadata={"format": "date"})
    day_part = fields.String()


class ThemeOut(Schema):
    code = fields.String()
    label_nl = fields.String()
    label_en = fields.String()


class ProgrammeIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    slots = fields.List(fields.Nested(SlotSchema), required=True, validate=validate.Length(min=1, max=MAX_SLOTS),
                        metadata={"description": "candidate slots: a date and a day part (morning, afternoon, "
                                                 "evening)"})
    sessions_wanted = fields.Dict(keys=fields.String(validate=THEME),
                                  values=fields.Integer(validate=validate.Range(min=0, max=20)), load_default=dict,
                                  metadata={"description": "sessions wanted per theme; a theme left out gets one "
                                                           "session when there is interest in it"})
    max_sessions_per_location_day = fields.Integer(load_default=2, validate=validate.Range(min=1, max=20))
    online_capacity = fields.Integer(load_default=0, validate=validate.Range(min=0, max=500), metadata={
        "description": "seats in an online session; 0 means no online sessions"})
    min_participants = fields.Integer(load_default=3, validate=validate.Range(min=1, max=100), metadata={
        "description": "a session runs only with at least this many seated"})

    @validates_schema
    def _distinct_slots(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _unique(data.get("slots", []), "slots", "this slot")


class LocationOut(Schema):
    municipality_code = fields.String()
    name = fields.String()


class ProgrammeFilter(Schema):
    newest_first = fields.Boolean(load_default=False, metadata={"description": "the latest made first"})


class ProgrammeOut(Schema):
    id = fields.String()
    title = fields.String()
    status = fields.String(metadata={"description": "open (takes interest) or planned"})
    slots = fields.List(fields.Nested(SlotOut))
    sessions_wanted = fields.Dict(keys=fields.String(), values=fields.Integer())
    max_sessions_per_location_day = fields.Integer()
    online_capacity = fields.Integer()
    min_participants = fields.Integer()
    locations = fields.List(fields.Nested(LocationOut), metadata={"description": "where its rooms are"})
    plan_report = fields.Dict(allow_none=True, metadata={"description": "the last plan's outcome"})
    created_at = UtcDateTime()
    planned_at = UtcDateTime(allow_none=True)


class RoomIn(Schema):
    municipality_code = fields.String(required=True, validate=MUNICIPALITY)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    availability = fields.List(fields.Nested(SlotSchema), required=True,
                               validate=validate.Length(min=1, max=MAX_SLOTS),
                               metadata={"description": "candidate slots of the programme the room is free"})

    @validates_schema
    def _distinct(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _unique(data.get("availability", []), "availability", "this slot")


class RoomOut(RoomIn):
    id = fields.String(dump_only=True)
    programme_id = fields.String(dump_only=True)
    availability = fields.List(fields.Nested(SlotOut))


class FacilitatorIn(Schema):
    label = fields.String(required=True, validate=[
        validate.Length(min=1, max=60),
        validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$", error="a pseudonymous label: letters, digits, "
                                                                "spaces, dots, dashes (no names or e-mail)")],
        metadata={"description": "pseudonymous, e.g. F-07"})
    themes = fields.List(fields.String(validate=THEME), required=True,
                         validate=validate.Length(min=1, max=len(THEMES)))
    availability = fields.List(fields.Nested(SlotSchema), required=True,
                               validate=validate.Length(min=1, max=MAX_SLOTS))

    @validates_schema
    def _distinct(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _unique(data.get("themes", []), "themes", "this theme")
        _unique(data.get("availability", []), "availability", "this slot")


class FacilitatorOut(FacilitatorIn):
    id = fields.String(dump_only=True)
    programme_id = fields.String(dump_only=True)
    availability = fields.List(fields.Nested(SlotOut))


class InterestIn(Schema):
    theme = fields.String(required=True, validate=THEME)
    locations = fields.List(fields.String(validate=MUNICIPALITY), load_default=list,
                            validate=validate.Length(max=10),
                            metadata={"description": "CBS municipality codes, most preferred first"})
    online_ok = fields.Boolean(load_default=False)
    available_days = fields.List(fields.Date(), required=True, validate=validate.Length(min=1, max=366))

    @validates_schema
    def _distinct(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _unique(data.get("locations", []), "locations", "this location")
        _unique(data.get("available_days", []), "available_days", "this day")


class InterestOut(Schema):
    id = fields.String()
    programme_id = fields.String()
    firm_id = fields.String()
    theme = fields.String()
    locations = fields.List(fields.String())
    online_ok = fields.Boolean()
    available_days = fields.List(fields.String(metadata={"format": "date"}))
    registered_at = UtcDateTime()


class PlanIn(Schema):
    time_limit = fields.Float(load_default=None, validate=validate.Range(min=1, max=plan_jobs.MAX_TIME_LIMIT),
                              metadata={"description": "seconds the solver may take (left out: "
                                                       f"{plan_jobs.DEFAULT_TIME_LIMITS['workshops']:g})"})


class SessionOut(Schema):
    id = fields.String()
    programme_id = fields.String()
    theme = fields.String()
    date = fields.Date()
    day_part = fields.String()
    venue = fields.String(metadata={"description": "room or online"})
    room_id = fields.String(allow_none=True)
    location_name = fields.String(allow_none=True)
    municipality_code = fields.String(allow_none=True)
    facilitator_id = fields.String()
    capacity = fields.Integer()
    status = fields.String(metadata={"description": "running, or dropped by a later plan"})


class SessionMoveIn(Schema):
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    date = fields.Date(required=True)
    day_part = fields.String(required=True, validate=validate.OneOf(DAY_PARTS))
    room_id = fields.String(required=True, allow_none=True, validate=validate.Length(min=1, max=36), metadata={
        "description": "a room of the programme, or null for an online session"})
    facilitator_id = fields.String(load_default=None, validate=validate.Length(min=1, max=36), metadata={
        "description": "left out: the session keeps its facilitator"})


class SessionSeatsOut(SessionOut):
    seated = fields.Integer()
    waitlisted = fields.Integer()


class RegistrationOut(Schema):
    id = fields.String()
    programme_id = fields.String()
    interest_id = fields.String()
    firm_id = fields.String(metadata={"description": "the entrepreneur's organisation (its name is in intake)"})
    status = fields.String(metadata={"description": "seated, waitlisted, cancelled, released (seated in "
                                                    "another session of the theme, or no longer a place to "
                                                    "wait for), or dropped (a later plan took the seat away)"})
    waitlist_position = fields.Integer(allow_none=True, metadata={"description": "1 is next in line"})
    session = fields.Nested(SessionOut)
    updated_at = UtcDateTime()


class RegistrationFilter(Schema):
    programme_id = fields.String(validate=validate.Length(min=1, max=36))
    session_id = fields.String(validate=validate.Length(min=1, max=36))
    status = fields.String(validate=validate.OneOf(["seated", "waitlisted", "cancelled", "released", "dropped"]))


class CancelOut(Schema):
    registration = fields.Nested(RegistrationOut)
    promoted_registration_id = fields.String(allow_none=True, metadata={
        "description": "the waitlist place that got the freed seat (its holder gets a notice)"})


class RegistrationMoveIn(Schema):
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=36), metadata={
        "description": "a running session of the same programme and theme, with a free seat"})


class MoveOut(Schema):
    registration = fields.Nested(RegistrationOut, metadata={"description": "the entrepreneur's seat now"})
    promoted_registration_id = fields.String(allow_none=True, metadata={
        "description": "the waitlist place that got the seat the entrepreneur left (its holder gets a notice)"})


def workshops_blueprint(sf: sessionmaker[Session]) -> Blueprint:
    blp = Blueprint("workshops", __name__, url_prefix="", description=(
        "Themed workshops: coordinators plan programmes (PuLP/HiGHS decides which sessions run where and "
        "when, and who sits where); entrepreneurs register interest, hold seats or waitlist places"))

    @blp.route("/workshop-themes")
    class Themes(MethodView):
        @blp.response(200, ThemeOut(many=True))
        def get(self) -> Any:
            """The theme catalogue, in Dutch and English."""
            return [{"code": code, "label_nl": labels["nl"], "label_en": labels["en"]}
                    for code, labels in THEMES.items()]

    @blp.route("/workshop-programmes")
    class Programmes(MethodView):
        @blp.arguments(ProgrammeFilter, location="query")
        @blp.response(200, ProgrammeOut(many=True))
        @blp.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            """Coordinators: their own programmes; entrepreneurs: open ones and those they registered for; a
            page at a time, oldest first unless asked otherwise."""
            return Listed(sf, svc.visible_programmes(current_principal(), **filters), svc.programme_view)

        @blp.arguments(ProgrammeIn)
        @blp.response(201, ProgrammeOut)
        def post(self, data: dict[str, Any]) -> Any:
            with sf.begin() as session:
                return svc.programme_view(session, svc.create_programme(session, current_principal(), data))

    @blp.route("/workshop-programmes/<programme_id>")
    class ProgrammeItem(MethodView):
        @blp.response(200, ProgrammeOut)
        def get(self, programme_id: str) -> Any:
            with sf() as session, _errors():
                return svc.programme_view(session, svc.get_programme(session, current_principal(), programme_id))

    @blp.route("/workshop-programmes/<programme_id>/rooms")
    class Rooms(MethodView):
        @blp.response(200, RoomOut(many=True))
        @blp.paginate(Page, max_page_size=100)
        def get(self, programme_id: str) -> Any:
            with sf() as session, _errors():
                return svc.rooms_of(session, current_principal(), programme_id)

        @blp.arguments(RoomIn)
        @blp.response(201, RoomOut)
        def post(self, data: dict[str, Any], programme_id: str) -> Any:
            with _errors(), sf.begin() as session:
                return svc.add_room(session, current_principal(), programme_id, data)

    @blp.route("/workshop-programmes/<programme_id>/facilitators")
    class Facilitators(MethodView):
        @blp.response(200, FacilitatorOut(many=True))
        @blp.paginate(Page, max_page_size=100)
        def get(self, programme_id: str) -> Any:
            with sf() as session, _errors():
                return svc.facilitators_of(session, current_principal(), programme_id)

        @blp.arguments(FacilitatorIn)
        @blp.response(201, FacilitatorOut)
        def post(self, data: dict[str, Any], programme_id: str) -> Any:
            with _errors(), sf.begin() as session:
                return svc.add_facilitator(session, current_principal(), programme_id, data)

    @blp.route("/workshop-programmes/<programme_id>/interests")
    class Interests(MethodView):
        @blp.response(200, InterestOut(many=True))
        @blp.paginate(QueryPage, max_page_size=100)
        def get(self, programme_id: str) -> Any:
            """Coordinators: all interest in their programme; entrepreneurs: their own."""
            with sf() as session, _errors():
                return Listed(sf, svc.interests_query(session, current_principal(), programme_id))

        @blp.arguments(InterestIn)
        @blp.response(201, InterestOut)
        def post(self, data: dict[str, Any], programme_id: str) -> Any:
            """Register interest in one theme (once per theme) while the programme is open."""
            with _errors(), sf.begin() as session:
                return svc.register_interest(session, current_principal(), programme_id, data)

    @blp.route("/workshop-programmes/<programme_id>/plan")
    class PlanItem(MethodView):
        @blp.arguments(PlanIn)
        @blp.response(202, PlanJobOut)
        @blp.alt_response(409, description="a plan of the programme with other settings is queued or running")
        def post(self, data: dict[str, Any], programme_id: str) -> Any:
            """Queue the planning of the programme (a plan job, see Location): which sessions run (theme, room
            or online, slot, facilitator) and who is seated; the rest wait in registration order. Nothing
            to plan is reported in the job's result, not stored. A planned programme is planned again,
            keeping seated firms where possible; firms whose seat changes get updated invitations."""
            with _errors(), job_errors(), sf.begin() as session:
                job, _ = plan_jobs.submit_workshop_plan(session, current_principal(), programme_id,
                                                        data["time_limit"])
                return plan_jobs.job_view(session, job), 202, {"Location": url_for("plan_jobs.PlanJobItem",
                                                                                   job_id=job.id)}

    @blp.route("/workshop-programmes/<programme_id>/session-moves")
    class SessionMoves(MethodView):
        @blp.arguments(SessionMoveIn)
        @blp.response(200, SessionOut)
        @blp.alt_response(409, description="the programme has not been planned")
        def post(self, data: dict[str, Any], programme_id: str) -> Any:
            """Move a planned session to another slot, room (or online) or facilitator, checked by the
            planning rules; its seated firms get updated invitations."""
            with _errors(), sf.begin() as session:
                return svc.move_session(session, current_principal(), programme_id, svc.Move(**data))

    @blp.route("/workshop-programmes/<programme_id>/sessions")
    class Sessions(MethodView):
        @blp.response(200, SessionSeatsOut(many=True))
        @blp.paginate(Page, max_page_size=100)
        def get(self, programme_id: str) -> Any:
            with sf() as session, _errors():
                return svc.sessions_of(session, current_principal(), programme_id)

    @blp.route("/workshop-registrations")
    class Registrations(MethodView):
        @blp.arguments(RegistrationFilter, location="query")
        @blp.response(200, RegistrationOut(many=True))
        @blp.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            """Entrepreneurs: their seats and waitlist places; coordinators: those of their programmes."""
            return Listed(sf, svc.registrations_query(current_principal(), **filters), svc.registration_view)

    @blp.route("/workshop-registrations/<registration_id>/cancel")
    class CancelRegistration(MethodView):
        @blp.response(200, CancelOut)
        @blp.alt_response(409, description="cancelled or released before")
        def post(self, registration_id: str) -> Any:
            """Give up a seat or waitlist place; a freed seat goes to the next in line, with a notice."""
            with _errors(), sf.begin() as session:
                done = svc.cancel_registration(session, current_principal(), registration_id)
                return {"registration": done.registration, "promoted_registration_id": done.promoted_id}

    @blp.route("/workshop-registrations/<registration_id>/move")
    class MoveRegistration(MethodView):
        @blp.arguments(RegistrationMoveIn)
        @blp.response(200, MoveOut)
        @blp.alt_response(409, description="the session is full, the place was cancelled, or the entrepreneur "
                                           "has a seat elsewhere in the theme")
        def post(self, data: dict[str, Any], registration_id: str) -> Any:
            """Coordinators: move an entrepreneur's seat or waitlist place to another session of its theme that
            it can make (its available days and places) and that has a free seat. It is seated there with an
            (updated) invitation; a seat it leaves goes to the first in that session's line."""
            with _errors(), sf.begin() as session:
                done = svc.move_registration(session, current_principal(), registration_id, data["session_id"])
                return {"registration": done.registration, "promoted_registration_id": done.promoted_id}

    return blp

