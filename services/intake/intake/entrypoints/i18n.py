"""The language of intake's answers: Dutch unless the request asks for English (``Accept-Language: en``
or ``?lang=en``). Errors keep their JSON shape; their message and reasons are translated here, after the
shared error handler wrote them in English."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import default_exceptions

from ..domain.messages import to_dutch

LANGUAGES = ("nl", "en")

# The message of an error that has no own text: what its HTTP status means.
STATUS_NL: dict[int, str] = {
    400: "Het verzoek is ongeldig.",
    401: "Niet aangemeld: stuur een geldige API-sleutel.",
    403: "U heeft geen toegang tot deze actie.",
    404: "Niet gevonden.",
    405: "Deze methode is hier niet toegestaan.",
    406: "Dit antwoordformaat kan niet worden geleverd.",
    409: "Het verzoek botst met de huidige toestand.",
    412: "Het object is intussen gewijzigd: haal het opnieuw op en stuur de nieuwe ETag in If-Match.",
    413: "Het verzoek is te groot.",
    415: "Dit inhoudstype wordt niet ondersteund; stuur JSON.",
    422: "Het verzoek bevat ongeldige gegevens.",
    428: "Stuur de ETag van het object in de header If-Match.",
    429: "Te veel verzoeken; probeer het later opnieuw.",
    500: "Er ging intern iets mis.",
    503: "Tijdelijk niet beschikbaar.",
}


def language() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES, default="nl") or "nl"


def dutch_message(message: str, status: int) -> str:
    known = to_dutch(message)
    if known is not None:
        return known
    default = default_exceptions.get(status)
    if default is not None and message == default.description and status in STATUS_NL:
        return STATUS_NL[status]
    return message


def dutch_error_body(body: dict[str, Any]) -> dict[str, Any]:
    status = body.get("status")
    out = dict(body)
    if isinstance(body.get("message"), str) and isinstance(status, int):
        out["message"] = dutch_message(body["message"], status)
    errors = body.get("errors")
    if isinstance(errors, list):
        out["errors"] = [{**e, "reason": to_dutch(e["reason"]) or e["reason"]}
                         if isinstance(e, dict) and isinstance(e.get("reason"), str) else e for e in errors]
    return out


def install_translations(app: Flask) -> None:
    @app.after_request
    def _translate(response: Response) -> Response:
        response.vary.add("Accept-Language")
        if response.status_code < 400 or not response.is_json:
            return response
        lang = language()
        response.headers["Content-Language"] = lang
        body = response.get_json(silent=True)
        if lang == "nl" and isinstance(body, dict) and "errors" in body:
            response.set_data(json.dumps(dutch_error_body(body)))
        return response
