"""The entrepreneur's pages: firm profile, assignments (submit, edit, withdraw), matches (accept, decline),
notices contact, kickoff availability and kickoffs with a calendar download."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from ..adapters.clients import ApiError
from . import labels, web
from .forms import (
    ActionForm,
    AnswerForm,
    AssignmentForm,
    AvailabilityForm,
    ContactForm,
    FirmForm,
    WorkshopInterestForm,
    skills_list,
)
from .i18n import current_language, nice_date, nice_period
from .i18n import gettext as _

blueprint = Blueprint("entrepreneur", __name__, url_prefix="/firm")
ROLE = "entrepreneur"
OPEN_FOR_EDIT = ("submitted",)
WITHDRAWABLE = ("submitted", "in_batch", "matched", "unmatched", "declined")


def _firm() -> dict[str, Any] | None:
    try:
        return dict(web.intake().get("/firm"))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _workspace_for(firm: dict[str, Any] | None) -> dict[str, Any] | None:
    """The workspace serving the firm; a firm outside every working area submits to the first workspace, which
    refers the assignment to the schemes that can help."""
    if firm and firm.get("workspace_id"):
        return dict(web.intake().get(f"/workspaces/{firm['workspace_id']}"))
    workspaces = web.intake().get_all("/workspaces")
    return dict(workspaces[0]) if workspaces else None


def _plain_matches() -> list[dict[str, Any]]:
    """The firm's matches in plain words: scheduling's answers and deadlines joined to intake's placements."""
    placements = {p["match_id"]: p for p in web.intake().get_all("/placements")}
    found = []
    for answer in web.scheduling().get_all("/match-answers"):
        placement = placements.get(answer["match_id"])
        if placement is None:
            continue  # a match intake no longer holds as current (a re-run dropped it)
        found.append({**placement, **answer})
    return found


@blueprint.get("")
@web.requires(ROLE)
def home() -> Any:
    firm = _firm()
    if firm is None:
        return render_template("entrepreneur/welcome.html")
    assignments = web.intake().get_all("/assignments")
    waiting = [m for m in _plain_matches() if m.get("decision") is None]
    return render_template("entrepreneur/home.html", firm=firm, assignments=assignments, waiting=waiting)


@blueprint.route("/profile", methods=["GET", "POST"])
@web.requires(ROLE)
def profile() -> Any:
    firm, etag = None, ""
    try:
        firm, etag = web.intake().read_with_etag("/firm")
    except ApiError as exc:
        if exc.status != 404:
            raise
    form = FirmForm(data=firm if request.method == "GET" else None)
    form.size_class.choices = labels.choices(labels.SIZES)
    form.municipality.choices = [("", _("Choose a municipality")), *labels.municipalities().items()]
    if form.validate_on_submit():
        body = {"kvk_number": form.kvk_number.data, "sector": form.sector.data, "size_class": form.size_class.data,
                "municipality": form.municipality.data, "max_concurrent_teams": form.max_concurrent_teams.data}
        try:
            if firm is None:
                web.intake().send("POST", "/firm", {**body, "language": current_language()})
            else:
                web.intake().send("PATCH", "/firm", body, headers={"If-Match": etag})
        except ApiError as exc:
            if exc.status not in (400, 409, 412, 422):
                raise
            if exc.status == 412:
                form.form_errors.append(_("Someone changed the profile meanwhile. Check it and save again."))
            else:
                web.show_api_errors(form, exc)
        else:
            return web.done(_("Your firm's profile is saved."), "entrepreneur.home")
    return render_template("entrepreneur/profile.html", form=form, firm=firm)


def _assignment_form(firm: dict[str, Any] | None, workspace: dict[str, Any] | None,
                     data: dict[str, Any] | None = None) -> AssignmentForm:
    form = AssignmentForm(data=data)
    form.theme.choices = [("", _("Choose a theme")), *labels.choices(labels.THEMES)]
    form.kind.choices = labels.choices(labels.KINDS)
    form.mode.choices = labels.choices(labels.MODES)
    periods = (workspace or {}).get("periods", [])
    form.period.choices = [(p["code"], nice_period(p["code"])) for p in periods]
    return form


def _assignment_body(form: AssignmentForm) -> dict[str, Any]:
    teams = form.max_teams.data or 1
    return {"title": form.title.data, "description": form.description.data or "", "theme": form.theme.data,
            "kind": form.kind.data, "period": form.period.data, "accepted_levels": form.accepted_levels.data,
            "required_skills": skills_list(form.required_skills.data),
            "nice_to_have_skills": skills_list(form.nice_to_have_skills.data), "mode": form.mode.data,
            "min_teams": 1, "max_teams": teams}


