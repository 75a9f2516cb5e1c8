"""Scheduling's HTTP API: an entrepreneur's notification contact, webhook and availability, an
institution's holiday region and non-teaching weeks, notices and their delivery log, kickoffs (view;
coordinators plan, move, cancel), each organisation's .ics feed, and the public accept/decline pages
behind the signed links in match notices."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from flask import Flask, Response, request, url_for
from flask.views import MethodView
from flask_smorest import Page, abort
from marshmallow import Schema, ValidationError, fields, post_dump, post_load, validate, validates_schema
from werkplaats_shared.auth import current_principal, install_auth
from werkplaats_shared.authorization import install_authorization
from werkplaats_shared.deadletters_api import dead_letter_blueprint
from werkplaats_shared.fields import UtcDateTime
from werkplaats_shared.http import Blueprint, Listed, QueryPage, add_health, create_app, service_errors
from werkplaats_shared.idempotency import install_idempotency
from werkplaats_shared.ratelimit import install_rate_limits
from werkplaats_shared.service import Infrastructure, health_checks, ready_reports
from werkplaats_shared.tokens import verifier_for

from ..adapters import orm
from ..adapters.calendar_data import REGIONS
from ..adapters.links import RESPONSES_PATH, ResponseLinks
from ..adapters.pages import render_page
from ..adapters.webhook_client import system_resolve
from ..domain.calendar import KICKOFF_DURATION, KICKOFF_WEEKS, SLOTS
from ..domain.kickoffs import DEFAULT_DAILY_CAP, VENUES, TimeWindow
from ..domain.responses import DECISIONS, LINK_VALIDITY, AlreadyAnswered, LinkExpired, LinkInvalid
from ..domain.webhooks import MAX_URL_LENGTH, Resolver, TargetRefused
from ..service_layer import kickoffs as kickoff_services
from ..service_layer import plan_jobs, privacy, services
from .authorization import MATRIX
from .plan_jobs_api import PlanJobOut, job_errors, plan_jobs_blueprint
from .reach_api import reach_blueprint
from .workshops_api import workshops_blueprint

MAX_WINDOW_WEEKS = 8
MAX_CONTACTS = 2000  # contacts of one PUT /contacts, all set in one transaction
MAX_NON_TEACHING = 60
KICKOFF_MINUTES = int(KICKOFF_DURATION.total_seconds() // 60)


class ContactIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))


class ContactForIn(ContactIn):
    organisation_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


class ContactsIn(Schema):
    contacts = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1, max=MAX_CONTACTS),
                           metadata={"description": f"1 to {MAX_CONTACTS:,} items: organisation_id, email, language"})


class ContactsOut(Schema):
    count = fields.Integer(metadata={"description": "contacts set (created or replaced)"})


def _flatten(messages: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        return [item for key, value in messages.items() for item in _flatten(value, f"{path}.{key}" if path
                                                                             else str(key))]
    if isinstance(messages, list):
        return [item for m in messages for item in _flatten(m, path)]
    return [(path or "_item", str(messages))]


class ContactOut(ContactIn):
    organisation_id = fields.String(dump_only=True)


class NoticeOut(Schema):
    id = fields.String()
    kind = fields.String()
    firm_id = fields.String()
    run_id = fields.String()
    batch_id = fields.String()
    period = fields.String()
    matches = fields.List(fields.Dict())
    status = fields.String(metadata={"description": "e-mail: pending, sent, no_contact or failed"})
    language = fields.String(allow_none=True)
    attempts = fields.Integer()
    webhook_status = fields.String(allow_none=True, metadata={
        "description": "null (no webhook when the notice was made), pending, delivered, failed or cancelled"})
    webhook_attempts = fields.Integer()
    created_at = UtcDateTime()
    sent_at = UtcDateTime(allow_none=True)
    sequence = fields.Integer(metadata={"description": "kickoff notices: the invitation's SEQUENCE"})
    answer_deadline = UtcDateTime(allow_none=True, metadata={
        "description": "match notices: unanswered matches count as declined after this moment"})
    trace_id = fields.String(allow_none=True, metadata={
        "description": "the trace the notice was made in (W3C trace id): the request or message that led to it, "
                       "e.g. the batch's submission; its deliveries and log lines in every service carry it"})


class DeliveryOut(Schema):
    channel = fields.String(metadata={"description": "email or webhook"})
    attempt = fields.Integer()
    status_code = fields.Integer(allow_none=True, metadata={"description": "the webhook's HTTP status"})
    error = fields.String(allow_none=True, metadata={"description": "why the attempt failed; null if it succeeded"})
    attempted_at = UtcDateTime()
    duration_ms = fields.Integer(allow_none=True)
    state = fields.String(metadata={"description": "sending: recorded before the hand-off, outcome not yet known; "
                                    "done; interrupted: the process stopped between hand-off and record (the mail "
                                    "may have gone out)"})
    message_id = fields.String(allow_none=True, metadata={
        "description": "the e-mail's Message-ID header, the same on every attempt of a notice: a receiver drops "
                       "a second copy by it"})
    possible_duplicate = fields.Boolean(metadata={
        "description": "true when an earlier attempt was interrupted after the hand-off: this one may be a "
                       "second copy"})
    trace_id = fields.String(allow_none=True, metadata={
        "description": "the trace the notice belongs to (W3C trace id, 32 hex digits): the request or message "
                       "that led to it, e.g. the batch's submission; its log lines in every service carry it"})


class KickoffOut(Schema):
    match_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    batch_id = fields.String()
    status = fields.String(metadata={"description": "proposed, unplaced (see reason) or cancelled"})
    starts_at = UtcDateTime(allow_none=True, metadata={"description": "local time with its offset"})
    ends_at = UtcDateTime(allow_none=True)
    timezone = fields.String()
    venue = fields.String(allow_none=True, metadata={
        "description": "on_site (the firm's premises), online, or null when the firm has not said"})
    sequence = fields.Integer(metadata={"description": "the invitation's SEQUENCE: raised by every change"})
    reason = fields.String(allow_none=True, metadata={
        "description": "unplaced: why no slot was found; cancelled: the coordinator's reason, if given"})
    reason_code = fields.String(allow_none=True, metadata={
        "description": "no_common_slot, holidays or daily_cap (null when placed)"})
    firm_agreed = fields.Boolean(metadata={"description": "the firm agreed to the proposed time"})
    institution_agreed = fields.Boolean(metadata={
        "description": "the team's institution agreed to the proposed time"})
    confirmed = fields.Boolean(metadata={
        "description": "both sides agreed: the invitation says STATUS:CONFIRMED (a move makes it tentative again)"})


class KickoffAgreementIn(Schema):
    sequence = fields.Integer(required=True, validate=validate.Range(min=0), metadata={
        "description": "the kickoff's sequence as you read it: the time you agree to (a kickoff moved since "
                       "answers 409)"})


class KickoffPlanIn(Schema):
    batch_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    weeks = fields.Integer(load_default=KICKOFF_WEEKS, validate=validate.Range(min=1, max=MAX_WINDOW_WEEKS),
                           metadata={"description": "kickoffs fall in this many weeks from the period's start"})
    daily_cap = fields.Integer(load_default=None, validate=validate.Range(min=1, max=len(SLOTS)), metadata={
        "description": "at most this many kickoffs per coordinator per day; kept as your choice, which "
                       f"acceptances and moves use too (left out: your last choice, at first {DEFAULT_DAILY_CAP})"})
    time_limit = fields.Float(load_default=None, validate=validate.Range(min=1, max=plan_jobs.MAX_TIME_LIMIT),
                              metadata={"description": "seconds the solver may take (left out: "
                                                       f"{plan_jobs.DEFAULT_TIME_LIMITS['kickoffs']:g})"})


class KickoffPlanJobOut(PlanJobOut):
    """A plan job; a done kickoff job lists the batch's kickoffs as they are now."""

    kickoffs = fields.List(fields.Nested(KickoffOut))


