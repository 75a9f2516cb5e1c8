"""Rate limits per API key (Flask-Limiter): 429 with Retry-After when a key sends too many requests.

Counters live in WERKPLAATS_RATE_LIMIT_STORAGE: memory per process locally, a shared Redis in
production so that replicas count together. Requests without an API key count per client address: the
peer's address, or, behind WERKPLAATS_TRUSTED_PROXIES reverse proxies, the address they report in
X-Forwarded-For (never the header alone, which any client can write).
"""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import Limiter
from limits.storage import MemoryStorage
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth import PUBLIC_PATHS
from .config import Settings


class SweptMemoryStorage(MemoryStorage):
    """limits' memory storage (``memory://``), with its sweep of expired counters at most once a second.

    The library starts a thread that walks every counter of the last window 10 ms after each request: with a key
    per firm, thousands of counters, the walk cost more CPU than the rest of a ``POST /firm`` (1.2 ms of 5.4 ms
    per request at 2,000 keys, benchmarks/firm_profile.py). A counter is checked for expiry whenever it is read,
    so a slower sweep changes no limit; it only frees the memory of callers gone quiet a little later."""

    STORAGE_SCHEME = ["werkplaats-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        self._swept_at = time.monotonic()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # the library's (name-mangled) hook, called on each hit
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_SECONDS:
            self._swept_at = now
            super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


def storage_uri(configured: str) -> str:
    """Where the counters live: ``memory://`` is the swept memory storage above."""
    return "werkplaats-memory://" if configured == "memory://" else configured


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
        storage_uri=storage_uri(settings.rate_limit_storage), headers_enabled=True, retry_after="delta-seconds",
        key_prefix=f"werkplaats:{settings.service}",
    )
