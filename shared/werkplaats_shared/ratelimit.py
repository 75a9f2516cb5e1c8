"""Rate limits per API key (Flask-Limiter): 429 with Retry-After when a key sends too many requests.

Counters live in WERKPLAATS_RATE_LIMIT_STORAGE: memory per process locally, a shared Redis in
production so that replicas count together. Requests without an API key count per client address: the
peer's address, or, behind WERKPLAATS_TRUSTED_PROXIES reverse proxies, the address they report in
X-Forwarded-For (never the header alone, which any client can write).
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth import PUBLIC_PATHS
from .config import Settings


def _caller() -> str:
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal is not None else f"addr:{request.remote_addr}"


def install_rate_limits(app: Flask, settings: Settings) -> Limiter:
    """Install after the authentication hook, so that limits count per API key."""
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    return Limiter(
        key_func=_caller, app=app, default_limits=[settings.rate_limit],
        default_limits_exempt_when=lambda: request.path in PUBLIC_PATHS,
        storage_uri=settings.rate_limit_storage, headers_enabled=True, retry_after="delta-seconds",
        key_prefix=f"werkplaats:{settings.service}",
    )