KICKOFF_STATUSES = ("proposed", "unplaced", "cancelled")
MAX_RANGE_DAYS = 366


class KickoffFilter(Schema):
    from_ = fields.Date(data_key="from", metadata={
        "description": "only kickoffs starting on or after this day (Europe/Amsterdam), e.g. 2027-02-01; "
                       "with from or until the list is in order of starting time"})
    until = fields.Date(metadata={"description": "only kickoffs starting on or before this day (inclusive)"})
    status = fields.String(validate=validate.OneOf(KICKOFF_STATUSES))
    batch_id = fields.String(validate=validate.Length(min=1, max=36))

    @validates_schema
    def _range(self, data: dict[str, Any], **_kw: Any) -> None:
        start, end = data.get("from_"), data.get("until")
        if start and end and end < start:
            raise ValidationError("until is before from", "until")
        if start and end and (end - start).days >= MAX_RANGE_DAYS:
            raise ValidationError(f"a range of at most {MAX_RANGE_DAYS} days", "until")


class KickoffWeekOut(Schema):
    week = fields.String(metadata={"description": "an ISO week such as 2027-W06"})
    monday = fields.Date()
    kickoffs = fields.Integer(metadata={"description": "proposed kickoffs starting in that week"})


class KickoffMoveIn(Schema):
    starts_at = fields.AwareDateTime(required=True, metadata={
        "description": "the new start with its offset; on a quarter of an hour"})
    weeks = fields.Integer(load_default=KICKOFF_WEEKS, validate=validate.Range(min=1, max=MAX_WINDOW_WEEKS))


