"""The institution's pages: capacity per period and level, teams (list, register, change, import from CSV or
Excel), the institution calendar, and where its teams were placed with their kickoffs."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request
from werkplaats_shared.geo import municipality

from ..adapters.clients import ApiError
from ..domain.school_weeks import ExtraWeek, extra_weeks, suggested_region
from . import labels, web
from .forms import CalendarForm, CapacityForm, ImportForm, TeamEditForm, TeamForm, skills_list
from .i18n import gettext as _
from .i18n import nice_date, nice_period

blueprint = Blueprint("institution", __name__, url_prefix="/institution")
ROLE = "institution"
SEPARATOR = "|"


def _workspace_periods() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Choices "workspace|period" for every period of every workspace, and workspace id -> name."""
    workspaces = web.intake().get_all("/workspaces")
    names = {w["id"]: w["name"] for w in workspaces}
    several = len(workspaces) > 1
    found = []
    for w in workspaces:
        for p in w.get("periods", []):
            text = nice_period(p["code"])
            found.append((f"{w['id']}{SEPARATOR}{p['code']}", f"{w['name']}: {text}" if several else text))
    return found, names


def _split(choice: str | None) -> tuple[str, str]:
    workspace_id, _sep, period = (choice or "").partition(SEPARATOR)
    return workspace_id, period


@blueprint.get("")
@web.requires(ROLE)
def home() -> Any:
    placements = web.intake().get_all("/placements")
    kickoffs = {k["match_id"]: k for k in web.scheduling().get_all("/kickoffs")}
    teams = web.intake().get_all("/teams")
    capacity = web.intake().get_all("/capacity")
    return render_template("institution/home.html", placements=placements, kickoffs=kickoffs, teams=teams,
                           capacity=capacity, agree=web.agreement_forms(list(kickoffs.values())))


@blueprint.post("/kickoffs/<id:match_id>/agreement")
@web.requires(ROLE)
def agree_to_kickoff(match_id: str) -> Any:
    return web.agree_to_kickoff(match_id, "institution.home")


@blueprint.route("/capacity", methods=["GET", "POST"])
@web.requires(ROLE)
def capacity() -> Any:
    periods, names = _workspace_periods()
    form = CapacityForm()
    form.period.choices = periods
    if form.validate_on_submit():
        workspace_id, period = _split(form.period.data)
        body = {"workspace_id": workspace_id, "period": period, "programme": form.programme.data,
                "level": form.level.data, "teams": form.teams.data, "team_size_min": form.team_size_min.data,
                "team_size_max": form.team_size_max.data, "supervision_hours": form.supervision_hours.data,
                "skills": skills_list(form.skills.data)}
        try:
            web.intake().send("POST", "/capacity", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc, {"workspace_id": "period"})
        else:
            return web.done(_("The capacity is registered."), "institution.capacity")
    registered = web.intake().get_all("/capacity")
    return render_template("institution/capacity.html", form=form, registered=registered, workspaces=names)


@blueprint.get("/teams")
@web.requires(ROLE)
def teams() -> Any:
    found = web.intake().get_all("/teams")
    placed = {p["team_id"]: p for p in web.intake().get_all("/placements")}
    return render_template("institution/teams.html", teams=found, placed=placed)


def _team_body(form: TeamForm) -> dict[str, Any]:
    return {"code": form.code.data, "level": form.level.data, "size": form.size.data,
            "skills": skills_list(form.skills.data), "travel_limit_km": form.travel_limit_km.data,
            "remote_allowed": bool(form.remote_allowed.data)}


TEAM_FIELDS = {"workspace_id": "period"}


@blueprint.route("/teams/new", methods=["GET", "POST"])
@web.requires(ROLE)
def new_team() -> Any:
    periods, _names = _workspace_periods()
    form = TeamForm()
    form.period.choices = periods
    if form.validate_on_submit():
        workspace_id, period = _split(form.period.data)
        try:
            web.intake().send("POST", "/teams", {**_team_body(form), "workspace_id": workspace_id, "period": period})
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc, TEAM_FIELDS)
        else:
            return web.done(_("The team is registered."), "institution.teams")
    return render_template("institution/team_form.html", form=form, editing=None)


@blueprint.route("/teams/<id:team_id>", methods=["GET", "POST"])
@web.requires(ROLE)
def edit_team(team_id: str) -> Any:
    team, etag = web.intake().read_with_etag(f"/teams/{team_id}")
    form = TeamEditForm(data={**team, "skills": ", ".join(team["skills"])} if request.method == "GET" else None)
    if form.validate_on_submit():
        body = {"code": form.code.data, "size": form.size.data, "skills": skills_list(form.skills.data)}
        try:
            web.intake().send("PATCH", f"/teams/{team_id}", body, headers={"If-Match": etag})
        except ApiError as exc:
            if exc.status == 412:
                form.form_errors.append(_("Someone changed the team meanwhile. Check it and save again."))
            elif exc.status in (400, 409, 422):
                web.show_api_errors(form, exc, TEAM_FIELDS)
            else:
                raise
        else:
            return web.done(_("The team is saved."), "institution.teams")
    return render_template("institution/team_form.html", form=form, editing=team)


