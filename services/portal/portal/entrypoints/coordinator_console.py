"""The coordinator's console, second part: the workspace overview (its municipalities on a map of their centres,
open assignments and teams per period and level, referrals and handovers), a round's kickoffs on a week calendar
(plan, move, cancel) and the workshop programmes (rooms, facilitators, interest, plan, sessions with seats and
waitlists). Everything comes from the services' APIs, named as people know it."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from time import monotonic, sleep
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, StringField, TimeField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from ..adapters.clients import ApiError
from . import web
from .forms import REQUIRED, ActionForm, MultiCheckboxField, SelectField, _l
from .i18n import TIME_ZONE, current_language, ngettext, nice_date, nice_period
from .i18n import gettext as _
from .labels import day_part_label, municipalities, municipality_label
from .plan_violations import violation_sentences

blueprint = Blueprint("console", __name__, url_prefix="/coordinator")
ROLE = "coordinator"
WEEKDAYS = 5  # kickoffs fall on school days, Monday to Friday
PAGE_SIZE = 25  # rows of a list on one page
LEVELS = ("MBO", "HBO", "WO")
DAY_PARTS = ("morning", "afternoon", "evening")

# The services' reasons (English) in words the reader reads: the move refusals of the kickoff rules, why a
# kickoff found no time, why a workshop plan or a theme's sessions did not come about.
SERVICE_REASONS = {
    "public holiday": _l("it is a public holiday"),
    "school holiday": _l("it falls in a school holiday of the institution's region"),
    "non-teaching week": _l("it falls in a week without teaching of the institution"),
    "not a weekday": _l("it is not a weekday"),
    "outside the kickoff window": _l("it is outside the weeks in which kickoffs fall"),
    "the firm is not available": _l("the firm is not available then"),
    "a kickoff starts on a quarter of an hour": _l("a kickoff starts on a quarter of an hour"),
    "the kickoff can only have one slot": _l("the kickoff can only have one time"),
    "the firm has another kickoff at that time": _l("the firm has another kickoff at that time"),
    "the team has another kickoff at that time": _l("the team has another kickoff at that time"),
    "the coordinator has another kickoff at that time": _l("you have another kickoff at that time"),
    "the coordinator's kickoffs for that day are at the daily cap": _l(
        "your kickoffs for that day are at the daily maximum"),
    "no_common_slot": _l("the firm is not available at any time in the weeks of the kickoffs"),
    "holidays": _l("every time the firm can make falls on a public or school holiday or a week without teaching"),
    "daily_cap": _l("every possible time is taken by other kickoffs or by your daily maximum"),
    "not enough interest": _l("not enough interest"),
    "no facilitator for this theme is available in a candidate slot": _l(
        "no facilitator of this theme is free in any of the programme's times"),
    "no room or online session in a slot that a facilitator of this theme and enough interested entrepreneurs "
    "can make": _l("no room or online session at a time that a facilitator and enough interested "
                   "entrepreneurs can make"),
    "rooms, facilitators or the per-location cap were needed for other sessions": _l(
        "the rooms, facilitators or the sessions per place and day were needed for other sessions"),
    "no session is possible: no slot where a room (or online), a facilitator of the theme and enough "
    "interested entrepreneurs come together": _l(
        "no session is possible: no time where a room (or online), a facilitator of the theme and enough "
        "interested entrepreneurs come together"),
    "the entrepreneur is in this session already": _l("the entrepreneur is in this session already"),
    "no running session of this programme has this id": _l("this session no longer runs"),
    "the session is of another theme than the entrepreneur's interest": _l(
        "the session is of another theme than the entrepreneur's interest"),
    "the entrepreneur cannot make this session's day or place": _l(
        "the entrepreneur cannot come on that day or to that place"),
    "the entrepreneur has a seat in another session of this theme; move that seat": _l(
        "the entrepreneur has a seat in another session of this theme; move that seat"),
    "the entrepreneur cancelled its place in this session": _l("the entrepreneur cancelled its place in this session"),
    "the entrepreneur has a seat in another workshop at this session's time (same day and day part)": _l(
        "the entrepreneur has a seat in another workshop at that time"),
    "the session is there already": _l("the session is there already"),
    "a session of this theme already runs there": _l("a session of this theme already runs then and there"),
    "not a room of this programme": _l("not a room of this programme"),
    "not a facilitator of this programme": _l("not a facilitator of this programme"),
}
PLAN_STATUSES = {"optimal": _l("Planned: the best plan was found"),
                 "feasible": _l("Planned: a good plan was found within the time limit"),
                 "empty": _l("Nothing could be planned"), "not_solved": _l("No plan was found")}
PROGRAMME_STATUSES = {"open": _l("Open for interest"), "planned": _l("Planned")}


def reason_words(reason: str | None, code: str | None = None) -> str:
    """A service's reason in the reader's language; an unknown one as the service wrote it."""
    for key in (code, reason):
        if key and key in SERVICE_REASONS:
            return str(SERVICE_REASONS[key])
    if reason and reason.startswith("the session is full"):
        return _("the session is full")
    if reason and reason.startswith("the move breaks a planning rule"):
        return _("the move breaks a planning rule (a room, facilitator or entrepreneur is not free then, or a "
                 "room is too small)")
    if reason and (found := NOTHING_ACCEPTED.match(reason)):
        return _("no match of this round has been accepted yet (%(published)s published, %(declined)s declined): "
                 "a kickoff is planned once a firm accepts its match", published=found["published"],
                 declined=found["declined"])
    if reason and (found := ALL_CANCELLED.match(reason)):
        return _("no kickoff of this round is open to plan: all %(count)s are cancelled", count=found["count"])
    return reason or ""


NOTHING_ACCEPTED = re.compile(r"^no match of this batch has been accepted yet \((?P<published>\d+) published, "
                              r"(?P<declined>\d+) declined\)")
ALL_CANCELLED = re.compile(r"^no kickoff of this batch is open to plan: all (?P<count>\d+) are cancelled")


@blueprint.app_template_global()
def service_reason(reason: str | None, code: str | None = None) -> str:
    return reason_words(reason, code)


# ---- the workspace overview -------------------------------------------------------------------


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    province: str
    latitude: float
    longitude: float


@cache
def _municipalities() -> dict[str, Municipality]:
    with resources.files("werkplaats_shared").joinpath("data/municipalities.csv").open(encoding="utf-8") as fh:
        return {row["code"]: Municipality(row["code"], row["name"], row["province"], float(row["latitude"]),
                                          float(row["longitude"])) for row in csv.DictReader(fh)}


@dataclass(frozen=True)
class MapPoint:
    name: str
    x: float
    y: float
    label_x: float
    anchor: str


MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN = 640, 420, 60


def area_map(codes: list[str]) -> list[MapPoint]:
    """The municipalities' centres on a plane (an equirectangular projection around the area's middle, so a
    kilometre east is as long as a kilometre north), scaled into the drawing with room for the names."""
    found = [m for c in codes if (m := _municipalities().get(c)) is not None]
    if not found:
        return []
    middle = sum(m.latitude for m in found) / len(found)
    squeeze = math.cos(math.radians(middle))
    xs = [m.longitude * squeeze for m in found]
    ys = [m.latitude for m in found]
    scale = min((MAP_WIDTH - 2 * MAP_MARGIN) / max(max(xs) - min(xs), 0.05),
                (MAP_HEIGHT - 2 * MAP_MARGIN) / max(max(ys) - min(ys), 0.05))
    left = MAP_WIDTH / 2 - (max(xs) + min(xs)) / 2 * scale
    top = MAP_MARGIN + max(ys) * scale  # the northernmost centre at the top margin; see map_height
    points = []
    for m, x, y in zip(found, xs, ys, strict=True):
        px, py = round(left + x * scale, 1), round(top - y * scale, 1)
        east = px > MAP_WIDTH / 2
        points.append(MapPoint(m.name, px, py, px - 8 if east else px + 8, "end" if east else "start"))
    return points


def map_height(points: list[MapPoint]) -> float:
    """The drawing's height: the area's north-south extent with a margin above and below."""
    return round(max((p.y for p in points), default=0.0) + MAP_MARGIN, 1)


def _own_workspaces() -> list[dict[str, Any]]:
    me = web.person()
    return [w for w in web.intake().get_all("/workspaces") if w.get("organisation_id") == me.organisation_id]


def _per_period_and_level(counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts per (period, level) as one row per period with a column per level."""
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for c in counts:
        table[c["period"]][c["level"]] = c["count"]
    return [{"period": period, **{level: table[period].get(level, 0) for level in LEVELS},
             "total": sum(table[period].values())} for period in sorted(table)]