ASSIGNMENT_FIELDS = {"required_skills": "required_skills", "nice_to_have_skills": "nice_to_have_skills",
                     "min_teams": "max_teams", "workspace_id": "period"}


@blueprint.route("/assignments/new", methods=["GET", "POST"])
@web.requires(ROLE)
def new_assignment() -> Any:
    firm = _firm()
    if firm is None:
        return web.done(_("Tell us about your firm first."), "entrepreneur.profile")
    workspace = _workspace_for(firm)
    form = _assignment_form(firm, workspace, {"kind": "project", "mode": "hybrid", "max_teams": 1,
                                              "submission": uuid.uuid4().hex} if request.method == "GET" else None)
    if form.validate_on_submit() and workspace is not None:
        key = form.submission.data if re.fullmatch(r"[0-9a-f]{32}", form.submission.data or "") else None
        try:
            created = web.intake().send("POST", "/assignments",
                                        {**_assignment_body(form), "workspace_id": workspace["id"]},
                                        headers={"Idempotency-Key": key} if key else None)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc, ASSIGNMENT_FIELDS)
        else:
            return redirect(url_for("entrepreneur.submitted", assignment_id=created["id"]))
    return render_template("entrepreneur/assignment_form.html", form=form, workspace=workspace, editing=None)


@blueprint.get("/assignments/<id:assignment_id>/submitted")
@web.requires(ROLE)
def submitted(assignment_id: str) -> Any:
    found = web.intake().get(f"/assignments/{assignment_id}")
    return render_template("entrepreneur/submitted.html", assignment=found, routing=_routing(found))


def _routing(assignment: dict[str, Any]) -> dict[str, Any]:
    """Where a submitted assignment went, in words: the serving workspace, or the schemes it was referred to."""
    outcome = "referred" if assignment.get("status") == "referred" else "accepted"
    found: dict[str, Any] = {"outcome": outcome, "workspace": None, "schemes": []}
    if outcome == "referred":
        referral = next((r for r in web.intake().get_all("/referrals") if r.get("assignment_id") == assignment["id"]),
                        None)
        codes = (referral or {}).get("scheme_codes", [])
        catalogue = {s["code"]: s for s in web.intake().get_all("/referral-schemes")}
        found["schemes"] = [catalogue[c] for c in codes if c in catalogue]
    elif assignment.get("workspace_id"):
        found["workspace"] = web.intake().get(f"/workspaces/{assignment['workspace_id']}")
    return found


@blueprint.get("/assignments/<id:assignment_id>")
@web.requires(ROLE)
def assignment(assignment_id: str) -> Any:
    found = web.intake().get(f"/assignments/{assignment_id}")
    placements = web.intake().get_all("/placements", assignment_id=assignment_id)
    return render_template("entrepreneur/assignment.html", assignment=found, placements=placements,
                           can_edit=found["status"] in OPEN_FOR_EDIT, can_withdraw=found["status"] in WITHDRAWABLE)


@blueprint.route("/assignments/<id:assignment_id>/edit", methods=["GET", "POST"])
@web.requires(ROLE)
def edit_assignment(assignment_id: str) -> Any:
    found, etag = web.intake().read_with_etag(f"/assignments/{assignment_id}")
    if found["status"] not in OPEN_FOR_EDIT:
        return web.done(_("This assignment is in a matching round and can no longer be changed."),
                        "entrepreneur.assignment", assignment_id=assignment_id)
    workspace = dict(web.intake().get(f"/workspaces/{found['workspace_id']}"))
    data = None
    if request.method == "GET":
        data = {**found, "required_skills": ", ".join(found["required_skills"]),
                "nice_to_have_skills": ", ".join(found["nice_to_have_skills"])}
    form = _assignment_form(_firm(), workspace, data)
    if form.validate_on_submit():
        body = _assignment_body(form)
        if body["period"] == found["period"]:
            del body["period"]
        try:
            web.intake().send("PATCH", f"/assignments/{assignment_id}", body, headers={"If-Match": etag})
        except ApiError as exc:
            if exc.status == 412:
                form.form_errors.append(_("Someone changed the assignment meanwhile. Check it and save again."))
            elif exc.status in (400, 409, 422):
                web.show_api_errors(form, exc, ASSIGNMENT_FIELDS)
            else:
                raise
        else:
            return web.done(_("The assignment is saved."), "entrepreneur.assignment", assignment_id=assignment_id)
    return render_template("entrepreneur/assignment_form.html", form=form, workspace=workspace, editing=found)


