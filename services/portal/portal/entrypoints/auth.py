"""Signing in and out, signing up as a firm, e-mail links, invitations, the language switch, colleagues."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from ..adapters.clients import ApiError
from ..service_layer import signin
from . import web
from .forms import ActionForm, InvitationForm, InviteForm, LanguageForm, SignInForm, SignInLinkForm, SignUpForm
from .i18n import LANGUAGES, current_language
from .i18n import gettext as _

blueprint = Blueprint("auth", __name__)

HOMES = {"entrepreneur": "entrepreneur.home", "institution": "institution.home", "coordinator": "coordinator.home"}


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (no scheme, no host, not '//'), so a link cannot send a person elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _start(answer: dict[str, Any]) -> Response:
    """A fresh session (new id: no fixation) holding the person's tokens; then their home or the page they asked."""
    target = _safe_next(request.args.get("next"))
    language = current_language()
    session.clear()
    person = signin.begin(session, answer)
    if not answer["account"].get("language"):
        session["language"] = language
    _new_session_id()
    return redirect(target or url_for(HOMES.get(person.role, "auth.index")))


def _new_session_id() -> None:
    """A new session id for a session that holds something (no fixation: an id planted before signing in, or
    seen before signing out, opens nothing). Flask-Session regenerates only a non-empty session."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None and session:
        regenerate(session)


def _address() -> str | None:
    return request.remote_addr


@blueprint.get("/")
def index() -> Any:
    if signin.signed_in(session):
        return redirect(url_for(HOMES.get(signin.person(session).role, "auth.sign_in")))
    return render_template("auth/index.html")


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    form = SignInForm()
    if form.validate_on_submit():
        try:
            answer = web.clients().intake.open_session(form.email.data or "", form.password.data or "",
                                                       current_language(), _address())
        except ApiError as exc:
            if exc.status == 429:
                form.form_errors.append(_("Too many attempts. Wait a few minutes, or sign in with an e-mail link."))
            elif exc.status in (401, 403, 422):
                form.form_errors.append(_("The e-mail address or the password is not right."))
            else:
                raise
        else:
            return _start(answer)
    return render_template("auth/sign_in.html", form=form)


@blueprint.route("/sign-in/link", methods=["GET", "POST"])
def sign_in_link() -> Any:
    form = SignInLinkForm()
    if form.validate_on_submit():
        try:
            web.clients().intake.request_sign_in_link(form.email.data or "", current_language(), _address())
        except ApiError as exc:
            if exc.status != 429:
                raise
            form.form_errors.append(_("Too many links asked for. Wait a few minutes."))
        else:
            return render_template("auth/link_sent.html")
    return render_template("auth/sign_in_link.html", form=form)


@blueprint.route("/sign-in/link/<token:token>", methods=["GET", "POST"])
def use_sign_in_link(token: str) -> Any:
    """GET shows a button, POST signs in: a mail scanner that opens the link does not use it up."""
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            answer = web.clients().intake.use_sign_in_link(token, current_language(), _address())
        except ApiError as exc:
            if exc.status in (400, 401, 403, 404, 410, 422):
                return render_template("auth/link_used.html"), 410
            raise
        return _start(answer)
    return render_template("auth/use_link.html", form=form)


@blueprint.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> Any:
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            answer = web.clients().intake.sign_up({
                "organisation_name": form.organisation_name.data, "email": form.email.data,
                "password": form.password.data, "language": current_language()}, current_language(), _address())
        except ApiError as exc:
            if exc.status == 409:
                form.email.errors = [*form.email.errors, _("This e-mail address has an account already: sign in.")]
            elif exc.status in (400, 422, 429):
                web.show_api_errors(form, exc)
            else:
                raise
        else:
            flash(_("Welcome! Tell us about your firm first."), "success")
            return _start(answer)
    return render_template("auth/sign_up.html", form=form)


@blueprint.post("/sign-out")
def sign_out() -> Any:
    form = ActionForm()
    if form.validate_on_submit():
        language = current_language()
        signin.end(session, web.clients().intake, _address())
        session.clear()
        session["language"] = language
        _new_session_id()
        flash(_("You are signed out."), "success")
    return redirect(url_for("auth.index"))


@blueprint.route("/invitations/<token:token>", methods=["GET", "POST"])
def invitation(token: str) -> Any:
    try:
        invited = web.clients().intake.invitation(token, current_language(), _address())
    except ApiError as exc:
        if exc.status in (400, 403, 404, 410, 422):
            return render_template("auth/link_used.html"), 410
        raise
    if request.method == "GET" and "language" not in session and invited.get("language") in LANGUAGES:
        session["language"] = g.language = invited["language"]  # the page speaks the invitation's language
    form = InvitationForm()
    if form.validate_on_submit():
        try:
            answer = web.clients().intake.accept_invitation(token, form.password.data or "", current_language(),
                                                             _address())
        except ApiError as exc:
            if exc.status in (404, 410):
                return render_template("auth/link_used.html"), 410
            if exc.status in (400, 409, 422):
                web.show_api_errors(form, exc)
            else:
                raise
        else:
            return _start(answer)
    return render_template("auth/invitation.html", form=form, invited=invited)


@blueprint.post("/language")
def language() -> Any:
    form = LanguageForm()
    if form.validate_on_submit() and form.language.data in LANGUAGES:
        session["language"] = form.language.data
        if signin.signed_in(session):
            web.intake().send("PUT", "/me/language", {"language": form.language.data})
    return redirect(_safe_next(request.form.get("next")) or url_for("auth.index"))


@blueprint.route("/account/colleagues", methods=["GET", "POST"])
def colleagues() -> Any:
    if not signin.signed_in(session):
        return redirect(url_for("auth.sign_in", next=request.path))
    form = InviteForm(language=current_language())
    if form.validate_on_submit():
        try:
            web.intake().send("POST", "/invitations", {"email": form.email.data, "language": form.language.data})
        except ApiError as exc:
            if exc.status == 409:
                form.email.errors = [*form.email.errors, _("This e-mail address has an account already.")]
            elif exc.status in (400, 422):
                web.show_api_errors(form, exc)
            else:
                raise
        else:
            return web.done(_("The invitation is on its way."), "auth.colleagues")
    invitations = web.intake().get_all("/invitations")
    return render_template("auth/colleagues.html", form=form, invitations=invitations)