@blueprint.get("/workspace")
@web.requires(ROLE)
def workspace_home() -> Any:
    workspaces = _own_workspaces()
    if not workspaces:
        return render_template("coordinator/console/no_workspace.html")
    return redirect(url_for("console.workspace", workspace_id=workspaces[0]["id"]))


@blueprint.get("/workspaces/<id:workspace_id>")
@web.requires(ROLE)
def workspace(workspace_id: str) -> Any:
    workspaces = _own_workspaces()
    found = next((w for w in workspaces if w["id"] == workspace_id), None)
    if found is None:
        abort(404)
    names = {w["id"]: w["name"] for w in web.intake().get_all("/workspaces")}
    counts = web.intake().get(f"/workspaces/{workspace_id}/overview")
    referrals = web.intake().page("/referrals", page=web.page_number("referrals_page"), page_size=PAGE_SIZE,
                                  workspace_id=workspace_id, newest_first="true")
    handovers = [h for h in web.intake().get_all("/handovers")
                 if workspace_id in (h["from_workspace_id"], h["to_workspace_id"])]
    schemes = {s["code"]: s["name_nl"] if current_language() == "nl" else s["name_en"]
               for s in web.intake().get_all("/referral-schemes")}
    municipalities = sorted((m for c in found["municipalities"] if (m := _municipalities().get(c))),
                            key=lambda m: m.name)
    unknown = [c for c in found["municipalities"] if c not in _municipalities()]
    points = area_map(found["municipalities"])
    return render_template(
        "coordinator/console/workspace.html", workspace=found, workspaces=workspaces, names=names,
        municipalities=municipalities, unknown=unknown, points=points, map_width=MAP_WIDTH,
        map_height=map_height(points), levels=LEVELS,
        assignment_rows=_per_period_and_level(counts["open_assignments_by_period_level"]),
        team_rows=_per_period_and_level(counts["teams_by_period_level"]),
        open_assignments=counts["open_assignments"], team_count=counts["teams"],
        referrals=referrals, referral_count=counts["referrals"], schemes=schemes,
        handovers=list(reversed(handovers)))


