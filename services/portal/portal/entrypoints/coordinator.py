"""The coordinator's console, first part: rounds from start to end. Build a round (workspace, period, policy
explained in one sentence, its assignments), watch its run, read the result in names (and why an assignment or
team went unmatched, in words), forbid a pair with a reason, run again, publish, follow the firms' answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from ..adapters.clients import ApiError
from . import web
from .forms import (
    ActionForm,
    CompareChoiceForm,
    FindPairForm,
    ForbidForm,
    FoundPairForm,
    PinForm,
    ReleaseForm,
    ResultFilterForm,
    RoundChoiceForm,
    RoundForm,
)
from .i18n import current_language, nice_datetime, nice_period
from .i18n import gettext as _

blueprint = Blueprint("coordinator", __name__, url_prefix="/coordinator")
ROLE = "coordinator"
SEPARATOR = "|"
LIVE = ("queued", "running")


def _own_workspaces() -> list[dict[str, Any]]:
    me = web.person()
    return [w for w in web.intake().get_all("/workspaces") if w.get("organisation_id") == me.organisation_id]


def _period_choices(workspaces: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each workspace's periods; with several workspaces, also each period two or more of them share: one round
    over all of those (a multi-region round; their workspace ids joined by commas before the separator)."""
    several = len(workspaces) > 1
    choices = [(f"{w['id']}{SEPARATOR}{p['code']}",
                f"{w['name']}: {nice_period(p['code'])}" if several else nice_period(p["code"]))
               for w in workspaces for p in w.get("periods", [])]
    codes = list(dict.fromkeys(p["code"] for w in workspaces for p in w.get("periods", [])))
    for code in codes:
        sharing = [w["id"] for w in workspaces if any(p["code"] == code for p in w.get("periods", []))]
        if len(sharing) > 1:
            choices.append((f"{','.join(sharing)}{SEPARATOR}{code}",
                            _("All your workspaces that have it (%(count)s): %(period)s",
                              count=len(sharing), period=nice_period(code))))
    return choices


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
    named, _sep, period = chosen.partition(SEPARATOR)
    workspace_ids = [w for w in named.split(",") if w]
    waiting = [a for a in web.intake().get_all("/assignments", status="submitted", period=period)
               if a["workspace_id"] in workspace_ids] if workspace_ids else []
    form.assignment_ids.choices = [(a["id"], a["title"]) for a in waiting]
    if request.method == "GET" and not form.assignment_ids.data:
        form.assignment_ids.data = [a["id"] for a in waiting]
    if request.method == "POST" and form.validate_on_submit():
        body = {"period": period, "policy": form.policy.data, "auto_publish": bool(form.auto_publish.data),
                "assignment_ids": form.assignment_ids.data,
                **({"workspace_id": workspace_ids[0]} if len(workspace_ids) == 1 else {"workspace_ids": workspace_ids})}
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


PAGE_SIZE = 50
SHOWS = ("matches", "unmatched_assignments", "unmatched_teams")
SIZES = ("5", "10", "25", "50", "100")
TEXT_PAGES = 5  # a text search looks at the first 500 assignments whose title or firm has the text


def _batch(batch_id: str) -> dict[str, Any]:
    """The batch without its lists (a big round's assignments are looked up a page at a time)."""
    found = web.intake().get("/batches", id=batch_id, page_size=1)
    if not found:
        abort(404)
    return dict(found[0])


