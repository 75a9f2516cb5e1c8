"""Authorization: one written matrix per service of which roles may do which action on which resource,
enforced in one place.

Each service writes its matrix in ``<service>/entrypoints/authorization.py``: for every route and method
of its app the resource and action in the domain's words and the roles allowed, plus the routes that are
public (they need no API key, or carry their own credential). ``install_authorization`` checks every
request against it in a before-request hook that runs after authentication (``auth.install_auth``): a
role not in the matrix answers 403, and so does a route the matrix does not name (fail closed).

What a role may do here is coarse: which routes it may use. Which objects it reaches stays with the
service layer, whose queries are scoped to the caller's organisation (another organisation's object
answers 404). Scopes (read, write, keys) are checked by ``auth.install_auth``.

``python -m werkplaats_shared.authorization`` prints docs/authorization.md from the services' matrices.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask import Flask, g, request

from .auth import refuse

# The parties of the platform, and the operator who runs it (dead letters: see deadletters_api.py).
PARTIES = ("coordinator", "institution", "entrepreneur")
ROLES = (*PARTIES, "operator")
SERVICES = ("intake", "matching", "scheduling")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The Flask default route for a static folder no service has: never in a matrix, so always refused.
UNSERVED_ENDPOINTS = frozenset({"static"})
NOT_IN_MATRIX = "no role may use this route"


def needs_role(allowed: Sequence[str]) -> str:
    return f"this action needs the role {' or '.join(allowed)}"


@dataclass(frozen=True)
class Permission:
    """The roles that may take ``action`` on ``resource`` through ``method`` on one route of the app."""

    resource: str
    action: str
    method: str
    path: str
    endpoint: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class PublicRoute:
    """A route any caller may use without an API key, and why."""

    method: str
    path: str
    endpoint: str
    reason: str


def allow(resource: str, action: str, method: str, path: str, endpoint: str, *roles: str) -> Permission:
    return Permission(resource, action, method, path, endpoint, tuple(roles))


def public(method: str, path: str, endpoint: str, reason: str) -> PublicRoute:
    return PublicRoute(method, path, endpoint, reason)


# Every service's app has these (werkplaats_shared.http): they answer without an API key.
STANDARD_PUBLIC = (
    public("GET", "/", "api_index", "the base URL: points to the documentation"),
    public("GET", "/health", "health", "liveness: answers while the process lives"),
    public("GET", "/ready", "ready", "readiness: database and broker reachable"),
    public("GET", "/openapi.json", "api-docs.openapi_json", "the OpenAPI document"),
    public("GET", "/docs", "api_docs", "the browsable API documentation (Swagger UI)"),
    public("GET", "/docs/docs.js", "api_docs_script", "the browsable API documentation (Swagger UI)"),
    public("GET", "/docs/swagger-ui.css", "api_docs_asset_swagger_ui_css",
           "the browsable API documentation (Swagger UI)"),
    public("GET", "/docs/swagger-ui-bundle.js", "api_docs_asset_swagger_ui_bundle_js",
           "the browsable API documentation (Swagger UI)"),
)


# Every service's app has the operator's dead-letter routes (werkplaats_shared.deadletters_api).
DEAD_LETTER_PERMISSIONS = (
    allow("dead letter", "list", "GET", "/dead-letters", "dead_letters.DeadLetters", "operator"),
    allow("dead letter", "read", "GET", "/dead-letters/<message_id>", "dead_letters.DeadLetterItem", "operator"),
    allow("dead letter", "replay (audited)", "POST", "/dead-letters/replays", "dead_letters.DeadLetterReplays",
          "operator"),
)


class Matrix:
    """A service's permissions and public routes, checked for consistency when written."""

    def __init__(self, service: str, permissions: Iterable[Permission],
                 public_routes: Iterable[PublicRoute] = ()) -> None:
        self.service = service
        self.permissions = tuple(permissions)
        self.public = STANDARD_PUBLIC + tuple(public_routes)
        for p in self.permissions:
            unknown = set(p.roles) - set(ROLES)
            if not p.roles or unknown or len(set(p.roles)) != len(p.roles):
                raise ValueError(f"{service} {p.method} {p.path}: roles must be distinct and among {ROLES}")
        for entry in self._all():
            if entry.method not in METHODS:
                raise ValueError(f"{service} {entry.path}: unknown method {entry.method}")
        keys = Counter((e.endpoint, e.method) for e in self._all())
        twice = sorted(f"{method} {endpoint}" for (endpoint, method), n in keys.items() if n > 1)
        if twice:
            raise ValueError(f"{service}: named more than once: {', '.join(twice)}")
        self._roles = {(p.endpoint, p.method): p.roles for p in self.permissions}
        self._public = {(r.endpoint, r.method) for r in self.public}

    def _all(self) -> tuple[Permission | PublicRoute, ...]:
        return (*self.permissions, *self.public)

    def is_public(self, endpoint: str, method: str) -> bool:
        return (endpoint, method) in self._public

    def roles_for(self, endpoint: str, method: str) -> tuple[str, ...] | None:
        """The roles allowed, or None when the matrix does not name the route and method."""
        return self._roles.get((endpoint, method))

    def entries(self) -> set[tuple[str, str, str]]:
        """(endpoint, method, path) of every permission and public route."""
        return {(e.endpoint, e.method, e.path) for e in self._all()}