# ---- kickoffs ---------------------------------------------------------------------------------


class KickoffPlanForm(FlaskForm):
    batch_id = SelectField(_l("Round"), validators=[InputRequired(REQUIRED)])
    weeks = IntegerField(_l("Weeks from the start of the period"), default=2, validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=8, message=_l("A number from 1 to 8."))])
    daily_cap = IntegerField(_l("Most kickoffs per day (optional)"), validators=[
        Optional(), NumberRange(min=1, max=4, message=_l("A number from 1 to 4."))])


class KickoffMoveForm(FlaskForm):
    day = DateField(_l("New date"), validators=[InputRequired(REQUIRED)])
    starts_at = TimeField(_l("New start time"), validators=[InputRequired(REQUIRED)])


class KickoffCancelForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED), Length(max=200)])


def _local(moment: str | None) -> datetime | None:
    if not moment:
        return None
    return datetime.fromisoformat(moment).astimezone(TIME_ZONE)


def _named(kickoffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """These kickoffs (a page's worth) with the assignment, firm and team as people know them: intake names
    only these matches."""
    ids = sorted({k["match_id"] for k in kickoffs})
    placements: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 100):
        placements.update((p["match_id"], p) for p in web.intake().get(
            "/placements", match_id=ids[start:start + 100], page_size=100))
    found = []
    for k in kickoffs:
        p = placements.get(k["match_id"], {})
        found.append({**k, "start": _local(k.get("starts_at")), "end": _local(k.get("ends_at")),
                      "assignment": p.get("assignment_title", "?"), "firm": p.get("firm_name", ""),
                      "team": p.get("team_code", "?"), "institution": p.get("institution_name", ""),
                      "period": p.get("period", "")})
    return found


def _week_of(text: str | None) -> date | None:
    """The Monday of an ISO week written as 2027-W06."""
    if not text:
        return None
    try:
        year, week = text.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        return None


def _week_code(monday: date) -> str:
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _default_week(weeks: list[dict[str, Any]]) -> date:
    """The first week from this one on with kickoffs; else the last with kickoffs; else this week."""
    today = datetime.now(TIME_ZONE).date()
    this_week = today - timedelta(days=today.weekday())
    mondays = sorted(date.fromisoformat(w["monday"]) for w in weeks)
    coming = [d for d in mondays if d >= this_week]
    return coming[0] if coming else (mondays[-1] if mondays else this_week)


@blueprint.app_template_global()
def page_link(name: str, number: int) -> str:
    """This page's address with list ``name`` at page ``number`` (the other lists' pages kept)."""
    values: dict[str, Any] = {**{k: v for k, v in request.args.items() if k != name and v},
                              **(request.view_args or {}), name: number}
    return url_for(str(request.endpoint), **values)


def _rounds() -> list[tuple[str, str]]:
    """The coordinator's published rounds (batches with a published matching), newest first."""
    batches = [b for b in web.intake().get_all("/batches") if b["status"] == "matched"]
    return [(b["id"], _("%(period)s, submitted %(day)s", period=nice_period(b["period"]),
                        day=nice_date(b.get("submitted_at"))))
            for b in reversed(batches)]


@blueprint.get("/kickoffs")
@web.requires(ROLE)
def kickoffs() -> Any:
    weeks = web.scheduling().get("/kickoffs/weeks")
    monday = _week_of(request.args.get("week")) or _default_week(weeks)
    days = [monday + timedelta(days=n) for n in range(WEEKDAYS)]
    in_week = _named(web.scheduling().get_all("/kickoffs", status="proposed", until=(
        monday + timedelta(days=6)).isoformat(), **{"from": monday.isoformat()}))
    unplaced = web.scheduling().page("/kickoffs", page=web.page_number("unplaced_page"), page_size=PAGE_SIZE,
                                     status="unplaced")
    cancelled = web.scheduling().page("/kickoffs", page=web.page_number("cancelled_page"), page_size=PAGE_SIZE,
                                      status="cancelled")
    times = sorted({k["start"].time() for k in in_week})
    cells: dict[tuple[time, date], list[dict[str, Any]]] = defaultdict(list)
    for k in sorted(in_week, key=lambda k: (k["start"], k["assignment"])):
        cells[(k["start"].time(), k["start"].date())].append(k)
    form = KickoffPlanForm(formdata=None)
    form.batch_id.choices = _rounds()
    year, week, _day = monday.isocalendar()
    return render_template(
        "coordinator/console/kickoffs.html", days=days, times=times, cells=cells,
        week=week, year=year, monday=monday, friday=days[-1], count=len(in_week),
        previous=_week_code(monday - timedelta(days=7)), following=_week_code(monday + timedelta(days=7)),
        unplaced=replace(unplaced, items=_named(unplaced.items)),
        cancelled=replace(cancelled, items=_named(cancelled.items)), form=form,
        other_weeks=[(w["week"], _("week %(week)s, %(year)s", week=int(w["week"][6:]), year=w["week"][:4]))
                     for w in weeks])


