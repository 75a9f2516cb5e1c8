"""API keys: stored hashed, compared in constant time, revocable, with scopes checked in one place."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import g
from werkplaats_shared.auth import authenticate, declare_key_management, generate_key, install_auth, required_scope
from werkplaats_shared.db import make_engine, messaging_tables, utcnow


def _store(tmp_path):  # type: ignore[no-untyped-def]
    metadata = sa.MetaData()
    _, _, api_keys = messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.sqlite3'}")
    metadata.create_all(engine)
    return engine, api_keys


def test_a_key_authenticates_as_its_organisation_and_role_and_only_its_hash_is_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, api_keys = _store(tmp_path)
    key = generate_key()
    with engine.begin() as conn:
        conn.execute(api_keys.insert().values(key_id=key.key_id, organisation_id="org-1", role="institution",
                                              secret_hash=key.secret_hash, created_at=utcnow()))
        stored = conn.execute(sa.select(api_keys)).one()
    assert key.plaintext.split("_", 2)[2] not in str(tuple(stored))
    principal = authenticate(engine, api_keys, key.plaintext)
    assert principal is not None
    assert (principal.organisation_id, principal.role) == ("org-1", "institution")


def test_wrong_secret_unknown_id_malformed_and_revoked_keys_fail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, api_keys = _store(tmp_path)
    key = generate_key()
    with engine.begin() as conn:
        conn.execute(api_keys.insert().values(key_id=key.key_id, organisation_id="o", role="coordinator",
                                              secret_hash=key.secret_hash, created_at=utcnow()))
    assert authenticate(engine, api_keys, key.plaintext + "x") is None
    assert authenticate(engine, api_keys, generate_key().plaintext) is None
    for bad in ("", "wpk", "wpk__", "Bearer x", key.plaintext.replace("wpk", "abc")):
        assert authenticate(engine, api_keys, bad) is None
    with engine.begin() as conn:
        conn.execute(api_keys.update().values(revoked_at=utcnow()))
    assert authenticate(engine, api_keys, key.plaintext) is None


def test_a_key_holds_its_stored_scopes_and_a_key_stored_without_them_holds_all(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, api_keys = _store(tmp_path)
    read_only, legacy, damaged = generate_key(), generate_key(), generate_key()
    with engine.begin() as conn:
        for key, scopes in ((read_only, ["read"]), (damaged, {"read": True})):
            conn.execute(api_keys.insert().values(key_id=key.key_id, organisation_id="o", role="coordinator",
                                                  secret_hash=key.secret_hash, created_at=utcnow(), scopes=scopes))
        conn.execute(api_keys.insert().values(key_id=legacy.key_id, organisation_id="o", role="coordinator",
                                              secret_hash=legacy.secret_hash, created_at=utcnow()))
    assert authenticate(engine, api_keys, read_only.plaintext).scopes == {"read"}  # type: ignore[union-attr]
    assert authenticate(engine, api_keys, legacy.plaintext).scopes == {"read", "write", "keys"}  # type: ignore[union-attr]
    assert authenticate(engine, api_keys, damaged.plaintext).scopes == frozenset()  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "manages_keys", "scope"), [
    ("GET", False, "read"), ("HEAD", False, "read"), ("POST", False, "write"), ("PUT", False, "write"),
    ("PATCH", False, "write"), ("DELETE", False, "write"), ("GET", True, "keys"), ("POST", True, "keys"),
])
def test_the_method_and_the_route_decide_the_scope(method: str, manages_keys: bool, scope: str) -> None:
    assert required_scope(method, manages_keys) == scope


def test_the_shared_check_refuses_a_missing_scope_with_403_on_the_authorization_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flask import Blueprint
    from werkplaats_shared.http import create_app

    engine, api_keys = _store(tmp_path)
    keys: dict[str, str] = {}
    with engine.begin() as conn:
        for name, scopes in (("read", ["read"]), ("write", ["write"]), ("keys", ["keys"])):
            key = generate_key()
            keys[name] = key.plaintext
            conn.execute(api_keys.insert().values(key_id=key.key_id, organisation_id="o", role="coordinator",
                                                  secret_hash=key.secret_hash, created_at=utcnow(), scopes=scopes))
    app, _ = create_app("scopes")
    install_auth(app, engine, api_keys)
    managed = Blueprint("managed", __name__)
    managed.add_url_rule("/keys", "keys", lambda: {"ok": True}, methods=["GET", "POST"])
    app.register_blueprint(managed)
    app.add_url_rule("/things", "things", lambda: {"key_id": g.principal.key_id}, methods=["GET", "POST", "DELETE"])
    declare_key_management(app, "managed")
    client = app.test_client()

    def status(who: str, method: str, path: str) -> int:
        return client.open(path, method=method, headers={"Authorization": f"Bearer {keys[who]}"}).status_code

    assert [status("read", m, "/things") for m in ("GET", "POST", "DELETE")] == [200, 403, 403]
    assert [status("write", m, "/things") for m in ("GET", "POST", "DELETE")] == [403, 200, 200]
    assert [status("keys", m, "/keys") for m in ("GET", "POST")] == [200, 200]
    assert [status(who, m, "/keys") for who in ("read", "write") for m in ("GET", "POST")] == [403] * 4
    refused = client.post("/things", headers={"Authorization": f"Bearer {keys['read']}",
                                              "Accept-Language": "en"}).get_json()
    assert refused["errors"] == [{"field": "Authorization", "reason": "this API key lacks the scope write"}]
    assert keys["read"] not in str(refused)
    # Dutch unless English is asked for, like the 401 texts
    dutch = client.post("/things", headers={"Authorization": f"Bearer {keys['read']}"})
    assert dutch.status_code == 403 and dutch.headers["Content-Language"] == "nl"
    lacks = "Deze API-sleutel heeft het recht 'write' niet."  # the words intake used for it already
    assert dutch.get_json()["errors"] == [{"field": "Authorization", "reason": lacks}]
    assert dutch.get_json()["message"] == lacks


def test_a_refused_key_is_told_in_dutch_unless_english_is_asked_for_and_the_base_url_points_to_the_docs(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    from werkplaats_shared.auth import UNAUTHORIZED_NL, unauthorized_text
    from werkplaats_shared.http import create_app

    engine, api_keys = _store(tmp_path)
    app, _ = create_app("Werkplaats test")
    install_auth(app, engine, api_keys)
    app.add_url_rule("/things", "things", lambda: {"ok": True})
    client = app.test_client()
    missing = client.get("/things")
    assert missing.status_code == 401
    assert missing.get_json()["message"] == "De API-sleutel ontbreekt: stuur 'Authorization: Bearer <sleutel>'."
    english = client.get("/things", headers={"Accept-Language": "en"})
    assert english.get_json()["message"] == "missing API key: send 'Authorization: Bearer <key>'"
    wrong = client.get("/things", headers={"Authorization": f"Bearer {generate_key().plaintext}"})
    assert wrong.status_code == 401 and wrong.get_json()["message"] == "Ongeldige of ingetrokken API-sleutel."
    # every 401 reason of the token checks has its Dutch text, with its values carried over
    assert unauthorized_text("token lives longer than 15 minutes", "nl") == "Het token leeft langer dan 15 minuten."
    assert unauthorized_text("token expired", "en") == "token expired"
    assert unauthorized_text("something else", "nl") == "something else"
    assert len({dutch for _, dutch in UNAUTHORIZED_NL}) == len(UNAUTHORIZED_NL)

    index = client.get("/")  # no key needed: it says where the documentation is
    assert index.status_code == 200 and index.headers["Content-Language"] == "nl"
    body = index.get_json()
    assert body["docs"] == "http://localhost/docs" and body["openapi"] == "http://localhost/openapi.json"
    assert "/docs" in body["message"] and "documentatie" in body["message"]
    assert "documentation" in client.get("/", headers={"Accept-Language": "en"}).get_json()["message"]
    assert client.get(body["docs"].removeprefix("http://localhost")).status_code == 200