def _lookup(path: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Intake's teams or assignments with these ids (only these: a page's worth), by id."""
    wanted = sorted({i for i in ids if i})
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 100):
        chunk = wanted[start:start + 100]
        found.update((x["id"], x) for x in web.intake().get(path, id=chunk, page_size=100))
    return found


def _show_choices() -> list[tuple[str, str]]:
    return [("matches", _("Matches")), ("unmatched_assignments", _("Assignments without a team")),
            ("unmatched_teams", _("Teams without an assignment"))]


def _answer_label(code: str | None) -> str:
    return {"accepted": _("Accepted"), "declined": _("Declined")}.get(code or "", _("No answer yet"))


def _trigger_label(code: str | None) -> str:
    return {"batch.submitted": _("the round was submitted"), "coordinator": _("you ran it again"),
            "declined": _("a firm declined a team: matched again with as few changes as possible"),
            "withdrawn": _("an assignment was withdrawn: matched again with as few changes as possible"),
            "handed_over": _("an assignment was handed over: matched again with as few changes as possible")}.get(
        code or "", _("another change: matched again with as few changes as possible"))


def _filters() -> tuple[ResultFilterForm, dict[str, Any]]:
    form = ResultFilterForm(formdata=request.args)
    form.show.choices = _show_choices()
    form.answer.choices = [("", _("Any answer")), ("pending", _("No answer yet")), ("accepted", _("Accepted")),
                           ("declined", _("Declined"))]
    form.sort.choices = [("fit_desc", _("Best fit first")), ("fit_asc", _("Lowest fit first")),
                         ("level", _("By level")), ("answer", _("By the firm's answer"))]
    form.level.choices = [("", _("Any level"))]
    form.institution.choices = [("", _("Any institution"))]
    params: dict[str, Any] = {"show": form.show.data if form.show.data in SHOWS else "matches",
                              "sort": form.sort.data or "fit_desc",
                              "page_size": int(form.size.data) if form.size.data in SIZES else PAGE_SIZE}
    try:
        params["page"] = max(1, min(100000, int(request.args.get("page", "1"))))
    except ValueError:
        params["page"] = 1
    if form.validate():
        for name, key in (("level", "level"), ("institution", "institution_id"), ("answer", "answer")):
            if form[name].data:
                params[key] = form[name].data
        if form.min_fit.data is not None:
            params["min_fit"] = float(form.min_fit.data)
        if form.max_fit.data is not None:
            params["max_fit"] = float(form.max_fit.data)
    return form, params


def _results(batch_id: str, run: dict[str, Any], form: ResultFilterForm, params: dict[str, Any]
             ) -> dict[str, Any]:
    """One page of the run's result in names: matching filters, sorts and pages; intake names only the page's
    teams and assignments."""
    text = (form.q.data or "").strip() if not form.q.errors else ""
    capped = False
    if text and params["show"] != "unmatched_teams":
        ids: list[str] = []
        for page in range(1, TEXT_PAGES + 1):
            found_page = web.intake().get("/assignments", batch_id=batch_id, q=text, page=page, page_size=100)
            ids.extend(a["id"] for a in found_page)
            if len(found_page) < 100:
                break
        else:
            capped = True
        params["assignment_id"] = ids or ["none"]
    found = web.matching().get(f"/runs/{run['id']}/results", **params)
    items = found["items"]
    assignments = _lookup("/assignments", (i.get("assignment_id", "") for i in items))
    teams = _lookup("/teams", [*(i.get("team_id", "") for i in items),
                               *(x["team_id"] for x in found.get("institutions", []))])
    samples = teams
    institutions = sorted(((x["institution_id"], samples.get(x["team_id"], {}).get("institution_name", ""))
                           for x in found.get("institutions", [])), key=lambda kv: kv[1])
    form.institution.choices = [("", _("Any institution")), *[(k, v) for k, v in institutions if v]]
    form.level.choices = [("", _("Any level")), *[(v, v) for v in found.get("levels", [])]]
    rows = []
    for item in items:
        assignment = assignments.get(item.get("assignment_id", ""), {})
        team = teams.get(item.get("team_id", ""), {})
        rows.append({**item, "assignment": assignment.get("title", ""), "firm": assignment.get("firm_name", ""),
                     "team": team.get("code", ""), "institution": team.get("institution_name", ""),
                     "level": item.get("level") or team.get("level", ""),
                     "pair": f"{item.get('team_id', '')}{SEPARATOR}{item.get('assignment_id', '')}"})
    pages = max(1, -(-found["total"] // params["page_size"]))
    return {**found, "rows": rows, "pages": pages, "text": text, "capped": capped}


def _page_url(batch_id: str, page: int) -> str:
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "page" and v}
    return url_for("coordinator.round", batch_id=batch_id, page=page, **args)


@blueprint.get("/rounds/<id:batch_id>")
@web.requires(ROLE)
def round(batch_id: str) -> Any:
    batch = _batch(batch_id)
    run = None
    runs: list[dict[str, Any]] = []
    try:
        runs = _runs(batch_id)
        run = runs[-1] if runs else None
    except ApiError as exc:
        if exc.status != 404:  # matching has not received the batch yet
            raise
    filters, params = _filters()
    results = None
    if run and run["status"] in ("solved", "published"):
        results = _results(batch_id, run, filters, params)
    rows = results["rows"] if results else []
    matched = [r for r in rows if params["show"] == "matches"]
    forbid = ForbidForm()
    forbid.pair.choices = [(r["pair"], f"{r['team']}: {r['assignment']}") for r in matched]
    release = ReleaseForm(prefix="release")
    release.pair.choices = [(r["pair"], f"{r['team']}: {r['assignment']}") for r in matched
                            if r.get("answer") == "accepted"]
    pin = PinForm()
    pin.assignment.choices = [("", _("Choose an assignment")), *sorted(
        {(r["assignment_id"], r["assignment"]) for r in rows if r.get("assignment_id")}, key=lambda kv: kv[1])]
    pin.team.choices = [("", _("Choose a team")), *sorted(
        {(r["team_id"], f"{r['team']} ({r['level']}, {r['institution']})") for r in rows if r.get("team_id")},
        key=lambda kv: kv[1])]
    finder, found_pair = _found_pair_forms(batch, pin) if results else (None, None)
    choose = CompareChoiceForm(formdata=None)
    numbered = [(r["id"], _("Run %(n)s", n=n) + f": {nice_datetime(r['created_at'])}")
                for n, r in enumerate(runs, start=1)]
    choose.a.choices, choose.b.choices = numbered, numbered
    if len(runs) > 1:
        choose.a.data, choose.b.data = runs[-2]["id"], runs[-1]["id"]
    short = [c for c in ((run or {}).get("precheck") or {}).get("cells", []) if c.get("short_by")]
    return render_template("coordinator/round.html", batch=batch, run=run, runs=runs, rows=rows, results=results,
                           filters=filters, params=params, short=short, pin=pin, release=release, choose=choose,
                           forbid=forbid, action=ActionForm(), answer_label=_answer_label, finder=finder,
                           found_pair=found_pair,
                           trigger_label=_trigger_label, page_url=lambda n: _page_url(batch_id, n),
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


FOUND = 20  # assignments and teams offered from a search


def _round_workspaces(batch: dict[str, Any]) -> list[str]:
    """Every workspace of the batch's round (one, or several: a multi-region round)."""
    return list(batch.get("workspace_ids") or [batch["workspace_id"]])