@blueprint.route("/assignments/<id:assignment_id>/withdraw", methods=["GET", "POST"])
@web.requires(ROLE)
def withdraw_assignment(assignment_id: str) -> Any:
    """A question first (withdrawing cannot be undone), then the withdrawal."""
    found = web.intake().get(f"/assignments/{assignment_id}")
    form = ActionForm()
    if form.validate_on_submit():
        try:
            web.intake().send("POST", f"/assignments/{assignment_id}/withdraw")
        except ApiError as exc:
            if exc.status != 409:
                raise
            return web.done(_("This assignment can no longer be withdrawn: its status changed meanwhile."),
                            "entrepreneur.assignment", assignment_id=assignment_id)
        return web.done(_("The assignment is withdrawn."), "entrepreneur.assignment", assignment_id=assignment_id)
    return render_template("entrepreneur/withdraw.html", assignment=found, form=form)


@blueprint.route("/matches", methods=["GET"])
@web.requires(ROLE)
def matches() -> Any:
    found = _plain_matches()
    forms = {}
    for m in found:
        form = AnswerForm(prefix=m["match_id"][:8])
        form.decision.choices = labels.choices(labels.DECISIONS)
        forms[m["match_id"]] = form
    return render_template("entrepreneur/matches.html", matches=found, forms=forms)


@blueprint.post("/matches/<id:match_id>")
@web.requires(ROLE)
def answer(match_id: str) -> Any:
    found = {m["match_id"]: m for m in _plain_matches()}
    if match_id not in found:
        raise NotFound()
    form = AnswerForm(prefix=match_id[:8])
    form.decision.choices = labels.choices(labels.DECISIONS)
    if form.validate_on_submit():
        try:
            web.scheduling().send("POST", f"/match-answers/{match_id}", {"decision": form.decision.data})
        except ApiError as exc:
            if exc.status != 409:
                raise
            return web.done(_("This match was answered before; the first answer stands."), "entrepreneur.matches")
        if form.decision.data == "accepted":
            return web.done(_("Thank you! We plan a kickoff meeting with the team."), "entrepreneur.matches")
        return web.done(_("Thank you. We look for another team."), "entrepreneur.matches")
    forms = {m: (form if m == match_id else AnswerForm(prefix=m[:8])) for m in found}
    for f in forms.values():
        f.decision.choices = labels.choices(labels.DECISIONS)
    return render_template("entrepreneur/matches.html", matches=list(found.values()), forms=forms), 422


@blueprint.route("/contact", methods=["GET", "POST"])
@web.requires(ROLE)
def contact() -> Any:
    current = None
    try:
        current = web.scheduling().get("/contact")
    except ApiError as exc:
        if exc.status != 404:
            raise
    form = ContactForm(data=current if request.method == "GET" and current else
                       ({"language": current_language()} if request.method == "GET" else None))
    if form.validate_on_submit():
        try:
            web.scheduling().send("PUT", "/contact", {"email": form.email.data, "language": form.language.data})
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            web.show_api_errors(form, exc)
        else:
            return web.done(_("Your contact details are saved."), "entrepreneur.home")
    return render_template("entrepreneur/contact.html", form=form)