@blueprint.route("/kickoffs/plan", methods=["GET", "POST"])
@web.requires(ROLE)
def plan_kickoffs() -> Any:
    form = KickoffPlanForm()
    form.batch_id.choices = _rounds()
    if request.method == "POST" and form.validate_on_submit():
        body: dict[str, Any] = {"batch_id": form.batch_id.data, "weeks": form.weeks.data}
        if form.daily_cap.data:
            body["daily_cap"] = form.daily_cap.data
        try:
            job = web.scheduling().send("POST", "/kickoffs/plan", body)
        except ApiError as exc:
            if exc.status == 404:
                form.form_errors.append(_("This round has no accepted matches whose kickoff is still open."))
            elif exc.status in (400, 409, 422):
                web.show_api_errors(form, exc)
                form.batch_id.errors = [reason_words(str(e)) for e in form.batch_id.errors]
            else:
                raise
        else:
            return _follow(job)
    return render_template("coordinator/console/plan_kickoffs.html", form=form)


def _kickoff(match_id: str) -> dict[str, Any]:
    try:
        found = web.scheduling().get(f"/kickoffs/{match_id}")
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        raise
    return _named([found])[0]


def _week_of_kickoff(k: dict[str, Any]) -> str | None:
    start = k.get("start")
    return _week_code(start.date() - timedelta(days=start.weekday())) if start else None


def _week_link(k: dict[str, Any]) -> str:
    return url_for("console.kickoffs", week=_week_of_kickoff(k))


@blueprint.route("/kickoffs/<id:match_id>/move", methods=["GET", "POST"])
@web.requires(ROLE)
def move_kickoff(match_id: str) -> Any:
    k = _kickoff(match_id)
    if k["status"] == "cancelled":
        return web.done(_("A cancelled kickoff cannot be moved."), "console.kickoffs")
    start = k["start"]
    form = KickoffMoveForm(day=start.date() if start else None, starts_at=start.time() if start else None)
    if request.method == "POST" and form.validate_on_submit():
        moment = datetime.combine(form.day.data, form.starts_at.data, TIME_ZONE)
        try:
            moved = web.scheduling().send("PATCH", f"/kickoffs/{match_id}", {"starts_at": moment.isoformat()})
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            reasons = exc.field_errors()
            reason = reasons.get("starts_at") or reasons.get("match_id")
            if reason:
                form.day.errors = [*form.day.errors, _("This time is not possible: %(reason)s.",
                                                       reason=reason_words(reason))]
            else:
                web.show_api_errors(form, exc)
        else:
            new = _local(moved.get("starts_at"))
            return web.done(_("The kickoff is moved; the firm gets a new invitation."), "console.kickoffs",
                            week=_week_code(new.date() - timedelta(days=new.weekday())) if new else None)
    return render_template("coordinator/console/move_kickoff.html", kickoff=k, form=form, back=_week_link(k))


@blueprint.route("/kickoffs/<id:match_id>/cancel", methods=["GET", "POST"])
@web.requires(ROLE)
def cancel_kickoff(match_id: str) -> Any:
    k = _kickoff(match_id)
    if k["status"] == "cancelled":
        return web.done(_("This kickoff was cancelled before."), "console.kickoffs")
    form = KickoffCancelForm()
    if request.method == "POST" and form.validate_on_submit():
        web.scheduling().send("POST", f"/kickoffs/{match_id}/cancellation", {"reason": form.reason.data})
        return web.done(_("The kickoff is cancelled; an invited firm hears so."), "console.kickoffs",
                        week=_week_of_kickoff(k))
    return render_template("coordinator/console/cancel_kickoff.html", kickoff=k, form=form, back=_week_link(k))


# ---- workshops --------------------------------------------------------------------------------


def _parse_days(text: str) -> list[date]:
    """Dates typed as a list (2027-03-09 or 9-3-2027), separated by commas, spaces or lines."""
    days: list[date] = []
    for part in text.replace(",", " ").split():
        try:
            if "-" in part and len(part.split("-")[0]) == 4:
                day = date.fromisoformat(part)
            else:
                d, m, y = part.replace("/", "-").split("-")
                day = date(int(y), int(m), int(d))
        except ValueError as exc:
            raise ValidationError(_("%(value)s is not a date; write it as 9-3-2027.", value=part)) from exc
        if day not in days:
            days.append(day)
    return sorted(days)


def _valid_days(_form: FlaskForm, field: StringField) -> None:
    days = _parse_days(field.data or "")
    if not days:
        raise ValidationError(_("Give at least one date."))
    if len(days) > 60:
        raise ValidationError(_("Give at most 60 dates."))


class ProgrammeForm(FlaskForm):
    title = StringField(_l("Title"), validators=[InputRequired(REQUIRED), Length(max=200)])
    days = StringField(_l("Dates of the sessions"), validators=[InputRequired(REQUIRED), _valid_days])
    day_parts = MultiCheckboxField(_l("Parts of the day"), validators=[InputRequired(_l("Choose at least one."))])
    min_participants = IntegerField(_l("Fewest participants for a session to run"), default=3, validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=100, message=_l("A number from 1 to 100."))])
    online_capacity = IntegerField(_l("Seats in an online session (0: no online sessions)"), default=0,
                                   validators=[InputRequired(REQUIRED),
                                               NumberRange(min=0, max=500, message=_l("A number from 0 to 500."))])