def _found_pair_forms(batch: dict[str, Any], pin: PinForm) -> tuple[FindPairForm, FoundPairForm | None]:
    """What the coordinator searched for in the whole round (intake's text search), offered to pin or forbid:
    the assignments of the round and the teams of its workspaces and period that match the texts (a side
    without a text: the result page's)."""
    finder = FindPairForm(formdata=request.args)
    finder.validate()
    assignment_text = (finder.find_assignment.data or "").strip() if not finder.find_assignment.errors else ""
    team_text = (finder.find_team.data or "").strip() if not finder.find_team.errors else ""
    if not assignment_text and not team_text:
        return finder, None
    form = FoundPairForm(formdata=None, prefix="found")
    form.assignment.choices = [(a["id"], f"{a['title']} ({a.get('firm_name', '')})") for a in web.intake().get(
        "/assignments", batch_id=batch["id"], q=assignment_text, page_size=FOUND)] if assignment_text else \
        _offered(pin.assignment.choices)
    form.team.choices = [(t["id"], f"{t['code']} ({t['level']}, {t.get('institution_name', '')})")
                         for t in web.intake().get("/teams", workspace_id=_round_workspaces(batch),
                                                   period=batch["period"], q=team_text, page_size=FOUND)
                         ] if team_text else _offered(pin.team.choices)
    return finder, form


def _offered(choices: Any) -> list[tuple[str, str]]:
    """A select's choices but its empty one, as (value, label): WTForms keeps them as ``SelectChoice`` objects once
    set (a search with one side's text only takes the other side's choices from the result page)."""
    out = []
    for c in choices:
        value, label = (c.value, c.label) if hasattr(c, "value") else (c[0], c[1])
        if value:
            out.append((str(value), str(label)))
    return out


@blueprint.post("/rounds/<id:batch_id>/found-pairs")
@web.requires(ROLE)
def found_pair(batch_id: str) -> Any:
    """Pin or forbid a pair the coordinator found by text (any assignment and team of the round)."""
    form = FoundPairForm(prefix="found")
    form.assignment.choices = [(request.form.get("found-assignment", ""), "")]
    form.team.choices = [(request.form.get("found-team", ""), "")]
    action = request.form.get("found-action")
    if action not in ("pin", "forbid") or not form.validate_on_submit():
        return web.done(_("Choose an assignment and a team and give a reason."), "coordinator.round",
                        batch_id=batch_id)
    body = {"team_id": form.team.data, "assignment_id": form.assignment.data, "reason": form.reason.data}
    try:
        web.matching().send("POST", f"/batches/{batch_id}/{'pins' if action == 'pin' else 'forbids'}", body)
    except ApiError as exc:
        if exc.status not in (400, 409, 422):
            raise
        return web.done(exc.message, "coordinator.round", batch_id=batch_id)
    if action == "pin":
        return web.done(_("The pair is pinned: the next runs place this team on this assignment. Run the round "
                          "again to see the effect."), "coordinator.round", batch_id=batch_id)
    return web.done(_("The pair is forbidden in the next runs. Run the round again to see the effect."),
                    "coordinator.round", batch_id=batch_id)


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