@blueprint.route("/teams/import", methods=["GET", "POST"])
@web.requires(ROLE)
def import_teams() -> Any:
    periods, _names = _workspace_periods()
    form = ImportForm()
    form.period.choices = periods
    problems: list[dict[str, Any]] = []
    if form.validate_on_submit():
        upload = form.file.data
        workspace_id, period = _split(form.period.data)
        try:
            outcome = web.intake().send("POST", "/imports/teams", None,
                                        files={"file": (upload.filename, upload.read(), upload.mimetype)},
                                        data={"workspace_id": workspace_id, "period": period})
        except ApiError as exc:
            if exc.status not in (400, 413, 415, 422):
                raise
            problems = sorted(exc.errors, key=lambda e: (e.get("row") or 0, str(e.get("column") or "")))
            if not any(p.get("row") for p in problems):
                form.file.errors = [*form.file.errors, exc.message or _("The file could not be read.")]
                problems = []
            else:
                form.form_errors.append(_("Nothing was imported: correct the rows below and send the file again."))
        else:
            count = int(outcome.get("count", 0)) if outcome else 0
            return web.done(_("%(count)s teams imported.", count=count), "institution.teams")
    return render_template("institution/import.html", form=form, problems=problems)


@blueprint.get("/teams/template.<kind>")
@web.requires(ROLE)
def team_template(kind: str) -> Any:
    if kind not in ("csv", "xlsx"):
        return render_template("error.html", status=404, title=_("Page not found"), text=""), 404
    download = web.intake().download(f"/imports/teams/template.{kind}")
    return Response(download.content, mimetype=download.content_type,
                    headers={"Content-Disposition": f'attachment; filename="teams-template.{kind}"'})


@blueprint.route("/calendar", methods=["GET", "POST"])
@web.requires(ROLE)
def calendar() -> Any:
    try:
        current = web.scheduling().get("/institution-calendar")
    except ApiError as exc:
        if exc.status != 404:
            raise
        current = {"region": None, "non_teaching": []}  # not set yet: a region is suggested from the province
    offered = extra_weeks(date.today())
    offered_weeks = {w.iso_week for w in offered}
    data = None
    suggested = None
    if request.method == "GET":
        weeks = [w for w in (_week_of(r) for r in current.get("non_teaching", [])) if w]
        if current.get("region") is None:
            suggested = _suggested_region()
        data = {"region": current.get("region") or suggested, "extra_weeks": [w for w in weeks if w in offered_weeks],
                "non_teaching_weeks": ", ".join(w for w in weeks if w not in offered_weeks)}
    form = CalendarForm(data=data)
    form.region.choices = labels.choices(labels.REGIONS)
    form.extra_weeks.choices = [(w.iso_week, _extra_week_label(w)) for w in offered]
    if form.validate_on_submit():
        typed = [w.strip() for w in (form.non_teaching_weeks.data or "").split(",") if w.strip()]
        weeks = list(dict.fromkeys([*(form.extra_weeks.data or []), *typed]))
        spans = [{"start": w.partition("/")[0], "end": w.partition("/")[2]} if "/" in w else {"iso_week": w}
                 for w in weeks]
        body = {"region": form.region.data, "non_teaching": spans}
        try:
            web.scheduling().send("PUT", "/institution-calendar", body)
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            web.show_api_errors(form, exc, {"non_teaching": "non_teaching_weeks", "iso_week": "non_teaching_weeks"})
        else:
            return web.done(_("The calendar is saved."), "institution.calendar")
    return render_template("institution/calendar.html", form=form, current=current, suggested=suggested)


def _suggested_region() -> str | None:
    """The region of the province of the institution's (first) campus."""
    campuses = web.intake().get("/institution").get("campuses") or []
    found = [m.province for c in campuses if (m := municipality(c.get("municipality") or ""))]
    return suggested_region(found)


def _extra_week_label(week: ExtraWeek) -> str:
    facts = {"year": week.monday.year, "first": nice_date(week.monday), "last": nice_date(week.friday)}
    if week.kind == "carnival":
        return _("Carnival week %(year)s: %(first)s to %(last)s", **facts)
    return _("Second week of the May holiday %(year)s: %(first)s to %(last)s", **facts)


def _week_of(span: dict[str, Any]) -> str:
    """An ISO week "2027-W09" when the span is exactly one Monday-to-Sunday week, else "start/end"."""
    from datetime import date, timedelta

    start, end = date.fromisoformat(span["start"]), date.fromisoformat(span["end"])
    if start.weekday() == 0 and end - start == timedelta(days=6):
        year, week, _day = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.isoformat()}/{end.isoformat()}"