class RoomForm(FlaskForm):
    name = StringField(_l("Name of the room"), validators=[InputRequired(REQUIRED), Length(max=200)])
    municipality = SelectField(_l("Municipality"), validators=[InputRequired(REQUIRED)])
    capacity = IntegerField(_l("Seats"), validators=[
        InputRequired(REQUIRED), NumberRange(min=1, max=1000, message=_l("A number from 1 to 1,000."))])
    availability = MultiCheckboxField(_l("Times the room is free"),
                                      validators=[InputRequired(_l("Choose at least one."))])


class FacilitatorForm(FlaskForm):
    label = StringField(_l("Code of the facilitator"), validators=[
        InputRequired(REQUIRED), Length(max=60),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
               message=_l("Letters, digits, spaces, dots and dashes only: a code such as F-07, not a name."))])
    themes = MultiCheckboxField(_l("Themes"), validators=[InputRequired(_l("Choose at least one."))])
    availability = MultiCheckboxField(_l("Times the facilitator is free"),
                                      validators=[InputRequired(_l("Choose at least one."))])


def _themes() -> dict[str, str]:
    key = "label_nl" if current_language() == "nl" else "label_en"
    return {t["code"]: t[key] for t in web.scheduling().get_all("/workshop-themes")}


def _slot_key(slot: dict[str, Any]) -> str:
    return f"{slot['date']}|{slot['day_part']}"


def _slot_choices(programme: dict[str, Any]) -> list[tuple[str, str]]:
    return [(_slot_key(s), f"{nice_date(s['date'])}, {day_part_label(s['day_part'])}")
            for s in sorted(programme["slots"], key=lambda s: (s["date"], DAY_PARTS.index(s["day_part"])))]


def _slots(keys: list[str]) -> list[dict[str, str]]:
    return [{"date": k.split("|")[0], "day_part": k.split("|")[1]} for k in keys]


def _day_part_choices() -> list[tuple[str, str]]:
    return [(p, day_part_label(p)) for p in DAY_PARTS]


@blueprint.get("/workshops")
@web.requires(ROLE)
def workshops() -> Any:
    programmes = web.scheduling().page("/workshop-programmes", page=web.page_number(), page_size=PAGE_SIZE,
                                       newest_first="true")
    return render_template("coordinator/console/workshops.html", programmes=programmes,
                           statuses=PROGRAMME_STATUSES)


@blueprint.route("/workshops/new", methods=["GET", "POST"])
@web.requires(ROLE)
def new_programme() -> Any:
    form = ProgrammeForm()
    form.day_parts.choices = _day_part_choices()
    if request.method == "POST" and form.validate_on_submit():
        slots = [{"date": d.isoformat(), "day_part": p} for d in _parse_days(form.days.data or "")
                 for p in form.day_parts.data or []]
        body = {"title": form.title.data, "slots": slots, "min_participants": form.min_participants.data,
                "online_capacity": form.online_capacity.data}
        try:
            made = web.scheduling().send("POST", "/workshop-programmes", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc, {"slots": "days"})
        else:
            return web.done(_("The programme is made. Add its rooms and facilitators."), "console.programme",
                            programme_id=made["id"])
    return render_template("coordinator/console/new_programme.html", form=form)


@blueprint.get("/workshops/<id:programme_id>")
@web.requires(ROLE)
def programme(programme_id: str) -> Any:
    base = f"/workshop-programmes/{programme_id}"
    found = web.scheduling().get(base)
    themes = _themes()
    rooms = web.scheduling().get_all(f"{base}/rooms")
    facilitators = web.scheduling().get_all(f"{base}/facilitators")
    interests = web.scheduling().get_all(f"{base}/interests")
    sessions = web.scheduling().get_all(f"{base}/sessions") if found["status"] == "planned" else []
    per_theme = Counter(i["theme"] for i in interests)
    labels = {f["id"]: f["label"] for f in facilitators}
    theme_rows = [{"code": code, "name": name, "interest": per_theme.get(code, 0),
                   "wanted": found["sessions_wanted"].get(code)} for code, name in themes.items()]
    return render_template(
        "coordinator/console/programme.html", programme=found, themes=themes, theme_rows=theme_rows,
        rooms=rooms, facilitators=facilitators, interests=interests, sessions=sessions, labels=labels,
        report=found.get("plan_report"), plan_statuses=PLAN_STATUSES, statuses=PROGRAMME_STATUSES,
        slots=_slot_choices(found), action=ActionForm(),
        seats=sum(s["seated"] for s in sessions), waiting=sum(s["waitlisted"] for s in sessions))


@blueprint.route("/workshops/<id:programme_id>/rooms/new", methods=["GET", "POST"])
@web.requires(ROLE)
def new_room(programme_id: str) -> Any:
    base = f"/workshop-programmes/{programme_id}"
    found = web.scheduling().get(base)
    form = RoomForm()
    form.municipality.choices = [("", _("Choose a municipality")), *municipalities().items()]
    slots = _slot_choices(found)
    form.availability.choices = slots
    if request.method == "GET":
        form.availability.data = [key for key, _label in slots]  # free at every time, unless told otherwise
    if request.method == "POST" and form.validate_on_submit():
        body = {"name": form.name.data, "municipality_code": form.municipality.data,
                "capacity": form.capacity.data, "availability": _slots(form.availability.data or [])}
        try:
            web.scheduling().send("POST", f"{base}/rooms", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc, {"municipality_code": "municipality"})
        else:
            return web.done(_("The room is added."), "console.programme", programme_id=programme_id)
    return render_template("coordinator/console/room_form.html", programme=found, form=form)


