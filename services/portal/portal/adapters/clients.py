"""One typed client per service the portal calls. Each call carries the signed-in person's own token for that
service and the reader's language (the services answer errors in Dutch or English); an answer that is not a
success raises ApiError with the service's status, message and field errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT = (5, 60)  # connect, read (seconds)


@dataclass
class ApiError(Exception):
    status: int
    message: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    body: Any = None

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"

    def field_errors(self) -> dict[str, str]:
        """The first reason per field, by the field's last path part (``periods.0.code`` -> ``code``)."""
        found: dict[str, str] = {}
        for error in self.errors:
            name = str(error.get("field", "_body"))
            found.setdefault(name, str(error.get("reason", "")))
            found.setdefault(name.split(".")[0], str(error.get("reason", "")))
        return found


class Unavailable(Exception):
    """The service did not answer (down, or a network error)."""


@dataclass(frozen=True)
class Download:
    content: bytes
    content_type: str
    filename: str | None


@dataclass(frozen=True)
class Paged:
    """One page of a service's list: its items, which page it is, how many pages and items there are."""

    items: list[Any]
    page: int
    pages: int
    total: int


class ServiceClient:
    def __init__(self, base_url: str, http: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or requests.Session()

    def _headers(self, token: str | None, language: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "Accept-Language": language}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def request(self, method: str, path: str, token: str | None, language: str = "nl", *,
                json: Any = None, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                files: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> requests.Response:
        all_headers = {**self._headers(token, language), **(headers or {})}
        try:
            response = self.http.request(method, self.base_url + path, json=json, params=params,
                                         headers=all_headers, files=files, data=data, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise Unavailable(f"{self.base_url} did not answer") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code in (502, 503, 504) and not isinstance(body, dict):
                raise Unavailable(f"{self.base_url} answered {response.status_code}")
            message = body.get("message", "") if isinstance(body, dict) else ""
            errors = body.get("errors", []) if isinstance(body, dict) else []
            raise ApiError(response.status_code, str(message or ""), list(errors or []), body)
        return response

    def get(self, path: str, token: str | None, language: str = "nl", **kw: Any) -> Any:
        return self.request("GET", path, token, language, **kw).json()

    def get_all(self, path: str, token: str | None, language: str = "nl", params: dict[str, Any] | None = None,
                limit: int = 1000) -> list[Any]:
        """Every item of a paginated list, up to ``limit``: page after page by the position the service gives
        (``next_after``: each row read once however long the list), by number where it gives none."""
        items: list[Any] = []
        page, after = 1, None
        while len(items) < limit:
            paging: dict[str, Any] = {"after": after} if after is not None else {"page": page}
            response = self.request("GET", path, token, language, params={**(params or {}), **paging,
                                                                           "page_size": 100})
            batch = response.json()
            items.extend(batch)
            if len(batch) < 100:
                break
            try:
                after = json.loads(response.headers.get("X-Pagination", "{}")).get("next_after")
            except (ValueError, AttributeError):
                after = None
            if after is None and "after" in paging:
                break
            page += 1
        return items[:limit]

    def page(self, path: str, token: str | None, language: str = "nl", params: dict[str, Any] | None = None,
             page: int = 1, page_size: int = 25) -> Paged:
        """One page of a paginated list, with the list's total from the service's X-Pagination header."""
        response = self.request("GET", path, token, language,
                                params={**(params or {}), "page": page, "page_size": page_size})
        try:
            total = int(json.loads(response.headers.get("X-Pagination", "{}")).get("total", 0))
        except (ValueError, AttributeError):
            total = 0
        items = list(response.json())
        total = max(total, (page - 1) * page_size + len(items))
        return Paged(items, page, max(1, -(-total // page_size)), total)

    def send(self, method: str, path: str, token: str | None, language: str = "nl", body: Any = None,
             **kw: Any) -> Any:
        response = self.request(method, path, token, language, json=body, **kw)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def read_with_etag(self, path: str, token: str, language: str = "nl") -> tuple[Any, str]:
        response = self.request("GET", path, token, language)
        return response.json(), response.headers.get("ETag", "")

    def download(self, path: str, token: str | None, language: str = "nl") -> Download:
        response = self.request("GET", path, token, language, headers={"Accept": "*/*"})
        disposition = response.headers.get("Content-Disposition", "")
        filename = disposition.split("filename=", 1)[1].strip('"') if "filename=" in disposition else None
        return Download(response.content, response.headers.get("Content-Type", "application/octet-stream"),
                        filename)


class IntakeClient(ServiceClient):
    """Organisations, accounts and sessions, firms, assignments, institutions, capacity, teams, placements."""

    # public: sign-up, sign-in and invitations carry their own credential. Each passes on the person's own
    # address (X-Forwarded-For), so that intake's limits count per person, not for the portal as a whole.
    @staticmethod
    def _forwarded(client_address: str | None) -> dict[str, str] | None:
        return {"X-Forwarded-For": client_address} if client_address else None

    def sign_up(self, body: dict[str, Any], language: str, client_address: str | None = None) -> dict[str, Any]:
        return dict(self.send("POST", "/signups", None, language, body, headers=self._forwarded(client_address)))

    def open_session(self, email: str, password: str, language: str,
                     client_address: str | None = None) -> dict[str, Any]:
        return dict(self.send("POST", "/sessions", None, language, {"email": email, "password": password},
                              headers=self._forwarded(client_address)))

    def refresh_session(self, refresh_token: str, client_address: str | None = None) -> dict[str, Any]:
        return dict(self.send("POST", "/sessions/refresh", None, "nl", {"refresh_token": refresh_token},
                              headers=self._forwarded(client_address)))

    def revoke_session(self, refresh_token: str, client_address: str | None = None) -> None:
        self.send("POST", "/sessions/revoke", None, "nl", {"refresh_token": refresh_token},
                  headers=self._forwarded(client_address))

    def request_sign_in_link(self, email: str, language: str, client_address: str | None = None) -> None:
        self.send("POST", "/sign-in-links", None, language, {"email": email, "language": language},
                  headers=self._forwarded(client_address))

    def use_sign_in_link(self, token: str, language: str, client_address: str | None = None) -> dict[str, Any]:
        return dict(self.send("POST", f"/sign-in-links/{token}/session", None, language,
                              headers=self._forwarded(client_address)))

    def invitation(self, token: str, language: str, client_address: str | None = None) -> dict[str, Any]:
        return dict(self.get(f"/invitations/{token}", None, language, headers=self._forwarded(client_address)))

    def accept_invitation(self, token: str, password: str, language: str,
                          client_address: str | None = None) -> dict[str, Any]:
        return dict(self.send("POST", f"/invitations/{token}/accept", None, language, {"password": password},
                              headers=self._forwarded(client_address)))


class MatchingClient(ServiceClient):
    """Runs and matches (the coordinator's console uses more of it)."""


class SchedulingClient(ServiceClient):
    """Contact, availability, match answers, kickoffs, institution calendar, workshops."""


@dataclass(frozen=True)
class Clients:
    intake: IntakeClient
    matching: MatchingClient
    scheduling: SchedulingClient