@blueprint.route("/availability", methods=["GET", "POST"])
@web.requires(ROLE)
def availability() -> Any:
    current = None
    try:
        current = web.scheduling().get("/availability")
    except ApiError as exc:
        if exc.status != 404:
            raise
    data = None
    if request.method == "GET":
        if current and current.get("windows"):
            first = current["windows"][0]
            data = {"weekdays": [str(w["weekday"]) for w in current["windows"]], "starts_at": first["start"],
                    "ends_at": first["end"], "venue": current.get("venue"), "address": current.get("address")}
        else:
            data = {"weekdays": ["1", "2", "3"], "venue": "online"}
    form = AvailabilityForm(data=_times(data))
    form.weekdays.choices = [(str(i), labels.weekday_label(i)) for i in range(5)]
    form.venue.choices = labels.choices(labels.VENUES)
    address = request.form.get("address", (current or {}).get("address") or "")
    address_error = None
    if form.validate_on_submit():
        if form.venue.data == "on_site" and not address.strip():
            address_error = _("Give the address of your premises for a meeting there.")
        else:
            start, end = form.starts_at.data, form.ends_at.data
            assert start is not None and end is not None
            body = {"windows": [{"weekday": int(d), "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
                                for d in form.weekdays.data or []],
                    "venue": form.venue.data, "address": address.strip() or None,
                    "blocked_dates": (current or {}).get("blocked_dates", [])}
            try:
                web.scheduling().send("PUT", "/availability", body)
            except ApiError as exc:
                if exc.status not in (400, 422):
                    raise
                web.show_api_errors(form, exc, {"windows": "weekdays", "end": "ends_at", "start": "starts_at"})
                address_error = exc.field_errors().get("address")
            else:
                return web.done(_("Your availability is saved."), "entrepreneur.kickoffs")
    return render_template("entrepreneur/availability.html", form=form, address=address,
                           address_error=address_error)


def _times(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return data
    from datetime import time

    out = dict(data)
    for key in ("starts_at", "ends_at"):
        if isinstance(out.get(key), str):
            out[key] = time.fromisoformat(out[key])
    return out


@blueprint.get("/kickoffs")
@web.requires(ROLE)
def kickoffs() -> Any:
    placements = {p["match_id"]: p for p in web.intake().get_all("/placements")}
    found = [{**k, "placement": placements.get(k["match_id"])} for k in web.scheduling().get_all("/kickoffs")]
    return render_template("entrepreneur/kickoffs.html", kickoffs=found, agree=web.agreement_forms(found))


@blueprint.post("/kickoffs/<id:match_id>/agreement")
@web.requires(ROLE)
def agree_to_kickoff(match_id: str) -> Any:
    return web.agree_to_kickoff(match_id, "entrepreneur.kickoffs")


@blueprint.get("/calendar.ics")
@web.requires(ROLE)
def calendar() -> Any:
    download = web.scheduling().download("/calendar.ics")
    return Response(download.content, mimetype="text/calendar",
                    headers={"Content-Disposition": 'attachment; filename="werkplaats-kickoffs.ics"'})



def _theme_names() -> dict[str, str]:
    key = "label_nl" if current_language() == "nl" else "label_en"
    return {t["code"]: t[key] for t in web.scheduling().get_all("/workshop-themes")}


@blueprint.get("/workshops")
@web.requires(ROLE)
def workshops() -> Any:
    programmes = web.scheduling().get_all("/workshop-programmes")
    registrations = web.scheduling().get_all("/workshop-registrations")
    titles = {p["id"]: p["title"] for p in programmes}
    return render_template("entrepreneur/workshops.html", programmes=[p for p in programmes if p["status"] == "open"],
                           registrations=[r for r in registrations if r["status"] in ("seated", "waitlisted")],
                           titles=titles, themes=_theme_names(), cancel_form=ActionForm())


@blueprint.route("/workshops/<id:programme_id>", methods=["GET", "POST"])
@web.requires(ROLE)
def workshop_interest(programme_id: str) -> Any:
    programme = web.scheduling().get(f"/workshop-programmes/{programme_id}")
    themes = _theme_names()
    wanted = [code for code in themes if not programme.get("sessions_wanted")
              or programme["sessions_wanted"].get(code, 1) > 0]
    mine = web.scheduling().get_all(f"/workshop-programmes/{programme_id}/interests")
    form = WorkshopInterestForm()
    taken = {i["theme"] for i in mine}
    form.theme.choices = [("", _("Choose a theme")), *[(c, themes[c]) for c in wanted if c not in taken]]
    days = sorted({slot["date"] for slot in programme.get("slots", [])})
    form.available_days.choices = [(d, nice_date(d)) for d in days]
    form.locations.choices = [(loc["municipality_code"], loc["name"]) for loc in programme.get("locations", [])]
    if form.validate_on_submit():
        body = {"theme": form.theme.data, "available_days": form.available_days.data,
                "locations": form.locations.data or [], "online_ok": bool(form.online_ok.data)}
        try:
            web.scheduling().send("POST", f"/workshop-programmes/{programme_id}/interests", body)
        except ApiError as exc:
            if exc.status not in (400, 409, 422):
                raise
            web.show_api_errors(form, exc)
        else:
            return web.done(_("Your interest is registered. You hear from us once the sessions are planned."),
                            "entrepreneur.workshops")
    return render_template("entrepreneur/workshop_interest.html", programme=programme, form=form, mine=mine,
                           themes=themes)


@blueprint.post("/workshops/registrations/<id:registration_id>/cancel")
@web.requires(ROLE)
def cancel_workshop(registration_id: str) -> Any:
    form = ActionForm()
    if form.validate_on_submit():
        try:
            web.scheduling().send("POST", f"/workshop-registrations/{registration_id}/cancel")
        except ApiError as exc:
            if exc.status != 409:
                raise
        return web.done(_("Your place is cancelled; it goes to the next in line."), "entrepreneur.workshops")
    return web.done(_("The form has expired. Try again."), "entrepreneur.workshops")
