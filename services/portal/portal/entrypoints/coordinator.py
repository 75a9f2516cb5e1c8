"""The coordinator's console, first part: rounds from start to end. Build a round (workspace, period, policy
explained in one sentence, its assignments), watch its run, read the result in names (and why an assignment or
team went unmatched, in words), forbid a pair with a reason, run again, publish, follow the firms' answers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from ..adapters.clients import ApiError
from . import web
from .forms import ActionForm, ForbidForm, PinForm, RoundChoiceForm, RoundForm
from .i18n import current_language, nice_period
from .i18n import gettext as _

blueprint = Blueprint("coordinator", __name__, url_prefix="/coordinator")
ROLE = "coordinator"
SEPARATOR = "|"
LIVE = ("queued", "running")


def _own_workspaces() -> list[dict[str, Any]]:
    me = web.person()
    return [w for w in web.intake().get_all("/workspaces") if w.get("organisation_id") == me.organisation_id]


def _period_choices(workspaces: list[dict[str, Any]]) -> list[tuple[str, str]]:
    several = len(workspaces) > 1
    return [(f"{w['id']}{SEPARATOR}{p['code']}",
             f"{w['name']}: {nice_period(p['code'])}" if several else nice_period(p["code"]))
            for w in workspaces for p in w.get("periods", [])]


def _policies() -> list[tuple[str, str]]:
    language = current_language()
    return [(p["name"], p[language]) for p in web.matching().get("/policies") if p.get("selectable", True)]


@blueprint.get("")
@web.requires(ROLE)
def home() -> Any:
    batches = web.intake().get_all("/batches")
    placements = web.intake().get_all("/placements")
    return render_template("coordinator/home.html", batches=list(reversed(batches)), placements=placements)


@blueprint.route("/rounds/new", methods=["GET", "POST"])
@web.requires(ROLE)
def new_round() -> Any:
    workspaces = _own_workspaces()
    periods = _period_choices(workspaces)
    chosen = request.values.get("period") or (periods[0][0] if periods else "")
    form = RoundForm(period=chosen, policy="max_fit")
    form.period.choices = periods
    form.policy.choices = _policies()
    workspace_id, _sep, period = chosen.partition(SEPARATOR)
    waiting = [a for a in web.intake().get_all("/assignments", status="submitted", period=period)
               if a["workspace_id"] == workspace_id] if workspace_id else []
    form.assignment_ids.choices = [(a["id"], a["title"]) for a in waiting]
    if request.method == "GET" and not form.assignment_ids.data:
        form.assignment_ids.data = [a["id"] for a in waiting]
    if request.method == "POST" and form.validate_on_submit():
        body = {"workspace_id": workspace_id, "period": period, "policy": form.policy.data,
                "auto_publish": bool(form.auto_publish.data), "assignment_ids": form.assignment_ids.data}
        try:
            batch = web.intake().send("POST", "/batches", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc)
        else:
            return web.done(_("The round is submitted; matching starts now."), "coordinator.round",
                            batch_id=batch["id"])
    choice = RoundChoiceForm(formdata=None, period=chosen)
    choice.period.choices = periods
    return render_template("coordinator/new_round.html", form=form, choice=choice, waiting=waiting)


def _runs(batch_id: str) -> list[dict[str, Any]]:
    """The batch's runs, oldest first."""
    return sorted(web.matching().get(f"/batches/{batch_id}/runs"), key=lambda r: (r["created_at"], r["id"]))


def _latest_run(batch_id: str) -> dict[str, Any] | None:
    runs = _runs(batch_id)
    return runs[-1] if runs else None


@blueprint.get("/rounds/<id:batch_id>")
@web.requires(ROLE)
def round(batch_id: str) -> Any:
    batch = web.intake().get(f"/batches/{batch_id}")
    run = None
    runs: list[dict[str, Any]] = []
    try:
        runs = _runs(batch_id)
        run = runs[-1] if runs else None
    except ApiError as exc:
        if exc.status != 404:  # matching has not received the batch yet
            raise
    titles = {a["id"]: a["title"] for a in batch["assignments"]}
    firms = {a["id"]: a.get("firm_name", "") for a in batch["assignments"]}
    teams = {t["id"]: t for t in web.intake().get_all("/teams", period=batch["period"],
                                                      workspace_id=batch["workspace_id"])}
    explanations = None
    rows: list[dict[str, Any]] = []
    if run and run["status"] in ("solved", "published"):
        explanations = web.matching().get(f"/runs/{run['id']}/explanations")
        for m in explanations.get("matches", []):
            team = teams.get(m["team_id"], {})
            rows.append({"assignment": titles.get(m["assignment_id"], "?"),
                         "firm": firms.get(m["assignment_id"], ""),
                         "team": team.get("code", "?"), "level": team.get("level", ""),
                         "institution": team.get("institution_name", ""),
                         "score": m["score"], "team_id": m["team_id"], "assignment_id": m["assignment_id"]})
    forbid = ForbidForm()
    forbid.pair.choices = [(f"{r['team_id']}{SEPARATOR}{r['assignment_id']}", f"{r['team']}: {r['assignment']}")
                           for r in rows]
    statuses = {a["id"]: a["status"] for a in batch["assignments"]}
    pin = PinForm()
    pin.assignment.choices = [("", _("Choose an assignment")), *sorted(((k, v) for k, v in titles.items()),
                                                                       key=lambda kv: kv[1])]
    pin.team.choices = [("", _("Choose a team")), *sorted(((t["id"], f"{t['code']} ({t['level']}, "
                                                                      f"{t.get('institution_name', '')})")
                                                            for t in teams.values()), key=lambda kv: kv[1])]
    short = [c for c in ((run or {}).get("precheck") or {}).get("cells", []) if c.get("short_by")]
    return render_template("coordinator/round.html", batch=batch, run=run, runs=runs, rows=rows,
                           explanations=explanations, short=short, pin=pin,
                           titles=titles, teams=teams, statuses=statuses, forbid=forbid, action=ActionForm(),
                           live=bool(run and run["status"] in LIVE) or (run is None and batch["status"] ==
                                                                       "submitted"))