def app_routes(app: Flask) -> set[tuple[str, str, str]]:
    """(endpoint, method, path) of every route of ``app``, without the methods Flask answers itself."""
    return {(rule.endpoint, method, rule.rule) for rule in app.url_map.iter_rules()
            if rule.endpoint not in UNSERVED_ENDPOINTS
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}


def install_authorization(app: Flask, matrix: Matrix) -> None:
    """Refuse (403) every request whose role the matrix does not allow on its route and method. Install
    after ``install_auth`` (and the rate limits, so refused requests count too)."""

    @app.before_request
    def _authorize() -> None:
        rule = request.url_rule
        if rule is None or request.method == "OPTIONS":
            return None  # no such route or method (404/405), or Flask's own OPTIONS answer
        method = "GET" if request.method == "HEAD" else request.method
        if matrix.is_public(rule.endpoint, method):
            return None
        allowed = matrix.roles_for(rule.endpoint, method)
        if allowed is None:
            refuse(403, NOT_IN_MATRIX)
        principal = g.get("principal")
        if principal is None or principal.role not in allowed:
            refuse(403, needs_role(allowed))
        return None


def _roles_cell(roles: Sequence[str]) -> str:
    return ", ".join(role for role in ROLES if role in roles)


def matrix_markdown(matrix: Matrix) -> str:
    lines = ["| resource | action | method and path | roles |", "|---|---|---|---|"]
    lines += [f"| {p.resource} | {p.action} | `{p.method} {p.path}` | {_roles_cell(p.roles)} |"
              for p in matrix.permissions]
    lines += ["", "Public (no API key):", "", "| method and path | why |", "|---|---|"]
    lines += [f"| `{r.method} {r.path}` | {r.reason} |" for r in matrix.public]
    return "\n".join(lines)


def service_matrix(service: str) -> Matrix:
    module = importlib.import_module(f"{service}.entrypoints.authorization")
    found: Matrix = module.MATRIX
    return found


HEADER = """# Authorization

Generated from the services' matrices (`services/<service>/<service>/entrypoints/authorization.py`) by
`python -m werkplaats_shared.authorization`; a test checks this file is up to date and that every route of
every service is in its matrix. Do not edit it by hand.

Every request is checked in one place per service (`werkplaats_shared.authorization.install_authorization`),
after authentication: a role not listed for a route and method answers 403; a route the matrix does not name
is refused to everyone. The roles decide which routes a caller may use; which objects it reaches is decided
by the service's queries, scoped to the caller's organisation (another organisation's object answers 404).
API-key scopes apply on top: GET needs `read`, other methods `write`, key and account management `keys`.
"""


def authorization_markdown(matrices: Iterable[Matrix]) -> str:
    parts = [HEADER]
    for matrix in matrices:
        parts.append(f"## {matrix.service}\n\n{matrix_markdown(matrix)}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(authorization_markdown(service_matrix(name) for name in SERVICES), end="")
