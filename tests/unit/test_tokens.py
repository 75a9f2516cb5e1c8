"""Account tokens beside API keys: one fixed algorithm; expiry, audience, issuer and subject required.

Every refused token answers 401 with the JSON error shape and a reason that names no secret, no claim
value and no account."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from flask import jsonify
from flask.testing import FlaskClient
from werkplaats_shared import tokens
from werkplaats_shared.auth import current_principal, generate_key, install_auth, roles
from werkplaats_shared.db import make_engine, messaging_tables, utcnow
from werkplaats_shared.http import create_app

SECRET = "unit-test-secret-key-0123456789-abcdefghij"
ORG = "org-coordinator-1"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[FlaskClient, str]]:
    metadata = sa.MetaData()
    _, _, api_keys = messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    metadata.create_all(engine)
    key = generate_key()
    with engine.begin() as conn:
        conn.execute(api_keys.insert().values(key_id=key.key_id, organisation_id="org-firm", role="entrepreneur",
                                              secret_hash=key.secret_hash, created_at=utcnow()))
    app, _ = create_app("tokens test")
    install_auth(app, engine, api_keys, tokens=tokens.TokenVerifier(SECRET, "intake"))

    @app.get("/me")
    def me() -> Any:
        p = current_principal()
        return jsonify(organisation_id=p.organisation_id, role=p.role, key_id=p.key_id)

    @app.post("/coordinators-only")
    @roles("coordinator")
    def coordinators_only() -> Any:
        return jsonify(ok=True)

    yield app.test_client(), key.plaintext
    engine.dispose()


def _claims(**over: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    claims: dict[str, Any] = {"iss": tokens.ISSUER, "aud": "werkplaats:intake", "sub": "a1b2c3d4e5f60718",
                              "org": ORG, "role": "coordinator", "iat": now, "nbf": now,
                              "exp": now + timedelta(minutes=10), "jti": "j" * 32}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: bytes | str | None = None, algorithm: str = "HS256",
          headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, key if key is not None else tokens._signing_key(SECRET), algorithm=algorithm,
                      headers=headers)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()


def _refused(client: FlaskClient, token: str, reason_part: str) -> None:
    resp = client.get("/me", headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    body = resp.get_json()
    assert body["status"] == 401 and body["error"] == "Unauthorized"
    assert reason_part in body["message"], body["message"]
    text = resp.get_data(as_text=True)
    for secret in (SECRET, ORG, "a1b2c3d4e5f60718", token):
        assert secret not in text


def test_an_issued_token_authenticates_as_the_coordinator_account(client: tuple[FlaskClient, str]) -> None:
    c, _ = client
    issued = tokens.issue_token(SECRET, account_id="a1b2c3d4e5f60718", organisation_id=ORG, role="coordinator",
                                service="intake")
    assert issued.expires_at - datetime.now(UTC) <= tokens.DEFAULT_LIFETIME
    resp = c.get("/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert resp.status_code == 200
    assert resp.get_json() == {"organisation_id": ORG, "role": "coordinator", "key_id": "acct_a1b2c3d4e5f60718"}
    assert c.post("/coordinators-only", headers={"Authorization": f"Bearer {issued.token}"}).status_code == 200


def test_api_keys_keep_working_beside_tokens(client: tuple[FlaskClient, str]) -> None:
    c, key = client
    resp = c.get("/me", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200 and resp.get_json()["role"] == "entrepreneur"
    assert c.post("/coordinators-only", headers={"Authorization": f"Bearer {key}"}).status_code == 403


def test_a_forged_or_altered_signature_is_refused(client: tuple[FlaskClient, str]) -> None:
    c, _ = client
    _refused(c, _sign(_claims(), key=tokens._signing_key("another-secret-key-0123456789-abcdefghij")),
             "signature invalid")
    _refused(c, _sign(_claims(), key=SECRET), "signature invalid")  # the raw secret is not the signing key
    header, _, signature = _sign(_claims()).split(".")
    altered = f"{header}.{_b64({**_claims(), 'org': 'someone-else'})}.{signature}"
    _refused(c, altered, "signature invalid")


def test_an_expired_or_not_yet_valid_token_is_refused(client: tuple[FlaskClient, str]) -> None:
    c, _ = client
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = tokens.issue_token(SECRET, account_id="a1b2c3d4e5f60718", organisation_id=ORG, role="coordinator",
                                 service="intake", now=past)
    _refused(c, expired.token, "token expired")
    future = datetime.now(UTC) + timedelta(minutes=10)
    _refused(c, _sign(_claims(nbf=future, iat=future, exp=future + timedelta(minutes=5))), "not valid yet")


def test_a_token_for_another_service_or_from_another_issuer_is_refused(client: tuple[FlaskClient, str]) -> None:
    c, _ = client
    for_matching = tokens.issue_token(SECRET, account_id="a1b2c3d4e5f60718", organisation_id=ORG,
                                      role="coordinator", service="matching")
    _refused(c, for_matching.token, "not meant for this service")
    _refused(c, _sign(_claims(aud=["werkplaats:matching", "werkplaats:scheduling"])), "not meant for this service")
    _refused(c, _sign(_claims(iss="https://evil.example")), "issuer not accepted")


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "org", "role"])
def test_a_token_missing_a_required_claim_is_refused(client: tuple[FlaskClient, str], claim: str) -> None:
    c, _ = client
    _refused(c, _sign(_claims(**{claim: None})), f"required claim '{claim}'")


def test_alg_none_and_other_algorithms_are_refused(client: tuple[FlaskClient, str]) -> None:
    c, _ = client
    claims = _claims()
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    _refused(c, unsigned, "algorithm not accepted")
    _refused(c, f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(claims)}.", "algorithm not accepted")
    # algorithm confusion: the right key under another HMAC, or an asymmetric algorithm named in the header
    _refused(c, _sign(claims, key=tokens._signing_key(SECRET) * 2, algorithm="HS512"), "algorithm not accepted")
    _refused(c, f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl", "algorithm not accepted")
    _refused(c, f"{_b64({'alg': 'EdDSA', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl", "algorithm not accepted")
    # a header asking the server to fetch or trust a key of the caller's choosing
    _refused(c, _sign(claims, headers={"jku": "https://evil.example/keys.json"}), "header not accepted")


def test_long_lived_wrong_role_and_malformed_tokens_are_refused(client: tuple[FlaskClient, str]) -> None:
    c, _ = client
    now = datetime.now(UTC)
    _refused(c, _sign(_claims(exp=now + timedelta(days=30))), "lives longer than 60 minutes")
    _refused(c, _sign(_claims(role="admin")), "role not accepted")
    _refused(c, _sign(_claims(sid="")), "session invalid")
    _refused(c, _sign(_claims(sid=["s1"])), "session invalid")
    _refused(c, _sign(_claims(sid="s" * 33)), "session invalid")
    _refused(c, _sign(_claims(sub="x" * 40)), "subject invalid")
    _refused(c, _sign(_claims(org="")), "required claim 'org'")
    _refused(c, "abc.def.ghi", "malformed token")
    _refused(c, "..", "malformed token")


def test_without_a_verifier_a_token_is_just_an_invalid_key(tmp_path: Path) -> None:
    metadata = sa.MetaData()
    _, _, api_keys = messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    metadata.create_all(engine)
    app, _ = create_app("no tokens")
    install_auth(app, engine, api_keys)
    app.add_url_rule("/me", "me", lambda: jsonify(ok=True))
    token = tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="coordinator", service="intake")
    resp = app.test_client().get("/me", headers={"Authorization": f"Bearer {token.token}", "Accept-Language": "en"})
    assert resp.status_code == 401 and resp.get_json()["message"] == "invalid or revoked API key"
    engine.dispose()


def test_tokens_are_issued_only_within_the_rules() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        tokens.TokenVerifier("short", "intake")
    with pytest.raises(ValueError, match="coordinator, entrepreneur, institution accounts only"):
        tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="admin", service="intake")
    with pytest.raises(ValueError, match="session id"):
        tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="coordinator", service="intake",
                           session_id="s" * 33)
    with pytest.raises(ValueError, match="lifetime"):
        tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="coordinator", service="intake",
                           lifetime=timedelta(hours=2))
    with pytest.raises(ValueError, match="account id"):
        tokens.issue_token(SECRET, account_id="a" * 28, organisation_id=ORG, role="coordinator", service="intake")


def test_a_service_accepts_tokens_only_once_its_secret_key_is_set() -> None:
    from werkplaats_shared.config import Settings

    assert tokens.verifier_for(Settings.from_env("matching", {})) is None
    verifier = tokens.verifier_for(Settings.from_env("matching", {"WERKPLAATS_SECRET_KEY": SECRET}))
    assert verifier is not None and verifier.audience == "werkplaats:matching"
    token = tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="coordinator", service="matching")
    assert verifier.verify(token.token).organisation_id == ORG


@pytest.mark.parametrize("role", ["coordinator", "institution", "entrepreneur"])
def test_every_role_gets_tokens_that_act_as_its_organisation(client: tuple[FlaskClient, str], role: str) -> None:
    c, _ = client
    issued = tokens.issue_token(SECRET, account_id="a1b2", organisation_id="org-" + role, role=role,
                                service="intake", session_id="5e55" * 8)
    resp = c.get("/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"organisation_id": "org-" + role, "role": role, "key_id": "acct_a1b2"}
    principal = tokens.TokenVerifier(SECRET, "intake").verify(issued.token)
    assert principal.session_id == "5e55" * 8 and principal.account_id == "a1b2"
    assert c.post("/coordinators-only", headers={"Authorization": f"Bearer {issued.token}"}).status_code == (
        200 if role == "coordinator" else 403)


def test_a_token_of_a_revoked_session_is_refused_and_other_sessions_are_not(tmp_path: Path) -> None:
    metadata = sa.MetaData()
    _, _, api_keys = messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    metadata.create_all(engine)
    app, _ = create_app("revoked sessions")
    install_auth(app, engine, api_keys, tokens=tokens.TokenVerifier(SECRET, "intake"))
    app.add_url_rule("/me", "me", lambda: jsonify(ok=True))
    c = app.test_client()

    def status(session_id: str | None) -> int:
        token = tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="institution",
                                   service="intake", session_id=session_id).token
        return c.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code

    assert (status("ended"), status("open"), status(None)) == (200, 200, 200)
    with engine.begin() as conn:
        conn.execute(metadata.tables["revoked_sessions"].insert().values(session_id="ended", revoked_at=utcnow()))
    assert (status("ended"), status("open"), status(None)) == (401, 200, 200)
    token = tokens.issue_token(SECRET, account_id="a1", organisation_id=ORG, role="institution", service="intake",
                               session_id="ended").token
    resp = c.get("/me", headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    assert resp.get_json()["message"] == "the sign-in session of this token has ended"
    resp = c.get("/me", headers={"Authorization": f"Bearer {token}"})  # Dutch unless English is asked for
    assert resp.get_json()["message"] == "De aanmeldsessie van dit token is beëindigd."
    engine.dispose()