class KickoffCancelIn(Schema):
    reason = fields.String(load_default=None, validate=validate.Length(min=1, max=200), metadata={
        "description": "why the kickoff is cancelled, in the coordinator's words (shown with the kickoff)"})


class NonTeachingIn(Schema):
    iso_week = fields.String(validate=validate.Regexp(r"^\d{4}-W\d{2}$"), metadata={
        "description": "an ISO week such as 2031-W02 (Monday to Sunday); or give start and end"})
    start = fields.Date()
    end = fields.Date(metadata={"description": "inclusive"})

    @validates_schema
    def _one_form(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("iso_week" in data) == ("start" in data or "end" in data):
            raise ValidationError("give either iso_week or start and end", "iso_week")
        if "iso_week" in data:
            try:
                date.fromisocalendar(int(data["iso_week"][:4]), int(data["iso_week"][6:]), 1)
            except ValueError:
                raise ValidationError(f"{data['iso_week']} is not an ISO week", "iso_week") from None
            return
        if "start" not in data or "end" not in data:
            raise ValidationError("start and end are both needed", "end" if "start" in data else "start")
        if data["end"] < data["start"]:
            raise ValidationError("end is before start", "end")
        if (data["end"] - data["start"]).days >= 366:
            raise ValidationError("a period is at most a year", "end")

    @post_load
    def _as_range(self, data: dict[str, Any], **_kwargs: Any) -> tuple[date, date]:
        if "iso_week" in data:
            monday = date.fromisocalendar(int(data["iso_week"][:4]), int(data["iso_week"][6:]), 1)
            return monday, monday + timedelta(days=6)
        return data["start"], data["end"]


class NonTeachingOut(Schema):
    start = fields.String()
    end = fields.String()


class InstitutionCalendarIn(Schema):
    region = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(REGIONS), metadata={
        "description": "school-holiday region: noord, midden or zuid"})
    non_teaching = fields.List(fields.Nested(NonTeachingIn), load_default=list,
                               validate=validate.Length(max=MAX_NON_TEACHING))


class InstitutionCalendarOut(Schema):
    institution_id = fields.String()
    region = fields.String(allow_none=True)
    non_teaching = fields.List(fields.Nested(NonTeachingOut))
    updated_at = UtcDateTime()


HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class AvailabilityWindowIn(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(min=0, max=4), metadata={
        "description": "0 = Monday .. 4 = Friday"})
    start = fields.String(required=True, validate=validate.Regexp(HHMM), metadata={"description": "HH:MM"})
    end = fields.String(required=True, validate=validate.Regexp(HHMM), metadata={"description": "HH:MM"})

    @validates_schema
    def _long_enough(self, data: dict[str, Any], **_kwargs: Any) -> None:
        start, end = time.fromisoformat(data["start"]), time.fromisoformat(data["end"])
        if (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute) < KICKOFF_MINUTES:
            raise ValidationError(f"a window holds at least one kickoff of {KICKOFF_MINUTES} minutes", "end")

    @post_load
    def _as_window(self, data: dict[str, Any], **_kwargs: Any) -> TimeWindow:
        return TimeWindow(data["weekday"], time.fromisoformat(data["start"]), time.fromisoformat(data["end"]))