@blueprint.post("/rounds/<id:batch_id>/publish")
@web.requires(ROLE)
def publish(batch_id: str) -> Any:
    if ActionForm().validate_on_submit():
        run = _latest_run(batch_id)
        if run is not None and run["status"] == "solved":
            try:
                web.matching().send("POST", f"/runs/{run['id']}/publish")
            except ApiError as exc:
                if exc.status != 409:
                    raise
                return web.done(exc.message, "coordinator.round", batch_id=batch_id)
            return web.done(_("The matches are published; the firms get their notices."), "coordinator.round",
                            batch_id=batch_id)
    return redirect(url_for("coordinator.round", batch_id=batch_id))


@blueprint.post("/rounds/<id:batch_id>/runs")
@web.requires(ROLE)
def rerun(batch_id: str) -> Any:
    if ActionForm().validate_on_submit():
        try:
            web.matching().send("POST", f"/batches/{batch_id}/runs", {})
        except ApiError as exc:
            if exc.status not in (409, 429):
                raise
            return web.done(exc.message, "coordinator.round", batch_id=batch_id)
        return web.done(_("The round runs again."), "coordinator.round", batch_id=batch_id)
    return redirect(url_for("coordinator.round", batch_id=batch_id))


@blueprint.post("/rounds/<id:batch_id>/forbids")
@web.requires(ROLE)
def forbid(batch_id: str) -> Any:
    form = ForbidForm()
    form.pair.choices = [(request.form.get("pair", ""), "")]
    if form.validate_on_submit():
        team_id, _sep, assignment_id = (form.pair.data or "").partition(SEPARATOR)
        try:
            web.matching().send("POST", f"/batches/{batch_id}/forbids",
                                {"team_id": team_id, "assignment_id": assignment_id, "reason": form.reason.data})
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            return web.done(exc.message, "coordinator.round", batch_id=batch_id)
        return web.done(_("The pair is forbidden in the next runs. Run the round again to see the effect."),
                        "coordinator.round", batch_id=batch_id)
    return web.done(_("Choose a pair and give a reason."), "coordinator.round", batch_id=batch_id)


@blueprint.post("/rounds/<id:batch_id>/pins")
@web.requires(ROLE)
def pin(batch_id: str) -> Any:
    form = PinForm()
    form.assignment.choices = [(request.form.get("assignment", ""), "")]
    form.team.choices = [(request.form.get("team", ""), "")]
    if form.validate_on_submit() and form.assignment.data and form.team.data:
        try:
            web.matching().send("POST", f"/batches/{batch_id}/pins", {
                "team_id": form.team.data, "assignment_id": form.assignment.data, "reason": form.reason.data})
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            return web.done(exc.message, "coordinator.round", batch_id=batch_id)
        return web.done(_("The pair is pinned: the next runs place this team on this assignment. Run the round "
                          "again to see the effect."), "coordinator.round", batch_id=batch_id)
    return web.done(_("Choose an assignment and a team and give a reason."), "coordinator.round", batch_id=batch_id)


@blueprint.get("/rounds/<id:batch_id>/compare")
@web.requires(ROLE)
def compare(batch_id: str) -> Any:
    """Two runs of the round side by side: which pairs the later run added, dropped and kept."""
    runs = _runs(batch_id)
    ids = [r["id"] for r in runs]
    a, b = request.args.get("a", ""), request.args.get("b", "")
    if a not in ids or b not in ids:
        if len(ids) < 2:
            return web.done(_("A round needs two runs to compare."), "coordinator.round", batch_id=batch_id)
        a, b = ids[-2], ids[-1]
    found = web.matching().get("/runs/compare", a=a, b=b)
    batch = web.intake().get(f"/batches/{batch_id}")
    titles = {x["id"]: x["title"] for x in batch["assignments"]}
    teams = {t["id"]: t for t in web.intake().get_all("/teams", period=batch["period"],
                                                      workspace_id=batch["workspace_id"])}

    def named(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({"assignment": titles.get(p["assignment_id"], "?"),
                        "team": teams.get(p["team_id"], {}).get("code", "?"),
                        "institution": teams.get(p["team_id"], {}).get("institution_name", ""),
                        "score": p["score"]} for p in pairs), key=lambda r: (r["assignment"], r["team"]))

    order = {run_id: n for n, run_id in enumerate(ids, start=1)}
    return render_template("coordinator/compare.html", batch=batch, a=found["a"], b=found["b"],
                           number_a=order[a], number_b=order[b], added=named(found["added"]),
                           removed=named(found["removed"]), kept=named(found["kept"]))
