"""API keys: stored hashed, compared in constant time, revocable."""

from __future__ import annotations

import sqlalchemy as sa
from werkplaats_shared.auth import authenticate, generate_key
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