class AvailabilityIn(Schema):
    windows = fields.List(fields.Nested(AvailabilityWindowIn), required=True, validate=validate.Length(min=1, max=35))
    blocked_dates = fields.List(fields.Date(), load_default=list, validate=validate.Length(max=366))
    venue = fields.String(required=True, validate=validate.OneOf(VENUES), metadata={
        "description": "on_site (your premises) or online"})
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200),
                            metadata={"description": "your premises; needed for on_site"})

    @validates_schema
    def _address_for_on_site(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("venue") == "on_site" and not data.get("address"):
            raise ValidationError("an on-site kickoff needs the address of your premises", "address")


class AvailabilityWindowOut(Schema):
    weekday = fields.Integer()
    start = fields.String()
    end = fields.String()


class AvailabilityOut(Schema):
    firm_id = fields.String()
    windows = fields.List(fields.Nested(AvailabilityWindowOut))
    blocked_dates = fields.List(fields.String())
    venue = fields.String()
    address = fields.String(allow_none=True)
    updated_at = UtcDateTime()


class CalendarFeedQuery(Schema):
    language = fields.String(load_default=None, validate=validate.OneOf(["nl", "en"]))


class WebhookIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH), metadata={
        "description": "https URL on a public address; checked now and before every delivery"})
    rotate_secret = fields.Boolean(load_default=False, metadata={
        "description": "generate a new signing secret (returned once in this answer)"})


class WebhookOut(Schema):
    url = fields.String()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    secret = fields.String(metadata={
        "description": "signing secret; only in the answer that created or rotated it, never again"})

    @post_dump
    def _secret_only_once(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data.get("secret") is None:
            data.pop("secret", None)
        return data


DECISION_ALIASES = {"accept": "accepted", "decline": "declined"}


class DecisionIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf([*DECISIONS, *DECISION_ALIASES]), metadata={
        "description": "accepted or declined (the verbs accept and decline mean the same)"})

    @post_load
    def _verb_or_state(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["decision"] = DECISION_ALIASES.get(data["decision"], data["decision"])
        return data


class AnswerOut(Schema):
    decision = fields.String()
    responded_at = UtcDateTime()


class LinkedMatchOut(Schema):
    notice_id = fields.String()
    match_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    period = fields.String()
    response = fields.Nested(AnswerOut, allow_none=True)


class ResponseOut(Schema):
    match_id = fields.String()
    decision = fields.String()
    responded_at = UtcDateTime()


class MatchAnswerOut(Schema):
    match_id = fields.String()
    notice_id = fields.String()
    run_id = fields.String()
    batch_id = fields.String()
    assignment_id = fields.String()
    team_id = fields.String()
    period = fields.String()
    answer_deadline = UtcDateTime(allow_none=True, metadata={
        "description": "an unanswered match counts as declined after this moment"})
    decision = fields.String(allow_none=True, metadata={"description": "accepted, declined, or null (no answer yet)"})
    responded_at = UtcDateTime(allow_none=True)


class ResponsesBlueprint(Blueprint):
    # the accept/decline form posts form fields; API clients may send the same field as JSON
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {**Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                             "json_or_form": "application/x-www-form-urlencoded"}


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def _wants_html() -> bool:
    if request.method == "POST":
        return not request.is_json
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) != "application/json"


def _page(status: int, state: str, language: str | None, **context: Any) -> Response:
    return Response(render_page("response_page", language, {"state": state, **context}), status=status,
                    mimetype="text/html")