@blueprint.route("/workshops/<id:programme_id>/facilitators/new", methods=["GET", "POST"])
@web.requires(ROLE)
def new_facilitator(programme_id: str) -> Any:
    base = f"/workshop-programmes/{programme_id}"
    found = web.scheduling().get(base)
    form = FacilitatorForm()
    form.themes.choices = list(_themes().items())
    slots = _slot_choices(found)
    form.availability.choices = slots
    if request.method == "GET":
        form.availability.data = [key for key, _label in slots]  # free at every time, unless told otherwise
    if request.method == "POST" and form.validate_on_submit():
        body = {"label": form.label.data, "themes": form.themes.data,
                "availability": _slots(form.availability.data or [])}
        try:
            web.scheduling().send("POST", f"{base}/facilitators", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc)
        else:
            return web.done(_("The facilitator is added."), "console.programme", programme_id=programme_id)
    return render_template("coordinator/console/facilitator_form.html", programme=found, form=form)


@blueprint.post("/workshops/<id:programme_id>/plan")
@web.requires(ROLE)
def plan_programme(programme_id: str) -> Any:
    form = ActionForm()
    if not form.validate_on_submit():
        return web.done(_("The form has expired. Try again."), "console.programme", programme_id=programme_id)
    try:
        job = web.scheduling().send("POST", f"/workshop-programmes/{programme_id}/plan", {})
    except ApiError as exc:
        if exc.status not in (400, 409, 422):
            raise
        return web.done(exc.message or _("The request was refused."), "console.programme",
                        programme_id=programme_id)
    return _follow(job)


# ---- plans as jobs: scheduling plans in a worker; a quick plan answers at once, a longer one shows its progress


PLAN_JOB_STATUSES = {"queued": _l("Waiting for a worker"), "running": _l("Planning"), "done": _l("Done"),
                     "failed": _l("Failed"), "cancelled": _l("Cancelled"),
                     "rejected": _l("Rejected: it breaks a rule, nothing changed")}
PLAN_WAIT_SECONDS = 3.0
PLAN_POLL_SECONDS = 0.25
OPEN_JOB_STATUSES = ("queued", "running")


def _follow(job: dict[str, Any]) -> Any:
    """Wait a moment for the plan job; when it ended, say how (the flash) on the page it changed, else show
    the job's page, which follows it."""
    deadline = monotonic() + PLAN_WAIT_SECONDS
    while job["status"] in OPEN_JOB_STATUSES and monotonic() < deadline:
        sleep(PLAN_POLL_SECONDS)
        job = web.scheduling().get(f"/plan-jobs/{job['id']}")
    if job["status"] in OPEN_JOB_STATUSES or job["status"] == "rejected":  # a rejected plan's page says why
        return redirect(url_for("console.plan_job", job_id=job["id"]))
    return _plan_ended(job)


