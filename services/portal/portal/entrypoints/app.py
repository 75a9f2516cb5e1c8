"""The portal's app factory: pages, server-side sessions, CSRF on every form, a strict Content-Security-Policy
(no inline script or style, nothing from another origin), languages, and errors as pages."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from datetime import timedelta
from typing import Any

from cachelib.file import FileSystemCache
from flask import Flask, Response, g, jsonify, render_template, request, session
from flask_session import Session
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkplaats_shared.metrics import install_http_metrics
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from ..adapters.clients import ApiError, Clients, Unavailable
from ..config import PortalSettings
from ..service_layer import signin
from . import auth, coordinator, coordinator_console, coordinator_reach, entrepreneur, institution
from .forms import ActionForm, LanguageForm
from .i18n import current_language, install_i18n
from .labels import install_labels

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
                           "object-src 'none'")
SESSION_LIFETIME = timedelta(hours=12)
MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def _cookie_key(secret_key: str) -> bytes:
    """The portal's own key for cookies and CSRF tokens, derived so the shared secret never signs them directly."""
    return hmac.new(secret_key.encode(), b"werkplaats portal sessions v1", hashlib.sha256).digest()


def _session_store(app: Flask, settings: PortalSettings) -> None:
    if settings.session_store.startswith("redis://"):
        import redis

        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(settings.session_store))
    else:
        folder = os.path.join(os.path.abspath(settings.data_dir), "portal-sessions")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        app.config.update(SESSION_TYPE="cachelib",
                          SESSION_CACHELIB=FileSystemCache(folder, threshold=10000, mode=0o600))
    Session(app)


class IdConverter(BaseConverter):
    """An object id in a page's path: letters, digits, '-' and '_' only, so it is safe in a service's URL."""

    regex = r"[A-Za-z0-9_-]{1,64}"


class TokenConverter(BaseConverter):
    """A sign-in link's or invitation's token: URL-safe characters only."""

    regex = r"[A-Za-z0-9_.-]{1,512}"


def create_portal_app(settings: PortalSettings, clients: Clients) -> Flask:
    app = Flask("portal", static_folder=os.path.join(os.path.dirname(os.path.dirname(__file__)), "static"),
                template_folder=os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates"))
    app.config.update(
        SECRET_KEY=_cookie_key(settings.secret_key),
        # over https the __Host- prefix pins the cookie to this host and path, secure only
        SESSION_COOKIE_NAME="__Host-werkplaats_session" if settings.secure_cookies else "werkplaats_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_PERMANENT=True,
        SESSION_REFRESH_EACH_REQUEST=False,  # save only what changed: a parallel request cannot undo a refresh
        SESSION_KEY_PREFIX="portal:",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        WTF_CSRF_TIME_LIMIT=int(SESSION_LIFETIME.total_seconds()),
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.url_map.converters.update(id=IdConverter, token=TokenConverter)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies, x_host=settings.trusted_proxies)
    app.extensions["werkplaats_clients"] = clients
    app.extensions["werkplaats_portal_settings"] = settings
    install_http_metrics(app, "portal")  # first: its clock starts before the session and CSRF checks
    _session_store(app, settings)
    CSRFProtect(app)
    install_i18n(app)
    install_labels(app)

    app.register_blueprint(auth.blueprint)
    app.register_blueprint(entrepreneur.blueprint)
    app.register_blueprint(institution.blueprint)
    app.register_blueprint(coordinator.blueprint)
    app.register_blueprint(coordinator_reach.blueprint)
    app.register_blueprint(coordinator_console.blueprint)

    @app.context_processor
    def _page_context() -> dict[str, Any]:
        who = signin.person(session) if signin.signed_in(session) else None
        return {"who": who, "language_form": LanguageForm(language=current_language()),
                "sign_out_form": ActionForm(), "language": current_language()}

    @app.before_request
    def _language() -> None:
        g.language = current_language()

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if settings.secure_cookies:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Content-Language"] = current_language()
        return response

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    @app.get("/ready")
    def ready() -> Any:
        checks = {}
        for name in ("intake", "matching", "scheduling"):
            client = getattr(clients, name)
            try:
                client.get("/health", None)
                checks[name] = "ok"
            except (ApiError, Unavailable):
                checks[name] = "unreachable"
        ok = all(v == "ok" for v in checks.values())
        return jsonify(status="ready" if ok else "not ready", checks=checks), 200 if ok else 503

    def _error_page(status: int, title: str, text: str) -> tuple[str, int]:
        return render_template("error.html", status=status, title=title, text=text), status

    @app.errorhandler(signin.NotSignedIn)
    def _not_signed_in(_exc: Exception) -> Any:
        from flask import redirect, url_for

        from .web import return_path

        return redirect(url_for("auth.sign_in", next=return_path()))

    @app.errorhandler(Unavailable)
    def _unavailable(_exc: Exception) -> Any:
        from .i18n import gettext as _

        log.warning("a service did not answer", extra={"path": request.path})
        body, status = _error_page(503, _("Temporarily unavailable"),
                                   _("Part of Werkplaats does not answer right now. Nothing was lost: "
                                     "try again in a minute."))
        return body, status, {"Retry-After": "30"}

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        from .i18n import gettext as _

        if exc.status in (401,):
            session.pop(signin.KEY, None)
            return _not_signed_in(exc)
        if exc.status in (403, 404, 410):
            return _error_page(404, _("Page not found"), _("This page does not exist, or it is not yours."))
        log.warning("a service refused a request", extra={"path": request.path, "status": exc.status})
        return _error_page(502, _("Something went wrong"), exc.message or _("The request was refused."))

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> Any:
        from .i18n import gettext as _

        return _error_page(400, _("The form has expired"),
                           _("For your safety the form could not be sent. Go back, reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        from .i18n import gettext as _

        if exc.code == 404:
            return _error_page(404, _("Page not found"), _("This page does not exist, or it is not yours."))
        if exc.code == 413:
            return _error_page(413, _("File too large"), _("Files up to 16 MB can be sent."))
        return _error_page(exc.code or 500, exc.name, exc.description or "")

    return app