@blueprint.post("/rounds/<id:batch_id>/releases")
@web.requires(ROLE)
def release(batch_id: str) -> Any:
    """Let go of a pair a firm accepted, with a reason (matching audits it), and run the round again: the re-run
    may change that pair; every other accepted pair stays."""
    form = ReleaseForm(prefix="release")
    form.pair.choices = [(request.form.get("release-pair", ""), "")]
    if form.validate_on_submit():
        team_id, _sep, assignment_id = (form.pair.data or "").partition(SEPARATOR)
        try:
            web.matching().send("POST", f"/batches/{batch_id}/runs", {"release": [
                {"team_id": team_id, "assignment_id": assignment_id, "reason": form.reason.data}]})
        except ApiError as exc:
            if exc.status not in (400, 409, 422, 429):
                raise
            return web.done(exc.message, "coordinator.round", batch_id=batch_id)
        return web.done(_("The pair is released and the round runs again; the new run may change it."),
                        "coordinator.round", batch_id=batch_id)
    return web.done(_("Choose an accepted pair and give a reason."), "coordinator.round", batch_id=batch_id)


@blueprint.get("/rounds/<id:batch_id>/compare")
@web.requires(ROLE)
def compare(batch_id: str) -> Any:
    """Two runs of the round, chosen from its runs, side by side: which pairs the second run added and dropped
    and why (a page of each at a time), and how many it kept."""
    runs = _runs(batch_id)
    ids = [r["id"] for r in runs]
    a, b = request.args.get("a", ""), request.args.get("b", "")
    if a not in ids or b not in ids:
        if len(ids) < 2:
            return web.done(_("A round needs two runs to compare."), "coordinator.round", batch_id=batch_id)
        a, b = ids[-2], ids[-1]
    found = web.matching().get("/runs/compare", a=a, b=b)
    batch = _batch(batch_id)
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    shown = {key: found[key][(page - 1) * PAGE_SIZE:page * PAGE_SIZE] for key in ("added", "removed")}
    pairs = [p for key in shown for p in shown[key]]
    assignments = _lookup("/assignments", (p["assignment_id"] for p in pairs))
    teams = _lookup("/teams", (p["team_id"] for p in pairs))
    language = current_language()

    def named(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({"assignment": assignments.get(p["assignment_id"], {}).get("title", ""),
                        "firm": assignments.get(p["assignment_id"], {}).get("firm_name", ""),
                        "team": teams.get(p["team_id"], {}).get("code", ""),
                        "institution": teams.get(p["team_id"], {}).get("institution_name", ""),
                        "score": p["score"], "why": (p.get("why") or {}).get(language, ""),
                        "reason": (p.get("why") or {}).get("reason")} for p in items),
                      key=lambda r: (r["assignment"], r["team"]))

    order = {run_id: n for n, run_id in enumerate(ids, start=1)}
    pages = max(1, -(-max(len(found["added"]), len(found["removed"])) // PAGE_SIZE))
    choose = CompareChoiceForm(formdata=None, a=a, b=b)
    numbered = [(r["id"], _("Run %(n)s", n=n) + f": {nice_datetime(r['created_at'])}")
                for n, r in enumerate(runs, start=1)]
    choose.a.choices, choose.b.choices = numbered, numbered
    return render_template("coordinator/compare.html", batch=batch, a=found["a"], b=found["b"],
                           number_a=order[a], number_b=order[b], added=named(shown["added"]),
                           removed=named(shown["removed"]), kept_count=len(found["kept"]),
                           added_count=len(found["added"]), removed_count=len(found["removed"]),
                           choose=choose, page=page, pages=pages, trigger_label=_trigger_label,
                           page_url=lambda n: url_for("coordinator.compare", batch_id=batch_id, a=a, b=b, page=n))
