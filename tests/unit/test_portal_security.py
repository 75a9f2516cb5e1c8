"""The portal's own defences, without the services: the Content-Security-Policy and other headers on every page,
the session cookie's flags (Secure, __Host- and HSTS over https), no open redirect through ``next``, object ids
in paths limited to safe characters, and a sign-in form refused without its CSRF token."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from portal.bootstrap import build
from portal.config import PortalSettings
from portal.entrypoints.auth import _safe_next

SECRET = "portal-security-test-secret-0123456789abcdef"


def _app(tmp_path: Path, public_url: str = "http://127.0.0.1:8100") -> Flask:
    app = build(PortalSettings(secret_key=SECRET, data_dir=str(tmp_path), public_url=public_url,
                               intake_url="http://127.0.0.1:9", matching_url="http://127.0.0.1:9",
                               scheduling_url="http://127.0.0.1:9"))
    app.config["TESTING"] = True
    return app


def test_every_page_carries_a_strict_content_security_policy_and_no_store(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    for path in ("/", "/sign-in", "/sign-up", "/sign-in/link", "/no-such-page"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Language"] == "nl"
    css = client.get("/static/portal.css")
    assert css.status_code == 200 and "no-store" not in css.headers.get("Cache-Control", "")
    css.close()


def test_the_session_cookie_is_httponly_lax_and_over_https_secure_host_only_with_hsts(tmp_path: Path) -> None:
    local = _app(tmp_path / "a").test_client().get("/sign-in")
    cookie = local.headers["Set-Cookie"]
    assert cookie.startswith("werkplaats_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Strict-Transport-Security" not in local.headers
    public = _app(tmp_path / "b", "https://portal.werkplaats.example.nl").test_client()
    answer = public.get("/sign-in", base_url="https://portal.werkplaats.example.nl")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-werkplaats_session=") and "Secure" in cookie and "Domain" not in cookie
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize(("target", "kept"), [
    ("/firm/matches", "/firm/matches"), ("/firm?x=1", "/firm?x=1"), ("https://evil.example/", None),
    ("//evil.example/x", None), ("/\\evil.example", "/\\evil.example"), ("javascript:alert(1)", None), ("", None),
    ("firm", None),
])
def test_next_only_returns_to_a_path_on_this_site(target: str, kept: str | None) -> None:
    assert _safe_next(target) == kept


def test_object_ids_in_paths_are_limited_to_safe_characters(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    assert client.get("/firm/assignments/..%2F..%2Fteams").status_code == 404
    assert client.get("/firm/assignments/abc$def").status_code == 404
    assert client.get("/firm/assignments/3f6c2b1e-9c1d-4e0a-8a51-1f2d3c4b5a69").status_code == 302  # sign in


def test_a_form_without_its_csrf_token_is_refused(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.config["TESTING"] = False  # CSRF on, as in production
    client = app.test_client()
    refused = client.post("/sign-in", data={"email": "a@b.example.org", "password": "x" * 12})
    assert refused.status_code == 400 and "formulier" in refused.get_data(as_text=True)