def _plan_destination(job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if job["kind"] == "workshops":
        return "console.programme", {"programme_id": job["programme_id"]}
    return "console.kickoffs", {}


def _plan_ended(job: dict[str, Any]) -> Any:
    endpoint, values = _plan_destination(job)
    if job["status"] == "cancelled":
        return web.done(_("The plan was cancelled; nothing changed."), endpoint, **values)
    if job["status"] == "failed":
        return web.done(_("The plan failed; nothing changed. Try again later."), endpoint, **values)
    report = job["result"]
    if job["kind"] == "kickoffs":
        message = _("%(placed)s, %(unplaced)s.", placed=ngettext(
            "%(num)d kickoff planned", "%(num)d kickoffs planned", report["placed"]), unplaced=ngettext(
            "%(num)d without a time", "%(num)d without a time", report["unplaced"]))
        warnings = [w["message_nl"] if current_language() == "nl" else w["message_en"]
                    for w in report.get("warnings", [])]
        starts = sorted(s for k in job.get("kickoffs") or [] if (s := _local(k.get("starts_at"))))
        week = _week_code(starts[0].date() - timedelta(days=starts[0].weekday())) if starts else None
        return web.done(" ".join([message, *warnings]), endpoint, week=week)
    status = str(PLAN_STATUSES.get(report["status"], report["status"]))
    figures = report.get("figures") or {}
    if report["status"] in ("optimal", "feasible"):
        message = _("%(status)s: %(sessions)s, %(seated)s, %(waiting)s.", status=status, sessions=ngettext(
            "%(num)d session", "%(num)d sessions", figures.get("sessions", 0)), seated=ngettext(
            "%(num)d entrepreneur seated", "%(num)d entrepreneurs seated", figures.get("seated", 0)),
            waiting=ngettext("%(num)d waiting", "%(num)d waiting", figures.get("waitlisted", 0)))
    else:
        message = f"{status}: {reason_words(report.get('reason'))}"
    return web.done(message, endpoint, **values)


PLAN_KINDS = {"kickoffs": _l("Kickoffs"), "workshops": _l("Workshop programme")}


@blueprint.get("/plans")
@web.requires(ROLE)
def plan_jobs() -> Any:
    """The coordinator's plans, newest first: what each plans (the round or the programme, by name), how it
    went, and a link to its page (a running one's progress, an ended one's outcome)."""
    jobs = web.scheduling().page("/plan-jobs", page=web.page_number(), page_size=PAGE_SIZE)
    rounds = dict(_rounds()) if any(j["kind"] == "kickoffs" for j in jobs.items) else {}
    titles = {p["id"]: p["title"] for p in web.scheduling().get_all("/workshop-programmes")} \
        if any(j["kind"] == "workshops" for j in jobs.items) else {}
    named = [{**j, "subject": rounds.get(j["batch_id"]) if j["kind"] == "kickoffs" else titles.get(j["programme_id"])}
             for j in jobs.items]
    return render_template("coordinator/console/plan_jobs.html", jobs=replace(jobs, items=named),
                           kinds=PLAN_KINDS, plan_job_statuses=PLAN_JOB_STATUSES)


@blueprint.get("/plans/<id:job_id>")
@web.requires(ROLE)
def plan_job(job_id: str) -> Any:
    """A plan job's progress, refreshed while it runs (live.js asks for the live region only); once it has
    ended, a full visit says how on the page it changed. A rejected plan (the validator found it breaks a rule
    of the programme or round as it is now; nothing of it was applied) stays on its page, with the rules."""
    try:
        job = web.scheduling().get(f"/plan-jobs/{job_id}")
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        raise
    live = job["status"] in OPEN_JOB_STATUSES
    if not live and job["status"] != "rejected" and not request.headers.get("X-Live-Region"):
        return _plan_ended(job)
    endpoint, values = _plan_destination(job)
    return render_template("coordinator/console/plan_job.html", job=job, live=live, action=ActionForm(),
                           back=url_for(endpoint, **values), plan_job_statuses=PLAN_JOB_STATUSES,
                           broken=_broken_rules(job))


def _broken_rules(job: dict[str, Any]) -> list[str]:
    """A rejected workshop plan's broken rules in the page's language, naming the programme's rooms and
    facilitators, the themes and the firms; [] where scheduling gave them in words only (a kickoff plan)."""
    details = (job.get("verdict") or {}).get("details") or []
    if job["status"] != "rejected" or job["kind"] != "workshops" or not details:
        return []
    base = f"/workshop-programmes/{job['programme_id']}"
    rooms = {r["id"]: r["name"] for r in web.scheduling().get_all(f"{base}/rooms")}
    facilitators = {f["id"]: f["label"] for f in web.scheduling().get_all(f"{base}/facilitators")}
    firms = _firm_names([str(d["facts"]["firm_id"]) for d in details if (d.get("facts") or {}).get("firm_id")])
    return violation_sentences(details, rooms=rooms, facilitators=facilitators, themes=_themes(), firms=firms)


@blueprint.post("/plans/<id:job_id>/cancel")
@web.requires(ROLE)
def cancel_plan_job(job_id: str) -> Any:
    form = ActionForm()
    if not form.validate_on_submit():
        return web.done(_("The form has expired. Try again."), "console.plan_job", job_id=job_id)
    try:
        web.scheduling().send("POST", f"/plan-jobs/{job_id}/cancel")
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        if exc.status != 409:
            raise
    return redirect(url_for("console.plan_job", job_id=job_id))


# ---- a session's participants: move one to another session, or the session to another time or room ----


class ParticipantMoveForm(FlaskForm):
    session_id = SelectField(_l("Move to"), validators=[InputRequired(REQUIRED)])


class SessionMoveForm(FlaskForm):
    slot = SelectField(_l("Time"), validators=[InputRequired(REQUIRED)])
    room = SelectField(_l("Room"), validators=[InputRequired(REQUIRED)])
    facilitator = SelectField(_l("Facilitator"), validators=[InputRequired(REQUIRED)])


ONLINE = "online"


def _place(s: dict[str, Any]) -> str:
    if s.get("location_name"):
        return f"{s['location_name']} ({municipality_label(s.get('municipality_code'))})"
    return _("Online")


def _session_label(s: dict[str, Any]) -> str:
    when = f"{nice_date(s['date'])}, {day_part_label(s['day_part'])}"
    free = ngettext("%(num)d seat free", "%(num)d seats free", max(0, s["capacity"] - s["seated"]))
    return _("%(when)s, %(place)s: %(free)s", when=when, place=_place(s), free=free)


def _firm_names(ids: list[str]) -> dict[str, str]:
    """The names of these firms as intake knows them (only these: a session's worth)."""
    wanted = sorted(set(ids))
    names: dict[str, str] = {}
    for start in range(0, len(wanted), 100):
        names.update((f["id"], f["name"]) for f in web.intake().get("/firms", id=wanted[start:start + 100],
                                                                     page_size=100))
    return names


def _session_page(programme_id: str, session_id: str, session_form: SessionMoveForm | None = None) -> Any:
    base = f"/workshop-programmes/{programme_id}"
    found = web.scheduling().get(base)
    sessions = web.scheduling().get_all(f"{base}/sessions") if found["status"] == "planned" else []
    current = next((s for s in sessions if s["id"] == session_id), None)
    if current is None:
        abort(404)
    places = [r for r in web.scheduling().get_all("/workshop-registrations", programme_id=programme_id,
                                                  session_id=session_id) if r["status"] in ("seated", "waitlisted")]
    names = _firm_names([r["firm_id"] for r in places])
    others = [(s["id"], _session_label(s)) for s in sessions
              if s["theme"] == current["theme"] and s["id"] != session_id]
    rows = []
    for n, r in enumerate(sorted(places, key=lambda r: (r["status"] != "seated", r["waitlist_position"] or 0,
                                                         names.get(r["firm_id"], "")))):
        form = ParticipantMoveForm(formdata=None, prefix=f"p{n}")
        form.session_id.choices = others
        rows.append({**r, "firm": names.get(r["firm_id"], _("a firm outside your workspaces")), "form": form})
    facilitators = web.scheduling().get_all(f"{base}/facilitators")
    rooms = web.scheduling().get_all(f"{base}/rooms")
    labels = {f["id"]: f["label"] for f in facilitators}
    form = session_form or SessionMoveForm(formdata=None, slot=_slot_key({"date": current["date"],
                                                                          "day_part": current["day_part"]}),
                                           room=current["room_id"] or ONLINE,
                                           facilitator=current["facilitator_id"])
    form.slot.choices = _slot_choices(found)
    form.room.choices = [(r["id"], f"{r['name']} ({municipality_label(r['municipality_code'])}), "
                          + ngettext("%(num)d seat", "%(num)d seats", r["capacity"])) for r in rooms]
    if found.get("online_capacity"):
        form.room.choices.append((ONLINE, _("Online")))
    form.facilitator.choices = [(f["id"], f["label"]) for f in facilitators if current["theme"] in f["themes"]]
    return render_template("coordinator/console/session.html", programme=found, session=current, rows=rows,
                           themes=_themes(), place=_place(current), labels=labels, form=form,
                           seated=[r for r in rows if r["status"] == "seated"],
                           waiting=[r for r in rows if r["status"] == "waitlisted"])


@blueprint.get("/workshops/<id:programme_id>/sessions/<id:session_id>")
@web.requires(ROLE)
def workshop_session(programme_id: str, session_id: str) -> Any:
    return _session_page(programme_id, session_id)


@blueprint.post("/workshops/<id:programme_id>/sessions/<id:session_id>/participants/<id:registration_id>")
@web.requires(ROLE)
def move_participant(programme_id: str, session_id: str, registration_id: str) -> Any:
    """Move one entrepreneur (its form's prefix names the row) to another session of the theme."""
    back = url_for("console.workshop_session", programme_id=programme_id, session_id=session_id)
    prefix = next((k.split("-", 1)[0] for k in request.form if k.endswith("-session_id")), "")
    form = ParticipantMoveForm(prefix=prefix)
    target = request.form.get(f"{prefix}-session_id", "")
    form.session_id.choices = [(target, target)] if target else []
    if not form.validate_on_submit():
        flash(_("Choose the session to move the entrepreneur to."), "info")
        return redirect(back)
    try:
        done = web.scheduling().send("POST", f"/workshop-registrations/{registration_id}/move",
                                     {"session_id": form.session_id.data})
    except ApiError as exc:
        if exc.status == 404:  # not a place in one of this coordinator's programmes
            abort(404)
        if exc.status not in (400, 409, 422):
            raise
        reasons = exc.field_errors()
        reason = reasons.get("session_id") or reasons.get("registration_id") or exc.message
        flash(_("This move is not possible: %(reason)s.", reason=reason_words(reason)), "info")
        return redirect(back)
    message = _("The entrepreneur is moved and gets a new invitation.")
    if done.get("promoted_registration_id"):
        message += " " + _("The seat it left went to the first on the waiting list, who hears so.")
    return web.done(message, "console.workshop_session", programme_id=programme_id, session_id=session_id)


@blueprint.post("/workshops/<id:programme_id>/sessions/<id:session_id>/move")
@web.requires(ROLE)
def move_session(programme_id: str, session_id: str) -> Any:
    base = f"/workshop-programmes/{programme_id}"
    found = web.scheduling().get(base)
    form = SessionMoveForm()
    form.slot.choices = _slot_choices(found)
    form.room.choices = [(r["id"], r["name"]) for r in web.scheduling().get_all(f"{base}/rooms")] + [
        (ONLINE, _("Online"))]
    form.facilitator.choices = [(f["id"], f["label"]) for f in web.scheduling().get_all(f"{base}/facilitators")]
    if form.validate_on_submit():
        day, part = (form.slot.data or "|").split("|", 1)
        body = {"session_id": session_id, "date": day, "day_part": part,
                "room_id": None if form.room.data == ONLINE else form.room.data,
                "facilitator_id": form.facilitator.data}
        try:
            web.scheduling().send("POST", f"{base}/session-moves", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            reasons = exc.field_errors()
            field = {"room_id": form.room, "facilitator_id": form.facilitator}
            for api_field, reason in reasons.items():
                target = field.get(api_field, form.slot)
                target.errors = [*target.errors, _("This is not possible: %(reason)s.",
                                                   reason=reason_words(reason))]
            if not reasons:
                form.form_errors.append(exc.message or _("The request was refused."))
        else:
            return web.done(_("The session is moved; its entrepreneurs get a new invitation."),
                            "console.workshop_session", programme_id=programme_id, session_id=session_id)
    return _session_page(programme_id, session_id, form)
