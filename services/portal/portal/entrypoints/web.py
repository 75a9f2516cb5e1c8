"""What every page's view shares: the signed-in person, their calls to the services, role guards, forms'
errors from an API answer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from ..adapters.clients import ApiError, Clients, Download, Paged, ServiceClient
from ..service_layer import signin
from .i18n import current_language, gettext

F = TypeVar("F", bound=Callable[..., Any])


def clients() -> Clients:
    return cast(Clients, current_app.extensions["werkplaats_clients"])


class Calls:
    """One service's API as the signed-in person: their token, their language."""

    def __init__(self, client: ServiceClient, service: str) -> None:
        self.client = client
        self.service = service

    def _token(self) -> str:
        return signin.token(session, clients().intake, self.service, client_address=request.remote_addr)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, self._token(), current_language(), params=params or None)

    def get_all(self, path: str, **params: Any) -> list[Any]:
        return self.client.get_all(path, self._token(), current_language(), params=params or None)

    def page(self, path: str, page: int = 1, page_size: int = 25, **params: Any) -> Paged:
        return self.client.page(path, self._token(), current_language(), params=params or None, page=page,
                                page_size=page_size)

    def read_with_etag(self, path: str) -> tuple[Any, str]:
        return self.client.read_with_etag(path, self._token(), current_language())

    def send(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.send(method, path, self._token(), current_language(), body, **kw)

    def download(self, path: str) -> Download:
        return self.client.download(path, self._token(), current_language())


def intake() -> Calls:
    return Calls(clients().intake, "intake")


def matching() -> Calls:
    return Calls(clients().matching, "matching")


def scheduling() -> Calls:
    return Calls(clients().scheduling, "scheduling")


def return_path() -> str | None:
    """Where to come back to after signing in: this page, or for a form that was sent, no page (the person's
    home): a form's address answers POST only."""
    return request.full_path.rstrip("?") if request.method == "GET" else None


def person() -> signin.Person:
    return signin.person(session)


def requires(role: str) -> Callable[[F], F]:
    """Only a signed-in person of this role; anyone else is sent to sign in, or gets 404 (another role's page
    does not exist for them)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not signin.signed_in(session):
                return redirect(url_for("auth.sign_in", next=return_path()))
            if person().role != role:
                abort(404)
            g.person = person()
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


def show_api_errors(form: FlaskForm, error: ApiError, fields: dict[str, str] | None = None) -> None:
    """Put a service's refusal on the form: each reason on its field (API field name -> form field name),
    what fits no field in the error summary."""
    mapping = fields or {}
    placed = False
    for api_field, reason in error.field_errors().items():
        name = mapping.get(api_field, api_field)
        target = getattr(form, name, None)
        if target is not None and hasattr(target, "errors"):
            if reason not in target.errors:
                target.errors = [*list(target.errors), reason]
            placed = True
    if not placed:
        form.form_errors.append(error.message or gettext("The request was refused."))


def page_number(name: str = "page") -> int:
    """The page a list is asked for (?page=3); anything else is the first."""
    text = request.args.get(name, "")
    return min(int(text), 10_000) if text.isdigit() and int(text) > 0 else 1


def done(message: str, endpoint: str, **values: Any) -> Response:
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def agreement_forms(kickoffs: list[dict[str, Any]]) -> dict[str, FlaskForm]:
    """A button per kickoff meeting with a proposed time: agree to that time (as shown: its sequence)."""
    from .forms import KickoffAgreementForm

    return {k["match_id"]: KickoffAgreementForm(prefix=k["match_id"][:8], sequence=str(k["sequence"]))
            for k in kickoffs if k.get("status") == "proposed" and k.get("starts_at") and not k.get("confirmed")}


def agree_to_kickoff(match_id: str, endpoint: str) -> Response:
    """The firm or the team's institution agrees to a kickoff meeting's proposed time; once both have, it is
    confirmed and the firm gets the confirmed invitation."""
    from .forms import KickoffAgreementForm

    form = KickoffAgreementForm(prefix=match_id[:8])
    if not form.validate_on_submit():
        abort(400)
    try:
        kickoff = scheduling().send("POST", f"/kickoffs/{match_id}/agreement", {"sequence": int(form.sequence.data)})
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        if exc.status == 409:
            flash(gettext("The time of this kickoff meeting changed meanwhile: look at the new time and agree "
                          "again."), "info")
            return redirect(url_for(endpoint))
        if exc.status == 422:
            flash(gettext("This kickoff meeting no longer has a proposed time to agree to."), "info")
            return redirect(url_for(endpoint))
        raise
    if kickoff["confirmed"]:
        return done(gettext("Thank you. Both sides agreed: the kickoff meeting is confirmed."), endpoint)
    return done(gettext("Thank you. The kickoff meeting is confirmed as soon as the other side agrees too."),
                endpoint)