def create_scheduling_app(infra: Infrastructure, resolve: Resolver = system_resolve,
                          links: ResponseLinks | None = None) -> Flask:
    app, api = create_app("Werkplaats scheduling")
    install_auth(app, infra.engine, infra.api_keys, public_prefixes=(RESPONSES_PATH,),
                 tokens=verifier_for(infra.settings))
    install_rate_limits(app, infra.settings)
    install_authorization(app, MATRIX)
    install_idempotency(app, infra.engine, orm.idempotency)
    add_health(app, health_checks(infra), ready_reports(infra))
    privacy.install_audit(app, infra)
    sf = infra.session_factory
    settings = infra.settings
    signed = links or ResponseLinks(settings.secret_key, settings.public_url)

    contact = Blueprint("contact", __name__, url_prefix="/contact", description=(
        "An entrepreneur's: where it receives notices (personal data: kept only here). A coordinator's: the "
        "workspace's contact address that firms' notices, invitations and answer pages name as whom to ask "
        "(a shared mailbox rather than a person's address)."))

    @contact.route("")
    class ContactItem(MethodView):
        @contact.response(200, ContactOut)
        def get(self) -> Any:
            with sf() as session:
                found = session.get(orm.Contact, current_principal().organisation_id)
            if found is None:
                abort(404, message="no contact registered")
            return found

        @contact.arguments(ContactIn)
        @contact.response(200, ContactOut)
        def put(self, data: dict[str, Any]) -> Any:
            with sf.begin() as session:
                return services.set_contact(session, current_principal(), data)

    contacts = Blueprint("contacts", __name__, url_prefix="/contacts", description=(
        "The operator's: many organisations' contacts at once, when it onboards firms in bulk (all or none)"))

    @contacts.route("")
    class Contacts(MethodView):
        @contacts.arguments(ContactsIn)
        @contacts.response(200, ContactsOut)
        def put(self, data: dict[str, Any]) -> Any:
            """Set the contact of many firms (or coordinators) at once: all of them, or none.

            Each item names the organisation (``organisation_id``, one scheduling knows: it has an API key of
            an entrepreneur or coordinator) and its ``email`` and ``language``, as ``PUT /contact`` takes them.
            When any item is wrong, nothing is stored and the answer (422) names every bad item: ``row`` is its
            position in ``contacts`` (from 0), ``field`` the path (``contacts.3.email``) and ``reason`` why."""
            schema = ContactForIn()
            loaded: list[tuple[int, dict[str, Any]]] = []
            problems: list[dict[str, Any]] = []
            for n, item in enumerate(data["contacts"]):
                try:
                    loaded.append((n, schema.load(item)))
                except ValidationError as exc:
                    problems += [{"field": f"contacts.{n}.{path}", "row": n, "reason": reason}
                                 for path, reason in _flatten(exc.messages)]
            with sf.begin() as session:
                try:
                    count = services.set_contacts(session, loaded)
                except services.ContactsRejected as exc:
                    problems += [{"field": f"contacts.{row}.{field}", "row": row, "reason": reason}
                                 for row, field, reason in exc.problems]
                    count = 0
                if problems:
                    session.rollback()
                    problems.sort(key=lambda p: p["row"])
                    abort(422, message=f"{len(problems)} problems in {len({p['row'] for p in problems})} contacts; "
                                       "nothing was stored", errors=problems)
            return {"count": count}

    webhook = Blueprint("webhook", __name__, url_prefix="/webhook", description=(
        "An entrepreneur's webhook: every notice is also POSTed there as JSON, signed with HMAC-SHA256 "
        "over `timestamp + '.' + body` (headers X-Werkplaats-Timestamp, X-Werkplaats-Signature: "
        "sha256=<hex>, Idempotency-Key: <notice id>), retried with backoff when it fails. The body (version 2) "
        "names what the e-mail names beside the ids: each match's title, firm_name, team_code, institution_name "
        "and level (null where intake never named them), the period_label in your language, the coordinator; "
        "a kickoff's status is TENTATIVE while proposed, CONFIRMED once you and the team's institution agreed"))

    @webhook.route("")
    class WebhookItem(MethodView):
        @webhook.response(200, WebhookOut)
        def get(self) -> Any:
            with sf() as session:
                try:
                    return services.get_webhook(session, current_principal())
                except services.NotFound:
                    abort(404, message="no webhook registered")

        @webhook.arguments(WebhookIn)
        @webhook.response(200, WebhookOut)
        def put(self, data: dict[str, Any]) -> Any:
            try:
                with sf.begin() as session:
                    return services.set_webhook(session, current_principal(), data, resolve,
                                                settings.webhook_allow_loopback)
            except TargetRefused as exc:
                abort(422, message="this webhook URL cannot be used", errors=[{"field": "url", "reason": exc.reason}])

        @webhook.response(204)
        def delete(self) -> Any:
            try:
                with sf.begin() as session:
                    services.delete_webhook(session, current_principal())
            except services.NotFound:
                abort(404, message="no webhook registered")
            return None

    notices = Blueprint("notices", __name__, url_prefix="/notices", description="Notices sent to entrepreneurs")

    @notices.route("")
    class Notices(MethodView):
        @notices.response(200, NoticeOut(many=True))
        @notices.paginate(QueryPage, max_page_size=100)
        def get(self) -> Any:
            return Listed(sf, services.visible_notices(current_principal()))

    @notices.route("/<notice_id>")
    class NoticeItem(MethodView):
        @notices.response(200, NoticeOut)
        def get(self, notice_id: str) -> Any:
            with sf() as session:
                found = session.execute(services.visible_notices(current_principal())
                                        .where(orm.Notice.id == notice_id)).scalar_one_or_none()
            if found is None:
                abort(404, message="not found")
            return found

    @notices.route("/<notice_id>/deliveries")
    class NoticeDeliveries(MethodView):
        @notices.response(200, DeliveryOut(many=True))
        def get(self, notice_id: str) -> Any:
            """Every attempt to deliver the notice, by e-mail and by webhook, oldest first."""
            with sf() as session:
                try:
                    return services.deliveries_of(session, current_principal(), notice_id)
                except services.NotFound:
                    abort(404, message="not found")

    kickoffs = Blueprint("kickoffs", __name__, url_prefix="/kickoffs", description=(
        "Kickoffs of accepted matches (a firm's, an institution's teams', a coordinator's): in the first "
        "weeks of the period, when the firm is available, on no public holiday, no school holiday of the "
        "institution's region and none of its non-teaching weeks, no firm, team or coordinator booked "
        "twice, the coordinator's kickoffs per day capped; Europe/Amsterdam. Coordinators plan a batch's "
        "kickoffs at once (PuLP/HiGHS), move or cancel one; the firm gets an updated invitation."))

    def rule_errors() -> Any:
        return service_errors((kickoff_services.Invalid,), (kickoff_services.NotFound,))

    @kickoffs.route("")
    class Kickoffs(MethodView):
        @kickoffs.arguments(KickoffFilter, location="query")
        @kickoffs.response(200, KickoffOut(many=True))
        @kickoffs.paginate(QueryPage, max_page_size=100)
        def get(self, filters: dict[str, Any]) -> Any:
            """The kickoffs you may see, a page at a time; a week calendar asks for its week with from and
            until."""
            query = services.filtered_kickoffs(services.visible_kickoffs(current_principal()), **filters)
            return Listed(sf, query, lambda _session, k: services.kickoff_view(k))

    @kickoffs.route("/weeks")
    class KickoffWeeks(MethodView):
        @kickoffs.response(200, KickoffWeekOut(many=True))
        def get(self) -> Any:
            """The weeks (Europe/Amsterdam) in which your proposed kickoffs start, with their number, in order:
            a calendar's way to the weeks that have kickoffs."""
            with sf() as session:
                return services.kickoff_weeks(session, current_principal())

    @kickoffs.route("/plan")
    class KickoffPlan(MethodView):
        @kickoffs.arguments(KickoffPlanIn)
        @kickoffs.response(202, KickoffPlanJobOut)
        @kickoffs.alt_response(409, description="a plan of the batch with other settings is queued or running")
        def post(self, data: dict[str, Any]) -> Any:
            """Queue the planning of all open kickoffs of one of your batches (a plan job, see Location):
            kickoffs whose slot still keeps every rule stay, the rest are planned around them; unplaced
            ones carry the reason. The same request while its job is open answers that job."""
            with rule_errors(), job_errors(), sf.begin() as session:
                job, _ = plan_jobs.submit_kickoff_plan(session, current_principal().organisation_id,
                                                       data["batch_id"], data["weeks"], data["daily_cap"],
                                                       data["time_limit"])
                return plan_jobs.job_view(session, job), 202, {"Location": url_for("plan_jobs.PlanJobItem",
                                                                                   job_id=job.id)}

    @kickoffs.route("/<match_id>")
    class KickoffItem(MethodView):
        @kickoffs.response(200, KickoffOut)
        def get(self, match_id: str) -> Any:
            with sf() as session:
                found = session.execute(services.visible_kickoffs(current_principal())
                                        .where(orm.Kickoff.match_id == match_id)).scalar_one_or_none()
                if found is None:
                    abort(404, message="not found")
                assert found is not None
                return services.kickoff_view(found)

        @kickoffs.arguments(KickoffMoveIn)
        @kickoffs.response(200, KickoffOut)
        def patch(self, data: dict[str, Any], match_id: str) -> Any:
            """Move a kickoff; checked by the planning rules, the firm gets an updated invitation."""
            with rule_errors(), sf.begin() as session:
                moved = kickoff_services.move_kickoff(session, current_principal().organisation_id, match_id,
                                                      data["starts_at"], data["weeks"])
                return services.kickoff_view(moved)

    @kickoffs.route("/<match_id>/agreement")
    class KickoffAgreement(MethodView):
        @kickoffs.arguments(KickoffAgreementIn)
        @kickoffs.response(200, KickoffOut)
        @kickoffs.alt_response(409, description="the kickoff was moved since the sequence you read")
        def post(self, data: dict[str, Any], match_id: str) -> Any:
            """Agree, as the firm or as the team's institution, to the kickoff's proposed time. Once both have
            agreed the kickoff is confirmed and the firm gets the invitation again with STATUS:CONFIRMED;
            agreeing again changes nothing."""
            principal = current_principal()
            with rule_errors(), sf.begin() as session:
                return services.kickoff_view(kickoff_services.agree_to_kickoff(
                    session, principal.role, principal.organisation_id, match_id, data["sequence"]))

    @kickoffs.route("/<match_id>/cancellation")
    class KickoffCancellation(MethodView):
        @kickoffs.arguments(KickoffCancelIn)
        @kickoffs.response(200, KickoffOut)
        def post(self, data: dict[str, Any], match_id: str) -> Any:
            """Cancel a kickoff, with the reason if given; an invited firm gets a cancellation
            (METHOD:CANCEL, same UID)."""
            with rule_errors(), sf.begin() as session:
                return services.kickoff_view(kickoff_services.cancel_kickoff(
                    session, current_principal().organisation_id, match_id, data["reason"]))

    calendars = Blueprint("calendars", __name__, url_prefix="", description=(
        "What the kickoff rules read: an institution's school-holiday region and non-teaching weeks, a "
        "firm's availability; and each organisation's kickoffs as an iCalendar feed"))

    @calendars.route("/institution-calendar")
    class InstitutionCalendarItem(MethodView):
        @calendars.response(200, InstitutionCalendarOut)
        def get(self) -> Any:
            with sf() as session:
                found = session.get(orm.InstitutionCalendar, current_principal().organisation_id)
            if found is None:
                abort(404, message="no calendar registered")
            return found

        @calendars.arguments(InstitutionCalendarIn)
        @calendars.response(200, InstitutionCalendarOut)
        def put(self, data: dict[str, Any]) -> Any:
            with sf.begin() as session:
                return kickoff_services.set_institution_calendar(
                    session, current_principal().organisation_id, data["region"], data["non_teaching"])

    @calendars.route("/availability")
    class AvailabilityItem(MethodView):
        @calendars.response(200, AvailabilityOut)
        def get(self) -> Any:
            with sf() as session:
                found = session.get(orm.FirmAvailability, current_principal().organisation_id)
            if found is None:
                abort(404, message="no availability registered")
            return found

        @calendars.arguments(AvailabilityIn)
        @calendars.response(200, AvailabilityOut)
        def put(self, data: dict[str, Any]) -> Any:
            with sf.begin() as session:
                return kickoff_services.set_firm_availability(
                    session, current_principal().organisation_id, data["windows"], data["blocked_dates"],
                    data["venue"], data["address"])

    @calendars.route("/calendar.ics")
    class CalendarFeed(MethodView):
        @calendars.arguments(CalendarFeedQuery, location="query")
        @calendars.response(200, content_type="text/calendar", description=(
            "iCalendar: your organisation's kickoffs (cancelled ones marked CANCELLED)"))
        def get(self, query: dict[str, Any]) -> Any:
            with sf() as session:
                body = services.kickoff_feed(session, current_principal(), query["language"])
            return Response(body, mimetype="text/calendar", headers={"Cache-Control": "no-store"})

    responses = ResponsesBlueprint(
        "responses", __name__, url_prefix="/responses",
        description="Public: the accept/decline link of a match notice (the signed token is the credential). "
                    f"HTML for browsers, JSON for clients that send or accept JSON. Links expire after "
                    f"{LINK_VALIDITY.days} days; the first answer stands.")

    def refuse(status: int, state: str, language: str | None, message: str, **context: Any) -> Any:
        if _wants_html():
            return _page(status, state, language, **context)
        abort(status, message=message, errors=[{"field": "token" if status != 409 else "decision",
                                                "reason": message}])

    def superseded(session: Any, target: Any) -> Any:
        notice = session.get(orm.Notice, target.notice_id)
        contact = session.get(orm.Contact, notice.firm_id) if notice else None
        language = contact.language if contact else (notice.language if notice else None)
        return refuse(410, "superseded", language, "this match was replaced by a new matching")

    def verified(token: str) -> Any:
        """The link's target, or a refusal page/answer when the link is forged or expired."""
        try:
            return signed.read(token)
        except LinkInvalid:
            return refuse(403, "invalid", None, "this link is not valid")
        except LinkExpired as exc:
            with sf() as session:
                notice = session.get(orm.Notice, exc.notice_id)
                contact = session.get(orm.Contact, notice.firm_id) if notice else None
            language = contact.language if contact else (notice.language if notice else None)
            return refuse(400, "expired", language, "this link has expired")

    @responses.after_request
    def _page_headers(response: Response) -> Response:
        response.headers.update(PAGE_HEADERS)
        return response

    @responses.route("/<token>")
    class ResponseLink(MethodView):
        @responses.doc(security=[])  # public: the signed token is the credential
        @responses.response(200, LinkedMatchOut, description="the match and any answer so far")
        @responses.alt_response(403, description="forged or altered link")
        @responses.alt_response(400, description="expired link")
        @responses.alt_response(410, description="a re-published matching dropped this match")
        def get(self, token: str) -> Any:
            target = verified(token)
            if isinstance(target, Response):
                return target
            with sf() as session:
                try:
                    found = services.linked_match(session, target)
                except services.Superseded:
                    return superseded(session, target)
                except services.NotFound:
                    return refuse(404, "not_found", None, "this match does not exist")
                names = services.page_names(session, found.notice, found.match, found.language)
            answer = found.response
            if _wants_html():
                if answer is not None:
                    return _page(200, "answered", found.language, decision=answer.decision,
                                 responded_at=answer.responded_at, **names)
                return _page(200, "open", found.language, **names)
            return {"notice_id": found.notice.id, **found.match, "period": found.notice.period,
                    "response": answer}

        @responses.doc(security=[])
        @responses.arguments(DecisionIn, location="json_or_form")
        @responses.response(201, ResponseOut, description="recorded (HTML page: 200)")
        @responses.alt_response(409, description="the match was answered before; the first answer stands")
        @responses.alt_response(403, description="forged or altered link")
        @responses.alt_response(400, description="expired link")
        @responses.alt_response(410, description="a re-published matching dropped this match")
        def post(self, data: dict[str, Any], token: str) -> Any:
            target = verified(token)
            if isinstance(target, Response):
                return target
            try:
                with sf.begin() as session:
                    found = services.record_response(session, target, data["decision"])
                    names = services.page_names(session, found.notice, found.match, found.language)
            except services.Superseded:
                with sf() as session:
                    return superseded(session, target)
            except services.NotFound:
                return refuse(404, "not_found", None, "this match does not exist")
            except AlreadyAnswered:
                with sf() as session:
                    earlier = services.linked_match(session, target)
                    names = services.page_names(session, earlier.notice, earlier.match, earlier.language)
                assert earlier.response is not None
                return refuse(409, "answered", earlier.language, "this match was already answered",
                              decision=earlier.response.decision, responded_at=earlier.response.responded_at,
                              **names)
            assert found.response is not None
            if _wants_html():
                return _page(200, "recorded", found.language, decision=found.response.decision, **names)
            return found.response

    answers = Blueprint("match_answers", __name__, url_prefix="/match-answers",
                        description="A signed-in firm's matches and its answers (the same as the e-mailed link)")

    @answers.route("")
    class MatchAnswers(MethodView):
        @answers.response(200, MatchAnswerOut(many=True))
        @answers.paginate(Page, max_page_size=100)
        def get(self) -> Any:
            with sf() as session:
                return services.firm_matches(session, current_principal())

    @answers.route("/<match_id>")
    class MatchAnswer(MethodView):
        @answers.arguments(DecisionIn)
        @answers.response(201, ResponseOut)
        @answers.alt_response(409, description="the match was answered before; the first answer stands")
        def post(self, data: dict[str, Any], match_id: str) -> Any:
            try:
                with service_errors((), (services.NotFound,)), sf.begin() as session:
                    found = services.answer_in_portal(session, current_principal(), match_id, data["decision"])
                    assert found.response is not None
                    return {"match_id": found.response.match_id, "decision": found.response.decision,
                            "responded_at": found.response.responded_at}
            except AlreadyAnswered:
                abort(409, message="this match was already answered; the first answer stands",
                      errors=[{"field": "decision", "reason": "this match was already answered"}])
            raise AssertionError("unreachable")

    for blueprint in (contact, contacts, webhook, notices, kickoffs, calendars, responses, answers):
        api.register_blueprint(blueprint)
    api.register_blueprint(workshops_blueprint(sf))
    api.register_blueprint(plan_jobs_blueprint(sf, KickoffPlanJobOut))
    api.register_blueprint(reach_blueprint(sf))
    api.register_blueprint(dead_letter_blueprint(infra))
    return app
